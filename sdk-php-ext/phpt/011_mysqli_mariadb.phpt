--TEST--
mysqli, procedural and object style, against a real MariaDB: queries, execute_query, prepared statements, rows and errors become SQL spans, with their parameters when tern.capture_params=1 (passed as an array, or bound variables: their values when the statement runs; at most 32, the others counted)
--SKIPIF--
<?php if (!is_executable('/usr/sbin/mariadbd') || !extension_loaded('mysqli')) die('skip mariadbd or mysqli missing'); ?>
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$dir = tern_tmp('mariadb');
exec('rm -rf ' . escapeshellarg($dir));
mkdir($dir);
exec('mariadb-install-db --no-defaults --datadir=' . escapeshellarg("$dir/data") . ' --auth-root-authentication-method=normal --skip-test-db --user=' . get_current_user() . ' >/dev/null 2>&1', $o, $rc);
$sock = "$dir/mysql.sock";
$db = proc_open(['/usr/sbin/mariadbd', '--no-defaults', "--datadir=$dir/data", "--socket=$sock", '--skip-networking', '--user=' . get_current_user(), "--pid-file=$dir/pid", "--log-error=$dir/err.log"], [0 => ["file", "/dev/null", "r"], 1 => ["file", "/dev/null", "w"], 2 => ["file", "/dev/null", "w"]], $pipes);
for ($i = 0; $i < 300 && !file_exists($sock); $i++) {
    usleep(100000);
}
$code = <<<PHP
<?php
\$sock = '$sock';
\$link = mysqli_connect('localhost', 'root', '', '', 0, \$sock);
mysqli_query(\$link, 'CREATE DATABASE shop');
mysqli_select_db(\$link, 'shop');
mysqli_query(\$link, 'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))');
mysqli_query(\$link, "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')");
\$res = mysqli_query(\$link, 'SELECT * FROM items');
echo mysqli_num_rows(\$res), " rows\\n";
\$stmt = mysqli_prepare(\$link, 'SELECT name FROM items WHERE id = ?');
\$id = 2;
mysqli_stmt_bind_param(\$stmt, 'i', \$id);
mysqli_stmt_execute(\$stmt);
\$db = new mysqli('localhost', 'root', '', 'shop', 0, \$sock);
\$db->query("UPDATE items SET name = 'z' WHERE id > 1");
\$st = \$db->prepare('DELETE FROM items WHERE id = ?');
\$id = 9;
\$st->bind_param('i', \$id);
\$id = 2;
\$st->execute();
try { \$db->query('SELECT * FROM nowhere'); } catch (mysqli_sql_exception \$e) { echo "caught\\n"; }
echo mysqli_execute_query(\$db, 'SELECT name FROM items WHERE id > ?', [1])->num_rows, " rows\\n";
\$db->execute_query('UPDATE items SET name = ? WHERE id = ?', ['y', 1]);
\$st = \$db->prepare('SELECT name FROM items WHERE id = ?');
\$st->execute([3]);
echo \$st->get_result()->fetch_row()[0], "\\n";
try { \$db->execute_query('SELECT * FROM nowhere WHERE id = ?', [7]); } catch (mysqli_sql_exception \$e) { echo "caught\\n"; }
\$v = range(1, 40);
\$big = \$db->prepare('SELECT ' . implode('+', array_fill(0, 40, '?')));
\$big->bind_param(str_repeat('i', 40), ...\$v);
\$big->execute();
echo \$big->get_result()->fetch_row()[0], ", parameters not recorded: ", tern_stats()['params_dropped'], "\\n";
PHP;
$r = tern_run($code, ['tern.capture_params' => '1']);
echo $r['out'], $r['err'];
tern_show(tern_where($r['spans'], 'kind', 'CLIENT'), ['db.system.name', 'server.address', 'db.query.text', 'db.response.returned_rows', 'db.response.affected_rows', 'db.query.parameter.0', 'db.query.parameter.1', 'status', 'error.type']);
proc_terminate($db);
proc_close($db);
exec('rm -rf ' . escapeshellarg($dir));
?>
--EXPECT--
3 rows
caught
1 rows
z
caught
820, parameters not recorded: 8
db.system.name=mysql server.address=localhost db.query.text=CREATE DATABASE shop db.response.returned_rows=- db.response.affected_rows=1 db.query.parameter.0=- db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20)) db.response.returned_rows=- db.response.affected_rows=0 db.query.parameter.0=- db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c') db.response.returned_rows=- db.response.affected_rows=3 db.query.parameter.0=- db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=SELECT * FROM items db.response.returned_rows=3 db.response.affected_rows=- db.query.parameter.0=- db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=SELECT name FROM items WHERE id = ? db.response.returned_rows=- db.response.affected_rows=- db.query.parameter.0=2 db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=UPDATE items SET name = 'z' WHERE id > 1 db.response.returned_rows=- db.response.affected_rows=2 db.query.parameter.0=- db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=DELETE FROM items WHERE id = ? db.response.returned_rows=- db.response.affected_rows=1 db.query.parameter.0=2 db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=SELECT * FROM nowhere db.response.returned_rows=- db.response.affected_rows=- db.query.parameter.0=- db.query.parameter.1=- status=error error.type=mysqli_sql_exception
db.system.name=mysql server.address=localhost db.query.text=SELECT name FROM items WHERE id > ? db.response.returned_rows=1 db.response.affected_rows=- db.query.parameter.0=1 db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=UPDATE items SET name = ? WHERE id = ? db.response.returned_rows=- db.response.affected_rows=1 db.query.parameter.0=y db.query.parameter.1=1 status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=SELECT name FROM items WHERE id = ? db.response.returned_rows=- db.response.affected_rows=- db.query.parameter.0=3 db.query.parameter.1=- status=unset error.type=-
db.system.name=mysql server.address=localhost db.query.text=SELECT * FROM nowhere WHERE id = ? db.response.returned_rows=- db.response.affected_rows=- db.query.parameter.0=7 db.query.parameter.1=- status=error error.type=mysqli_sql_exception
db.system.name=mysql server.address=localhost db.query.text=SELECT ?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+?+? db.response.returned_rows=- db.response.affected_rows=- db.query.parameter.0=1 db.query.parameter.1=2 status=unset error.type=-
