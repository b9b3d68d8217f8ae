# Shared by the built-in-server benchmarks (memory.sh, per_request.sh); sourced, not run.
# Builds the extension (--release), makes a temporary directory, and starts/stops PHP's
# built-in web server on a free-ish port.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build -p tern-php --release --quiet
so=$PWD/target/release/libtern.so
tmp=$(mktemp -d)
server=""
port=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# start_server [php args...]: serves $tmp/app.php with no forwarder listening; sets
# $server (pid) and $port. Ports below the ephemeral range: client sockets in TIME_WAIT
# hold those.
start_server() {
  port=$((10000 + RANDOM % 20000))
  php -d tern.socket="$tmp/none.sock" -d tern.active_path="$tmp/active" "$@" \
    -S 127.0.0.1:$port "$tmp/app.php" >"$tmp/server.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do php -r "exit(@fsockopen('127.0.0.1', $port) ? 0 : 1);" && break; sleep 0.1; done
  kill -0 "$server" 2>/dev/null || { echo "server did not start:" >&2; cat "$tmp/server.log" >&2; exit 1; }
}

stop_server() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }
