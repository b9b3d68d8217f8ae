--TEST--
with opcache and the tracing JIT on, hooks, call trees and errors still work and nothing crashes
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$code = <<<'PHP'
<?php
function hot($pdo, $i) { return $pdo->query("SELECT $i")->fetchColumn(); }
$pdo = new PDO('sqlite::memory:');
$sum = 0;
for ($i = 0; $i < 300; $i++) { $sum += hot($pdo, $i % 3); }
echo $sum, " jit ", opcache_get_status(false)['jit']['on'] ? 'on' : 'off', "\n";
throw new RuntimeException('done');
PHP;
// Few enough spans that the frames fit in the socket buffer even if this test process
// reads slowly (a full buffer drops frames by design).
$r = tern_run($code, [
    'opcache.enable_cli' => '1', 'opcache.jit' => 'tracing', 'opcache.jit_buffer_size' => '32M',
    'tern.profile_sample' => '1',
]);
echo "exit {$r['exit']} out {$r['out']}";
echo count(tern_where($r['spans'], 'kind', 'CLIENT')), " sql spans\n";
tern_show(tern_where($r['spans'], 'name', 'hot'), ['parent', 'tern.call_count']);
echo tern_where($r['spans'], 'kind', 'SERVER')[0]['event.exception.type'], "\n";
?>
--EXPECT--
exit 255 out 300 jit on
300 sql spans
parent={main} tern.call_count=300
RuntimeException
