--TEST--
with no forwarder listening, requests run normally and their frames are dropped and counted
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$docroot = tern_tmp('docroot8');
@mkdir($docroot);
file_put_contents("$docroot/router.php", '<?php $pdo = new PDO("sqlite::memory:"); echo $pdo->query("SELECT 41 + 1")->fetchColumn(), " dropped so far ", tern_stats()["frames_dropped"], " sent ", tern_stats()["frames_sent"];');
[$probe, $port] = tern_http_listen();
fclose($probe);
$cmd = tern_php_cmd(['tern.socket' => '/tmp/tern-phpt-nobody-listens.sock', 'tern.active_path' => tern_tmp('active')]);
array_push($cmd, '-S', "127.0.0.1:$port", '-t', $docroot, "$docroot/router.php");
$proc = proc_open($cmd, [1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
for ($i = 0; $i < 200 && @fsockopen('127.0.0.1', $port) === false; $i++) {
    usleep(50000);
}
for ($i = 0; $i < 3; $i++) {
    echo file_get_contents("http://127.0.0.1:$port/"), "\n";
}
proc_terminate($proc);
proc_close($proc);
unlink("$docroot/router.php");
rmdir($docroot);
?>
--EXPECT--
42 dropped so far 0 sent 0
42 dropped so far 1 sent 0
42 dropped so far 2 sent 0
