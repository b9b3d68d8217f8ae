--TEST--
call trees nest user calls on the C stack: recursion too deep for it ends the request with a fatal error that is recorded, never a crash, and recursion inside a fiber (its own C stack) and without call trees is untouched
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$code = <<<'PHP'
<?php
function r($n) { return $n ? r($n - 1) + 1 : 0; }
echo r(1000), " ";
$f = new Fiber(function () { return r(Fiber::suspend(1) + 1000); });
$f->resume($f->start());
echo $f->getReturn(), " ";
echo r(2000000), "\n";
PHP;
$r = tern_run($code, ['tern.profile_sample' => '1', 'memory_limit' => '-1']);
$e = tern_where($r['spans'], 'kind', 'SERVER')[0];
echo "with call trees: exit {$r['exit']} out {$r['out']}status {$e['status']} type {$e['event.exception.type']}\n";
echo str_contains($r['out'] . $r['err'], 'Maximum call stack size') ? "message names the stack\n" : "no message\n";
$r = tern_run($code, ['memory_limit' => '-1']);
echo "without call trees: exit {$r['exit']} out {$r['out']}";
?>
--EXPECT--
with call trees: exit 255 out 1000 1001 status error type E_ERROR
message names the stack
without call trees: exit 0 out 1000 1001 2000000
