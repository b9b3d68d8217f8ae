--TEST--
each request of the built-in web server is a transaction with method, route with ids collapsed, status, client, user agent, and a continued incoming traceparent
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
[$server, $sock] = tern_listen();
$docroot = tern_tmp('docroot');
@mkdir($docroot);
file_put_contents("$docroot/router.php", '<?php if (str_contains($_SERVER["REQUEST_URI"], "missing")) { http_response_code(404); } echo "hello";');
[$probe, $port] = tern_http_listen();
fclose($probe);
$cmd = tern_php_cmd(['tern.socket' => $sock, 'tern.active_path' => tern_tmp('active'), 'tern.service_name' => 'web']);
array_push($cmd, '-S', "127.0.0.1:$port", '-t', $docroot, "$docroot/router.php");
$proc = proc_open($cmd, [1 => ['file', '/dev/null', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
$ok = false;
for ($i = 0; $i < 200 && !$ok; $i++) {
    $ok = @fsockopen('127.0.0.1', $port) !== false;
    if (!$ok) usleep(50000);
}
$ctx = stream_context_create(['http' => ['ignore_errors' => true, 'header' =>
    "User-Agent: phpt\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"]]);
echo file_get_contents("http://127.0.0.1:$port/orders/42?x=1", false, $ctx), "\n";
echo file_get_contents("http://127.0.0.1:$port/missing", false, $ctx), "\n";
proc_terminate($proc);
proc_close($proc);
$spans = tern_decode_frame(tern_collect($server));
tern_show($spans, ['kind', 'name', 'http.request.method', 'http.route', 'url.path', 'url.query', 'http.response.status_code', 'client.address', 'user_agent.original', 'trace_id', 'parent', 'resource.service.name']);
unlink("$docroot/router.php");
rmdir($docroot);
?>
--EXPECT--
hello
hello
kind=SERVER name=GET /orders/{id} http.request.method=GET http.route=/orders/{id} url.path=/orders/42 url.query=x=1 http.response.status_code=200 client.address=127.0.0.1 user_agent.original=phpt trace_id=0af7651916cd43dd8448eb211c80319c parent=remote resource.service.name=web
kind=SERVER name=GET /missing http.request.method=GET http.route=/missing url.path=/missing url.query=- http.response.status_code=404 client.address=127.0.0.1 user_agent.original=phpt trace_id=0af7651916cd43dd8448eb211c80319c parent=remote resource.service.name=web
