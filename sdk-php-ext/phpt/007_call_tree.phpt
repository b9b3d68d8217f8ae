--TEST--
call trees: a sampled request keeps its user-function tree with counts and SQL under the calling function; with only a slow threshold a fast request keeps none and a slow one keeps it; the node limit holds
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$code = <<<'PHP'
<?php
function leaf($i) { return $i * 2; }
function query(PDO $pdo) { return $pdo->query('SELECT 1')->fetchColumn(); }
function handler($slow) {
    $pdo = new PDO('sqlite::memory:');
    for ($i = 0; $i < 100; $i++) { leaf($i); }
    query($pdo);
    if ($slow) { usleep(30000); }
}
handler((bool) getenv('SLOW'));
PHP;
$r = tern_run($code, ['tern.profile_sample' => '1']);
tern_show(tern_where($r['spans'], 'kind', 'INTERNAL'), ['name', 'parent', 'tern.call_count']);
tern_show(tern_where($r['spans'], 'kind', 'CLIENT'), ['name', 'parent']);

$r = tern_run($code, ['tern.profile_threshold_ms' => '20000']);
echo "fast request, threshold 20s: ", count(tern_where($r['spans'], 'kind', 'INTERNAL')), " tree spans, sql parent ", tern_where($r['spans'], 'kind', 'CLIENT')[0]['parent'], "\n";

putenv('SLOW=1');
$r = tern_run($code, ['tern.profile_threshold_ms' => '1']);
echo "slow request, threshold 1ms: ", count(tern_where($r['spans'], 'kind', 'INTERNAL')), " tree spans\n";
putenv('SLOW');

$many = '<?php ' . implode("\n", array_map(fn($i) => "function f$i() {} f$i();", range(1, 50)));
$r = tern_run($many, ['tern.profile_sample' => '1', 'tern.max_nodes' => '10']);
$e = tern_where($r['spans'], 'kind', 'SERVER')[0];
echo "node limit 10: ", count(tern_where($r['spans'], 'kind', 'INTERNAL')), " tree spans, dropped calls ", $e['tern.php.calltree_dropped_calls'], "\n";
?>
--EXPECT--
name={main} parent=entry tern.call_count=1
name=handler parent={main} tern.call_count=1
name=leaf parent=handler tern.call_count=100
name=query parent=handler tern.call_count=1
name=SELECT parent=query
fast request, threshold 20s: 0 tree spans, sql parent entry
slow request, threshold 1ms: 4 tree spans
node limit 10: 10 tree spans, dropped calls 41
