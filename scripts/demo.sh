#!/usr/bin/env bash
# Tern's main job: the collector with its embedded ClickHouse store, fed by a demo
# workload, until Ctrl-C. Set-up and build included.
#
#   ./scripts/demo.sh                 # 200 transactions/s of demo traffic
#   TERN_DEMO_RATE=1000 ./scripts/demo.sh
#
# Besides the load tool, a real Rust service instrumented with tern-agent runs
# (agent/examples/demo_service.rs: axum + SQLite + outgoing HTTP), driving itself with
# TERN_DEMO_SHOP_RATE requests/s (default 5) on 127.0.0.1:$TERN_DEMO_SHOP_PORT (3000),
# and a PHP app with the PHP agent (scripts/demo-php.sh) on $TERN_DEMO_PHP_PORT (3001).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

say "building (release)"
cargo build --release --quiet -p tern-collector -p tern-loadgen
cargo build --release --quiet -p tern-agent --example demo_service
cargo build --release --quiet -p tern-agent -p tern-php   # tern-agent forwarder, libtern.so

DATA="${TERN_DATA_DIR:-.tern/demo}"
mkdir -p "$DATA"
READY="$DATA/ready.json"
rm -f "$READY"
export TERN_DATA_DIR="$DATA"
./target/release/tern-collector --ready-file "$READY" &
COLLECTOR=$!
LOADGEN=""
SHOP=""
PHP_DEMO=""
cleanup() {
  [ -n "$PHP_DEMO" ] && kill -TERM "$PHP_DEMO" 2>/dev/null && wait "$PHP_DEMO" 2>/dev/null || true
  [ -n "$LOADGEN" ] && kill "$LOADGEN" 2>/dev/null || true
  [ -n "$SHOP" ] && kill -TERM "$SHOP" 2>/dev/null && wait "$SHOP" 2>/dev/null || true
  kill -TERM "$COLLECTOR" 2>/dev/null || true
  wait "$COLLECTOR" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 600); do
  [ -s "$READY" ] && break
  kill -0 "$COLLECTOR" 2>/dev/null || { say "the collector exited during start-up (see its log above)"; exit 1; }
  sleep 0.1
done
[ -s "$READY" ] || { say "the collector did not start within 60 s"; exit 1; }
field() { sed -E "s/.*\"$1\":\"([^\"]*)\".*/\1/" "$READY"; }
API="http://$(field api)"
GRPC="http://$(field otlp_grpc)"

./target/release/tern-loadgen --endpoint "$GRPC" --rate "${TERN_DEMO_RATE:-200}" --duration forever >"$DATA/loadgen.log" 2>&1 &
LOADGEN=$!
SHOP_ADDR="127.0.0.1:${TERN_DEMO_SHOP_PORT:-3000}"
OTEL_EXPORTER_OTLP_ENDPOINT="$GRPC" ./target/release/examples/demo_service \
  --listen "$SHOP_ADDR" --drive "${TERN_DEMO_SHOP_RATE:-5}" >"$DATA/demo-shop.log" 2>&1 &
SHOP=$!
PHP_ADDR="127.0.0.1:${TERN_DEMO_PHP_PORT:-3001}"
scripts/demo-php.sh "$GRPC" "$DATA" "${PHP_ADDR#*:}" "http://$SHOP_ADDR" >"$DATA/demo-php.log" 2>&1 &
PHP_DEMO=$!

cat <<TXT

  Tern is running with demo traffic (log of the load tool: $DATA/loadgen.log).

  Web UI      $API/ui/      <- open this: live dashboard, X-View, call trees

  A Rust service with the tern-agent layer, "demo-shop", runs on http://$SHOP_ADDR
  (axum + SQLite + outgoing HTTP; log: $DATA/demo-shop.log).
  A PHP app, "demo-php", runs on php-fpm with tern.so behind nginx on http://$PHP_ADDR,
  through the tern-agent forwarder (scripts/demo-php.sh; logs: $DATA/php/).

  OTLP gRPC   $GRPC        (point any OpenTelemetry SDK here)
  OTLP HTTP   http://$(field otlp_http)/v1/traces
  API         $API/api/v1/   (docs/api.md)
  ClickHouse  $(field store)   (the embedded store; any ClickHouse HTTP client works)

  Try:
    curl -s '$API/api/v1/services' | python3 -m json.tool
    curl -s '$API/api/v1/endpoints' | python3 -m json.tool
    curl -s '$API/api/v1/xview?limit=20' | python3 -m json.tool
    curl -s '$API/api/v1/sql' | python3 -m json.tool
    curl -s '$API/api/v1/errors' | python3 -m json.tool
    curl -s '$API/api/v1/active' | python3 -m json.tool      # demo-shop's running transactions
    curl -s '$API/api/v1/agents' | python3 -m json.tool

  Ctrl-C stops them all.
TXT
wait "$COLLECTOR"
