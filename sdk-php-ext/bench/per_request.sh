#!/usr/bin/env bash
# CPU time per request added by the extension: PHP's built-in web server (one process)
# serves N requests of a script doing 20 PDO SQLite queries and 20 user calls, without the
# extension, with it, with every request's call tree kept, and with call trees for slow
# requests only (threshold 10 s, so none is kept: the cost every fast request pays); the server's own CPU time
# (utime + stime from /proc) is divided by N. The client runs in another process.
# Usage: sdk-php-ext/bench/per_request.sh [requests]   (builds the extension --release)
source "$(dirname "$0")/lib.sh"
n=${1:-5000}
cat > "$tmp/app.php" <<'PHP'
<?php
function row(PDO $pdo, int $i) { return $pdo->query("SELECT v FROM t WHERE id = " . ($i % 3 + 1))->fetchColumn(); }
$pdo = new PDO('sqlite::memory:');
$pdo->exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
$pdo->exec("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
$out = '';
for ($i = 0; $i < 18; $i++) { $out .= row($pdo, $i); }
echo strlen($out);
PHP
clk=$(getconf CLK_TCK)
cpu_ns() { awk -v t="$clk" '{ printf "%d", ($14 + $15) * 1000000000 / t }' "/proc/$1/stat"; }
run() { # label, extra php args...
  local label=$1; shift
  start_server -d opcache.enable=1 -d opcache.enable_cli=1 "$@"
  php -r '$p=$argv[1]; for ($i=0;$i<200;$i++) { file_get_contents("http://127.0.0.1:$p/"); }' $port
  local before; before=$(cpu_ns "$server")
  php -r '$p=$argv[1]; $n=(int)$argv[2]; for ($i=0;$i<$n;$i++) { $s=fsockopen("127.0.0.1",$p); fwrite($s,"GET / HTTP/1.0\r\nHost: x\r\n\r\n"); stream_get_contents($s); fclose($s);} ' $port "$n"
  local after; after=$(cpu_ns "$server")
  stop_server
  echo "$label $(( (after - before) / n ))" >> "$tmp/results"
}
for round in 1 2 3; do
  run off
  run tern -d extension="$so"
  run tree -d extension="$so" -d tern.profile_sample=1
  run slow -d extension="$so" -d tern.profile_threshold_ms=10000
done
awk '{ if (!($1 in m) || $2 < m[$1]) m[$1] = $2 } END {
  printf "%-34s %12s %12s\n", "server CPU per request", "ns", "added";
  printf "%-34s %12d %12s\n", "no extension", m["off"], "-";
  printf "%-34s %12d %12d\n", "tern (18 SQL spans)", m["tern"], m["tern"] - m["off"];
  printf "%-34s %12d %12d\n", "tern + call tree", m["tree"], m["tree"] - m["off"];
  printf "%-34s %12d %12d\n", "tern, slow-request trees (none)", m["slow"], m["slow"] - m["off"];
}' "$tmp/results"
echo "(best of 3 servers x $n requests; built-in server, opcache on; no forwarder listening, so the frame is encoded and the send fails fast)"
