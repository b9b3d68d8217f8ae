--TEST--
a request that forks with pcntl_fork gives two intact transactions (the child opens its own socket, leaves the parent's slot alone)
--SKIPIF--
<?php if (!function_exists('pcntl_fork')) die('skip pcntl missing'); ?>
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$r = tern_run(<<<'PHP'
<?php
$pdo = new PDO('sqlite::memory:');
$pdo->query('SELECT 1');
$pid = pcntl_fork();
if ($pid === 0) {
    $pdo->query('SELECT 2');
    exit(0);
}
pcntl_waitpid($pid, $status);
echo "parent still published as running: ", count(array_filter(tern_active_snapshot(), fn($s) => $s['pid'] == getmypid())), "\n";
$pdo->query('SELECT 3');
PHP);
echo $r['out'];
$entries = tern_where($r['spans'], 'kind', 'SERVER');
echo count($entries), " transactions, ", count(array_unique(array_column($r['spans'], 'resource.process.pid'))), " distinct pids\n";
$texts = array_column(tern_where($r['spans'], 'kind', 'CLIENT'), 'db.query.text');
sort($texts);
echo implode(', ', $texts), "\n";
?>
--EXPECT--
parent still published as running: 1
2 transactions, 2 distinct pids
SELECT 1, SELECT 1, SELECT 2, SELECT 3
