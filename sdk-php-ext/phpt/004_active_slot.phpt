--TEST--
a running request is published in the active-transaction shared memory with its current SQL, and released when it ends
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$active = tern_tmp('active');
@unlink($active);
$code = <<<'PHP'
<?php
$pdo = new PDO('sqlite::memory:');
$pdo->sqliteCreateFunction('wait_for_parent', function () {
    echo "ready\n";
    fgets(STDIN);
    return 1;
});
$pdo->query('SELECT wait_for_parent()');
echo "done\n";
PHP;
$seen = null;
$r = tern_run($code, ['tern.active_path' => $active], function ($proc, $pipes) use ($active, &$seen) {
    $pid = proc_get_status($proc)['pid'];
    echo "child says ", fgets($pipes[1]);
    $cmd = tern_php_cmd(['tern.active_path' => $active]);
    $cmd[] = '-r';
    $cmd[] = 'echo json_encode(tern_active_snapshot());';
    $seen = json_decode(shell_exec(implode(' ', array_map('escapeshellarg', $cmd))), true);
    $seen = array_values(array_filter($seen, fn($s) => $s['pid'] == $pid));
    fwrite($pipes[0], "go\n");
});
echo count($seen), " running slot for the child\n";
echo "uri ends with child.php: ", var_export(str_ends_with($seen[0]['uri'], 'child.php'), true), "\n";
echo "activity {$seen[0]['activity']}: {$seen[0]['activity_text']}\n";
$entry = tern_where($r['spans'], 'kind', 'SERVER')[0];
echo "same trace as the finished transaction: ", var_export($seen[0]['trace_id'] === $entry['trace_id'], true), "\n";
echo "child printed ", trim($r['out']), "\n";
$cmd = tern_php_cmd(['tern.active_path' => $active]);
$cmd[] = '-r';
$cmd[] = 'echo count(array_filter(tern_active_snapshot(), fn($s) => $s["pid"] != getmypid())), "\n";';
echo "running after it ended: ", shell_exec(implode(' ', array_map('escapeshellarg', $cmd)));
@unlink($active);
?>
--EXPECT--
child says ready
1 running slot for the child
uri ends with child.php: true
activity sql: SELECT wait_for_parent()
same trace as the finished transaction: true
child printed done
running after it ended: 0
