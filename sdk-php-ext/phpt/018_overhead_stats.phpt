--TEST--
with tern.overhead_stats=1 tern_stats() counts the nanoseconds the extension spent in its hooks, at request start, at request end and sending (a request sees the earlier ones' end and send); by default it counts nothing
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
$docroot = tern_tmp('docroot');
@mkdir($docroot);
file_put_contents("$docroot/router.php", '<?php
$pdo = new PDO("sqlite::memory:");
$pdo->query("SELECT 1");
$s = tern_stats();
foreach (["overhead_ns_hooks", "overhead_ns_request_start", "overhead_ns_request_end", "overhead_ns_send"] as $k) {
    echo substr($k, 12), ($s[$k] > 0 ? " > 0" : " = 0"), "; ";
}');
foreach (['1', '0'] as $on) {
    [$server, $sock] = tern_listen();
    [$probe, $port] = tern_http_listen();
    fclose($probe);
    $cmd = tern_php_cmd(['tern.socket' => $sock, 'tern.active_path' => tern_tmp('active'), 'tern.overhead_stats' => $on]);
    array_push($cmd, '-S', "127.0.0.1:$port", '-t', $docroot, "$docroot/router.php");
    $proc = proc_open($cmd, [1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
    $ok = false;
    for ($i = 0; $i < 200 && !$ok; $i++) {
        $ok = @fsockopen('127.0.0.1', $port) !== false;
        if (!$ok) usleep(50000);
    }
    echo "tern.overhead_stats=$on\n";
    echo "first request:  ", file_get_contents("http://127.0.0.1:$port/"), "\n";
    echo "second request: ", file_get_contents("http://127.0.0.1:$port/"), "\n";
    proc_terminate($proc);
    proc_close($proc);
    $spans = tern_decode_frame(tern_collect($server));
    echo count(tern_where($spans, 'kind', 'SERVER')), " transactions sent\n";
}
unlink("$docroot/router.php");
rmdir($docroot);
?>
--EXPECT--
tern.overhead_stats=1
first request:  hooks > 0; request_start > 0; request_end = 0; send = 0; 
second request: hooks > 0; request_start > 0; request_end > 0; send > 0; 
2 transactions sent
tern.overhead_stats=0
first request:  hooks = 0; request_start = 0; request_end = 0; send = 0; 
second request: hooks = 0; request_start = 0; request_end = 0; send = 0; 
2 transactions sent
