--TEST--
with tern.capture_params=1 a statement keeps at most 32 parameters, whether passed to execute or bound; the others are counted in tern_stats()["params_dropped"], and the statement still runs as written
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$r = tern_run(<<<'PHP'
<?php
$pdo = new PDO('sqlite::memory:');
$sql = 'SELECT ' . implode(' + ', array_fill(0, 40, '?'));
$st = $pdo->prepare($sql);
$st->execute(range(1, 40));
echo "passed: ", $st->fetchColumn(), ", dropped so far ", tern_stats()['params_dropped'], "\n";
$bound = $pdo->prepare($sql);
foreach (range(1, 40) as $i) {
    $bound->bindValue($i, 2 * $i);
}
$bound->execute();
echo "bound: ", $bound->fetchColumn(), ", dropped so far ", tern_stats()['params_dropped'], "\n";
PHP, ['tern.capture_params' => '1']);
echo $r['out'];
foreach (tern_where($r['spans'], 'kind', 'CLIENT') as $span) {
    $params = array_filter(array_keys($span), fn($k) => str_starts_with($k, 'db.query.parameter.'));
    sort($params, SORT_NATURAL);
    echo count($params), " parameters recorded: ", reset($params), " … ", end($params), " (first ", $span[reset($params)], ", last ", $span[end($params)], ")\n";
}
?>
--EXPECT--
passed: 820, dropped so far 8
bound: 1640, dropped so far 16
32 parameters recorded: db.query.parameter.0 … db.query.parameter.31 (first 1, last 32)
32 parameters recorded: db.query.parameter.0 … db.query.parameter.31 (first 2, last 64)
