--TEST--
curl (exec and multi) and http stream calls become client spans with status, and curl requests carry a traceparent of the same trace
--FILE--
<?php
require __DIR__ . '/tern_test.inc';
[$http, $port] = tern_http_listen();
$code = <<<PHP
<?php
\$base = 'http://127.0.0.1:$port';
\$ch = curl_init("\$base/one");
curl_setopt(\$ch, CURLOPT_HTTPHEADER, ['X-App: kept']);
curl_setopt_array(\$ch, [CURLOPT_RETURNTRANSFER => true, CURLOPT_POST => true, CURLOPT_POSTFIELDS => 'a=1']);
echo curl_exec(\$ch), "\\n";
\$mh = curl_multi_init();
\$m = curl_init("\$base/multi");
curl_setopt(\$m, CURLOPT_CUSTOMREQUEST, 'DELETE');
curl_setopt(\$m, CURLOPT_HTTPGET, true);
curl_setopt(\$m, CURLOPT_RETURNTRANSFER, true);
curl_multi_add_handle(\$mh, \$m);
do { \$status = curl_multi_exec(\$mh, \$running); if (\$running) curl_multi_select(\$mh, 1); } while (\$running && \$status == CURLM_OK);
echo curl_multi_getcontent(\$m), "\\n";
curl_multi_remove_handle(\$mh, \$m);
echo file_get_contents("\$base/stream"), "\\n";
echo var_export(@file_get_contents("\$base/missing"), true), "\\n";
PHP;
$seen = [];
$r = tern_run($code, [], function ($proc, $pipes) use ($http, &$seen) {
    $seen[] = tern_http_answer($http, 200, 'one');
    $seen[] = tern_http_answer($http, 201, 'multi');
    $seen[] = tern_http_answer($http, 200, 'stream');
    $seen[] = tern_http_answer($http, 404, 'nope');
});
echo $r['out'];
tern_show(tern_where($r['spans'], 'kind', 'CLIENT'), ['name', 'http.request.method', 'http.response.status_code', 'server.address', 'status', 'error.type']);
echo "the server saw: ", implode(', ', array_map(fn($h) => explode(' ', $h[':request'])[0], $seen)), "\n";
$clients = tern_where($r['spans'], 'kind', 'CLIENT');
$trace = tern_where($r['spans'], 'kind', 'SERVER')[0]['trace_id'];
foreach ([0, 1] as $i) {
    $tp = $seen[$i]['traceparent'] ?? '';
    $url = $clients[$i]['url.full'];
    echo "$url: traceparent ", $tp === "00-$trace-{$clients[$i]['span_id']}-01" ? 'matches its span' : "WRONG ($tp)", "\n";
}
echo "application header kept: ", $seen[0]['x-app'] ?? 'LOST', "\n";
?>
--EXPECTF--
one
multi
stream
false
name=POST 127.0.0.1 http.request.method=POST http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=DELETE 127.0.0.1 http.request.method=DELETE http.response.status_code=201 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=404 server.address=127.0.0.1 status=error error.type=404
the server saw: POST, DELETE, GET, GET
http://127.0.0.1:%d/one: traceparent matches its span
http://127.0.0.1:%d/multi: traceparent matches its span
application header kept: kept
