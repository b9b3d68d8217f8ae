--TEST--
an application or framework names its transaction with tern_set_transaction_name(): the route it gives wins over the URI, an unnamed request keeps its URI name, a CLI script can name itself, empty names are refused
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
[$server, $sock] = tern_listen();
$docroot = tern_tmp('docroot');
@mkdir($docroot);
// What a framework integration does once its router has matched: name the transaction
// with the route's pattern.
file_put_contents("$docroot/router.php", '<?php
if (preg_match("#^/orders/[^/]+/items#", $_SERVER["REQUEST_URI"])) {
    var_dump(tern_set_transaction_name("  /orders/{order}/items  "));
}
echo "hello";');
[$probe, $port] = tern_http_listen();
fclose($probe);
$cmd = tern_php_cmd(['tern.socket' => $sock, 'tern.active_path' => tern_tmp('active'), 'tern.endpoint_naming' => 'framework']);
array_push($cmd, '-S', "127.0.0.1:$port", '-t', $docroot, "$docroot/router.php");
$proc = proc_open($cmd, [1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
$ok = false;
for ($i = 0; $i < 200 && !$ok; $i++) {
    $ok = @fsockopen('127.0.0.1', $port) !== false;
    if (!$ok) usleep(50000);
}
echo file_get_contents("http://127.0.0.1:$port/orders/ab-12/items?page=2"), "\n";
echo file_get_contents("http://127.0.0.1:$port/orders/42"), "\n";
proc_terminate($proc);
proc_close($proc);
$spans = tern_decode_frame(tern_collect($server));
tern_show($spans, ['kind', 'name', 'http.route', 'url.path']);

// A CLI script names itself; an empty name is refused and the last good one stays.
$cli = tern_run('<?php var_dump(tern_set_transaction_name("nightly-import")); var_dump(tern_set_transaction_name(" "));');
echo $cli['out'];
tern_show($cli['spans'], ['kind', 'name']);
?>
--EXPECT--
bool(true)
hello
hello
kind=SERVER name=GET /orders/{order}/items http.route=/orders/{order}/items url.path=/orders/ab-12/items
kind=SERVER name=GET /orders/{id} http.route=/orders/{id} url.path=/orders/42
bool(true)
bool(false)
kind=SERVER name=nightly-import
