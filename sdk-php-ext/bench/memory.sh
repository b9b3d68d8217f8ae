#!/usr/bin/env bash
# Resident memory of PHP's built-in web server over many requests, without and with the
# extension: each request reads $_SERVER, runs 20 PDO SQLite queries and 20 user calls.
# Usage: sdk-php-ext/bench/memory.sh [requests]   (builds the extension --release)
source "$(dirname "$0")/lib.sh"
n=${1:-20000}
cat > "$tmp/app.php" <<'PHP'
<?php
function f($i) { return $i; }
$host = $_SERVER['HTTP_HOST'] ?? '';
$pdo = new PDO('sqlite::memory:');
for ($i = 0; $i < 20; $i++) { $pdo->query("SELECT $i")->fetchColumn(); f($i); }
echo "ok";
PHP
measure() { # label, extra php args...
  local label=$1; shift
  start_server "$@"
  echo "$label"
  php -r '
    [$_, $port, $pid, $n] = $argv;
    $rss = fn() => (int) preg_replace("/.*VmRSS:\s+(\d+).*/s", "$1", file_get_contents("/proc/$pid/status"));
    for ($i = 1; $i <= $n; $i++) {
        $s = fsockopen("127.0.0.1", $port);
        fwrite($s, "GET /x HTTP/1.0\r\nHost: x\r\n\r\n");
        stream_get_contents($s);
        fclose($s);
        if (in_array($i, [1000, 5000, 10000, 20000, 50000, 100000], true)) printf("  %6d requests: RSS %d KiB\n", $i, $rss());
    }' "$port" "$server" "$n"
  stop_server
}
measure "no extension"
measure "tern" -d extension="$so"
