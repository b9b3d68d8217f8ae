--TEST--
subclasses of PDO and PDOStatement (statement class attribute) and closures of hooked functions keep working and are still recorded
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$r = tern_run(<<<'PHP'
<?php
class MyStatement extends PDOStatement {}
class MyPDO extends PDO {
    public function query(string $query, ?int $fetchMode = null, mixed ...$fetchModeArgs): PDOStatement|false {
        return parent::query($query);
    }
}
class PlainPDO extends PDO {}
$pdo = new MyPDO('sqlite::memory:');
$pdo->setAttribute(PDO::ATTR_STATEMENT_CLASS, [MyStatement::class]);
echo get_class($pdo->query('SELECT 1')), " ", $pdo->query('SELECT 2')->fetchColumn(), "\n";
$st = $pdo->prepare('SELECT ?');
$st->execute([3]);
echo $st->fetchColumn(), "\n";
$plain = new PlainPDO('sqlite::memory:');
echo $plain->exec('CREATE TABLE t (a)'), " ", $plain->query('SELECT 4')->fetchColumn(), "\n";
$q = $plain->query(...);
echo $q('SELECT 5')->fetchColumn(), "\n";
$fgc = file_get_contents(...);
echo strlen($fgc(__FILE__)) > 0 ? "read\n" : "broken\n";
$c = Closure::fromCallable('curl_init');
echo get_class($c()), "\n";
PHP);
echo $r['out'];
tern_show(tern_where($r['spans'], 'kind', 'CLIENT'), ['db.system.name', 'db.query.text']);
?>
--EXPECT--
MyStatement 2
3
0 4
5
read
CurlHandle
db.system.name=sqlite db.query.text=SELECT 1
db.system.name=sqlite db.query.text=SELECT 2
db.system.name=sqlite db.query.text=SELECT ?
db.system.name=sqlite db.query.text=CREATE TABLE t (a)
db.system.name=sqlite db.query.text=SELECT 4
db.system.name=sqlite db.query.text=SELECT 5
