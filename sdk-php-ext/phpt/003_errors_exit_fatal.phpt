--TEST--
uncaught exceptions, fatal errors, warnings and exit() inside a hooked call are recorded and never crash PHP
--FILE--
<?php
require __DIR__ . '/tern_test.inc';

$r = tern_run('<?php echo $nope; trigger_error("careful", E_USER_WARNING); throw new DomainException("it broke");');
$e = tern_where($r['spans'], 'kind', 'SERVER')[0];
echo "exception: exit {$r['exit']} status {$e['status']} type {$e['event.exception.type']} message {$e['event.exception.message']} warnings {$e['tern.php.warnings']}\n";

$r = tern_run('<?php undefined_function_here();');
$e = tern_where($r['spans'], 'kind', 'SERVER')[0];
echo "fatal: exit {$r['exit']} status {$e['status']} type {$e['event.exception.type']}\n";

$r = tern_run('<?php ini_set("memory_limit", "4M"); $a = []; while (true) { $a[] = str_repeat("x", 100000); }');
$e = tern_where($r['spans'], 'kind', 'SERVER')[0];
echo "out of memory: exit {$r['exit']} status {$e['status']} type {$e['event.exception.type']}\n";

$r = tern_run(<<<'PHP'
<?php
$pdo = new PDO('sqlite::memory:');
$pdo->sqliteCreateFunction('leave', function () { exit(3); });
$pdo->query('SELECT leave()');
PHP);
$e = tern_where($r['spans'], 'kind', 'SERVER')[0];
$sql = tern_where($r['spans'], 'kind', 'CLIENT')[0];
echo "exit inside a query: exit {$r['exit']} entry {$e['status']} query {$sql['db.query.text']} {$sql['status']} {$sql['error.type']}\n";

$r = tern_run(<<<'PHP'
<?php
$pdo = new PDO('sqlite::memory:');
$pdo->sqliteCreateFunction('boom', function () { throw new LogicException('in a callback'); });
try { $pdo->query('SELECT boom()'); } catch (LogicException $e) { echo "caught\n"; }
echo "after\n";
PHP);
$sql = tern_where($r['spans'], 'kind', 'CLIENT')[0];
echo "exception inside a hooked call: exit {$r['exit']} out ", str_replace("\n", ' ', $r['out']), "query {$sql['status']} {$sql['error.type']}\n";
var_dump(tern_stats()['hook_failures']);
?>
--EXPECT--
exception: exit 255 status error type DomainException message it broke warnings 2
fatal: exit 255 status error type Error
out of memory: exit 255 status error type E_ERROR
exit inside a query: exit 3 entry unset query SELECT leave() error exit
exception inside a hooked call: exit 0 out caught after query error LogicException
int(0)
