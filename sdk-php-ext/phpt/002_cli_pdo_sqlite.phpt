--TEST--
a CLI run is one transaction sent over the socket, with its PDO sqlite queries, bound parameters and a failing query
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$r = tern_run(<<<'PHP'
<?php
function load(PDO $pdo) {
    $pdo->exec("CREATE TABLE orders (id INTEGER, total INTEGER)");
    $pdo->exec("INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30)");
    $st = $pdo->prepare("SELECT total FROM orders WHERE id = :id");
    $st->execute([':id' => 2]);
    $sum = $pdo->query("SELECT sum(total) FROM orders")->fetchColumn();
    try {
        $pdo->query("SELECT * FROM missing");
    } catch (PDOException $e) {
    }
    return $sum;
}
echo load(new PDO('sqlite::memory:')), "\n";
PHP, ['tern.capture_params' => '1', 'tern.service_name' => 'shop']);
echo "exit {$r['exit']} out {$r['out']}";
$entry = tern_where($r['spans'], 'kind', 'SERVER');
echo count($entry), " entry span, service ", $entry[0]['resource.service.name'], ", language ", $entry[0]['resource.telemetry.sdk.language'], "\n";
echo str_ends_with($entry[0]['name'], 'child.php') ? "named after the script\n" : "bad name {$entry[0]['name']}\n";
tern_show(tern_where($r['spans'], 'kind', 'CLIENT'), ['name', 'parent', 'db.system.name', 'db.namespace', 'db.query.text', 'db.response.affected_rows', 'db.query.parameter.id', 'status', 'error.type']);
$traces = array_unique(array_column($r['spans'], 'trace_id'));
echo count($traces), " trace\n";
?>
--EXPECT--
exit 0 out 60
1 entry span, service shop, language php
named after the script
name=CREATE parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=CREATE TABLE orders (id INTEGER, total INTEGER) db.response.affected_rows=0 db.query.parameter.id=- status=unset error.type=-
name=INSERT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30) db.response.affected_rows=3 db.query.parameter.id=- status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT total FROM orders WHERE id = :id db.response.affected_rows=- db.query.parameter.id=2 status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT sum(total) FROM orders db.response.affected_rows=- db.query.parameter.id=- status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT * FROM missing db.response.affected_rows=- db.query.parameter.id=- status=error error.type=PDOException
1 trace
