--TEST--
when the forwarder stops reading and its socket buffer is full, requests neither block nor fail: frames are dropped and counted
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
[$server, $sock] = tern_listen(); // accepts nothing, reads nothing
$docroot = tern_tmp('docroot13');
@mkdir($docroot);
file_put_contents("$docroot/router.php", '<?php $pdo = new PDO("sqlite::memory:"); for ($i = 0; $i < 400; $i++) { $pdo->query("SELECT $i, \'' . str_repeat('x', 200) . '\'"); } $s = tern_stats(); echo "sent ", $s["frames_sent"] > 0 ? "some" : "none", ", dropped because full ", $s["frames_dropped_full"] > 0 ? "some" : "none";');
[$probe, $port] = tern_http_listen();
fclose($probe);
$cmd = tern_php_cmd(['tern.socket' => $sock, 'tern.active_path' => tern_tmp('active')]);
array_push($cmd, '-S', "127.0.0.1:$port", '-t', $docroot, "$docroot/router.php");
$proc = proc_open($cmd, [1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
for ($i = 0; $i < 200 && @fsockopen('127.0.0.1', $port) === false; $i++) {
    usleep(50000);
}
$last = '';
for ($i = 0; $i < 12; $i++) {
    $last = file_get_contents("http://127.0.0.1:$port/");
}
echo "12 requests answered; last says: $last\n";
proc_terminate($proc);
proc_close($proc);
fclose($server);
@unlink($sock);
unlink("$docroot/router.php");
rmdir($docroot);
?>
--EXPECT--
12 requests answered; last says: sent some, dropped because full some
