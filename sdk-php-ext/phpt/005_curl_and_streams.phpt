--TEST--
curl (exec and multi) and http stream calls become client spans with status, and their requests carry a traceparent of the same trace (streams: through the context passed or the default one, put back as it was after the call); a traceparent the application sets itself is kept; a handle reused or copied sends its own, a copy keeps the original's headers and method, curl_reset forgets them, and a multi transfer never read is recorded as aborted; with tern.curl_direct=0 (PHP's curl functions instead of libcurl's) everything is the same; with tern.propagate=0 the same spans and no traceparent of ours
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
\$ctx = stream_context_create(['http' => ['header' => "X-App: ctx\\r\\ntraceparent: 00-11111111111111111111111111111111-2222222222222222-01"]]);
echo file_get_contents("\$base/ctx", false, \$ctx), "\\n";
\$ctx2 = stream_context_create(['http' => ['header' => ['X-App: ctx2']]]);
\$f = fopen("\$base/fopen", 'r', false, \$ctx2);
echo stream_get_contents(\$f), "\\n";
fclose(\$f);
echo "contexts after: ", json_encode(stream_context_get_options(\$ctx)['http']['header']), " ", json_encode(stream_context_get_options(\$ctx2)['http']['header']), "\\n";
echo "default after: ", json_encode(stream_context_get_options(stream_context_get_default())), "\\n";
\$again = curl_init("\$base/again");
curl_setopt(\$again, CURLOPT_RETURNTRANSFER, true);
echo curl_exec(\$again), " ", curl_exec(\$again), "\\n";
\$copy = curl_copy_handle(\$ch);
echo curl_exec(\$copy), "\\n";
curl_reset(\$copy);
curl_setopt(\$copy, CURLOPT_URL, "\$base/reset");
curl_setopt(\$copy, CURLOPT_RETURNTRANSFER, true);
echo curl_exec(\$copy), "\\n";
\$mh2 = curl_multi_init();
\$left = curl_init("\$base/left");
curl_setopt(\$left, CURLOPT_RETURNTRANSFER, true);
curl_multi_add_handle(\$mh2, \$left);
do { \$status = curl_multi_exec(\$mh2, \$running); if (\$running) curl_multi_select(\$mh2, 1); } while (\$running && \$status == CURLM_OK);
echo "a multi transfer never read or removed\\n";
echo "curl information asked of PHP instead of libcurl: ", tern_stats()['curl_info_from_php'], "\\n";
PHP;
/** Runs the script with `$ini`; prints what it did, its client spans and what the server saw. */
function run_once(string $code, array $ini, $http): string {
$seen = [];
$r = tern_run($code, $ini, function ($proc, $pipes) use ($http, &$seen) {
    $seen[] = tern_http_answer($http, 200, 'one');
    $seen[] = tern_http_answer($http, 201, 'multi');
    $seen[] = tern_http_answer($http, 200, 'stream');
    $seen[] = tern_http_answer($http, 404, 'nope');
    $seen[] = tern_http_answer($http, 200, 'ctx');
    $seen[] = tern_http_answer($http, 200, 'fopen');
    $seen[] = tern_http_answer($http, 200, 'again1');
    $seen[] = tern_http_answer($http, 200, 'again2');
    $seen[] = tern_http_answer($http, 200, 'copy');
    $seen[] = tern_http_answer($http, 200, 'reset');
    $seen[] = tern_http_answer($http, 200, 'left');
});
ob_start();
echo $r['out'];
tern_show(tern_where($r['spans'], 'kind', 'CLIENT'), ['name', 'http.request.method', 'http.response.status_code', 'server.address', 'status', 'error.type']);
echo "the server saw: ", implode(', ', array_map(fn($h) => explode(' ', $h[':request'])[0], $seen)), "\n";
$clients = tern_where($r['spans'], 'kind', 'CLIENT');
$trace = tern_where($r['spans'], 'kind', 'SERVER')[0]['trace_id'];
foreach ([0, 1, 2, 5, 6, 7, 8, 9, 10] as $i) {
    $tp = $seen[$i]['traceparent'] ?? '';
    $url = $clients[$i]['url.full'];
    echo "$url: traceparent ", $tp === "00-$trace-{$clients[$i]['span_id']}-01" ? 'matches its span' : "WRONG ($tp)",
        " (", $seen[$i][':count traceparent'] ?? 0, ")\n";
}
echo "the application's own traceparent: ", $seen[4]['traceparent'] ?? 'LOST', " (", $seen[4][':count traceparent'] ?? 0, ")\n";
echo "application header kept: ", $seen[0]['x-app'] ?? 'LOST', ", ", $seen[4]['x-app'] ?? 'LOST', ", ", $seen[5]['x-app'] ?? 'LOST', ", copy: ", $seen[8]['x-app'] ?? 'LOST', "; after curl_reset: ", $seen[9]['x-app'] ?? 'none', "\n";
$GLOBALS['seen'] = $seen;
return ob_get_clean();
}
$direct = run_once($code, [], $http);
echo $direct;
// The same through PHP's curl functions: only the fallback count differs.
$via_php = run_once($code, ['tern.curl_direct' => '0'], $http);
$counted = preg_match('/instead of libcurl: (\d+)/', $via_php, $m) ? (int) $m[1] : 0;
$same = preg_replace('/instead of libcurl: \d+/', '', $via_php) === preg_replace('/instead of libcurl: \d+/', '', $direct);
// With tern.propagate=0: the same client spans and application headers, no traceparent
// of ours (the application's own still goes out).
$off = run_once($code, ['tern.propagate' => '0'], $http);
$lines = fn($text, $start) => implode("\n", array_filter(explode("\n", $text), fn($l) => str_starts_with($l, $start)));
$sent = array_values(array_filter(array_map(fn($h) => $h['traceparent'] ?? null, $GLOBALS['seen'])));
echo "tern.propagate=0: ", $lines($off, 'name=') === $lines($direct, 'name=') ? 'the same client spans' : "DIFFERENT SPANS:\n$off",
    ", ", $lines($off, 'application header kept') === $lines($direct, 'application header kept') ? 'application headers kept' : 'APPLICATION HEADERS CHANGED',
    ", traceparent sent: ", json_encode($sent), "\n";
echo "tern.curl_direct=0: ", $same ? 'the same spans, headers and answers' : "DIFFERENT:\n$via_php", ", curl information asked of PHP ", $counted > 0 ? 'counted' : 'NOT COUNTED', "\n";
?>
--EXPECTF--
one
multi
stream
false
ctx
fopen
contexts after: "X-App: ctx\r\ntraceparent: 00-11111111111111111111111111111111-2222222222222222-01" ["X-App: ctx2"]
default after: {"http":{"header":""}}
again1 again2
copy
reset
a multi transfer never read or removed
curl information asked of PHP instead of libcurl: 0
name=POST 127.0.0.1 http.request.method=POST http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=DELETE 127.0.0.1 http.request.method=DELETE http.response.status_code=201 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=404 server.address=127.0.0.1 status=error error.type=404
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=POST 127.0.0.1 http.request.method=POST http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=200 server.address=127.0.0.1 status=unset error.type=-
name=GET 127.0.0.1 http.request.method=GET http.response.status_code=- server.address=127.0.0.1 status=error error.type=aborted
the server saw: POST, DELETE, GET, GET, GET, GET, GET, GET, POST, GET, GET
http://127.0.0.1:%d/one: traceparent matches its span (1)
http://127.0.0.1:%d/multi: traceparent matches its span (1)
http://127.0.0.1:%d/stream: traceparent matches its span (1)
http://127.0.0.1:%d/fopen: traceparent matches its span (1)
http://127.0.0.1:%d/again: traceparent matches its span (1)
http://127.0.0.1:%d/again: traceparent matches its span (1)
http://127.0.0.1:%d/one: traceparent matches its span (1)
http://127.0.0.1:%d/reset: traceparent matches its span (1)
http://127.0.0.1:%d/left: traceparent matches its span (1)
the application's own traceparent: 00-11111111111111111111111111111111-2222222222222222-01 (1)
application header kept: kept, ctx, ctx2, copy: kept; after curl_reset: none
tern.propagate=0: the same client spans, application headers kept, traceparent sent: ["00-11111111111111111111111111111111-2222222222222222-01"]
tern.curl_direct=0: the same spans, headers and answers, curl information asked of PHP counted
