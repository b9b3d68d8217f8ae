--TEST--
a CLI run is one transaction sent over the socket, with its PDO sqlite queries, their parameters (passed to execute, bound by value, by position, or by variable: its value at execution) and a failing query; a statement or parameter too long for a span is cut (ending in …) and nothing after it is lost
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$r = tern_run(<<<'PHP'
<?php
class Param { public $n = 0; public function __toString(): string { $this->n++; return '3'; } }
function load(PDO $pdo) {
    $pdo->exec("CREATE TABLE orders (id INTEGER, total INTEGER)");
    $pdo->exec("INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30)");
    $st = $pdo->prepare("SELECT total FROM orders WHERE id = :id");
    $st->execute([':id' => 2]);
    $st2 = $pdo->prepare("SELECT total FROM orders WHERE id = :id AND total > :min");
    $st2->bindValue(':id', 3);
    $min = 5;
    $st2->bindParam('min', $min, PDO::PARAM_INT);
    $min = 25;
    $st2->execute();
    $st3 = $pdo->prepare("SELECT total FROM orders WHERE id = ?");
    $st3->bindValue(1, 1);
    $st3->execute();
    $p = new Param();
    $st4 = $pdo->prepare("SELECT total FROM orders WHERE id = :obj");
    $st4->bindValue(':obj', $p);
    $st4->execute();
    echo "__toString called ", $p->n, " time(s)\n";
    $big = $pdo->prepare("SELECT count(*) FROM orders WHERE id = ? OR 'x' = '" . str_repeat('é', 150000) . "'");
    $big->execute([str_repeat('y', 300000)]);
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
$clients = tern_where($r['spans'], 'kind', 'CLIENT');
$long = fn($s) => strlen($s['db.query.text']) > 1000;
tern_show(array_filter($clients, fn($s) => !$long($s)), ['name', 'parent', 'db.system.name', 'db.namespace', 'db.query.text', 'db.response.affected_rows', 'db.query.parameter.id', 'db.query.parameter.min', 'db.query.parameter.0', 'db.query.parameter.obj', 'status', 'error.type']);
$big = array_values(array_filter($clients, $long))[0];
echo "long statement: ", strlen($big['db.query.text']), " bytes, ", str_ends_with($big['db.query.text'], 'é…') ? 'cut on a character' : 'NOT CUT', "; long parameter: ", strlen($big['db.query.parameter.0']), " bytes\n";
$hooks = fn(string $capture) => (int) tern_run('<?php echo tern_stats()["hooks_installed"];', ['tern.capture_params' => $capture])['out'];
$extra = $hooks('1') - $hooks('0');
echo "hooks installed only to capture parameters: ", $extra === 2 + (extension_loaded('mysqli') ? 2 : 0) ? 'the bind hooks' : "WRONG ($extra)", "\n";
$traces = array_unique(array_column($r['spans'], 'trace_id'));
echo count($traces), " trace\n";
?>
--EXPECT--
exit 0 out __toString called 1 time(s)
60
1 entry span, service shop, language php
named after the script
name=CREATE parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=CREATE TABLE orders (id INTEGER, total INTEGER) db.response.affected_rows=0 db.query.parameter.id=- db.query.parameter.min=- db.query.parameter.0=- db.query.parameter.obj=- status=unset error.type=-
name=INSERT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30) db.response.affected_rows=3 db.query.parameter.id=- db.query.parameter.min=- db.query.parameter.0=- db.query.parameter.obj=- status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT total FROM orders WHERE id = :id db.response.affected_rows=- db.query.parameter.id=2 db.query.parameter.min=- db.query.parameter.0=- db.query.parameter.obj=- status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT total FROM orders WHERE id = :id AND total > :min db.response.affected_rows=- db.query.parameter.id=3 db.query.parameter.min=25 db.query.parameter.0=- db.query.parameter.obj=- status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT total FROM orders WHERE id = ? db.response.affected_rows=- db.query.parameter.id=- db.query.parameter.min=- db.query.parameter.0=1 db.query.parameter.obj=- status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT total FROM orders WHERE id = :obj db.response.affected_rows=- db.query.parameter.id=- db.query.parameter.min=- db.query.parameter.0=- db.query.parameter.obj=object(Param) status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT sum(total) FROM orders db.response.affected_rows=- db.query.parameter.id=- db.query.parameter.min=- db.query.parameter.0=- db.query.parameter.obj=- status=unset error.type=-
name=SELECT parent=entry db.system.name=sqlite db.namespace=:memory: db.query.text=SELECT * FROM missing db.response.affected_rows=- db.query.parameter.id=- db.query.parameter.min=- db.query.parameter.0=- db.query.parameter.obj=- status=error error.type=PDOException
long statement: 8192 bytes, cut on a character; long parameter: 1024 bytes
hooks installed only to capture parameters: the bind hooks
1 trace
