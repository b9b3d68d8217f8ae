#!/usr/bin/env bash
# PromQL through the collector's Prometheus-compatible API, side by side with a real
# Prometheus (Debian's 2.42) holding exactly the same samples. Release build.
#   ./scripts/bench-promql.sh [--transactions 1000000] [--hours 3]
# Seeds transactions over the last N hours by SQL into the embedded store (5 services,
# 200 endpoints, 3 instances each: 600 series per metric), exports every tern_* sample
# through the API, loads them into Prometheus (promtool create-blocks-from openmetrics),
# then times dashboard queries on both (2 warm-up requests, 10 timed, p50 and max).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
TRANSACTIONS=1000000
HOURS=3
while [ $# -gt 0 ]; do
  case "$1" in
    --transactions) TRANSACTIONS="$2"; shift 2 ;;
    --hours) HOURS="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
cargo build --release --quiet -p tern-collector --bin tern-collector
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

TERN_DATA_DIR="$WORK/data" TERN_API_LISTEN=127.0.0.1:0 TERN_OTLP_GRPC_LISTEN=127.0.0.1:0 \
  TERN_OTLP_HTTP_LISTEN=127.0.0.1:0 TERN_LOG=warn \
  ./target/release/tern-collector --ready-file "$WORK/ready.json" >/dev/null &
PIDS+=($!)
for _ in $(seq 600); do [ -s "$WORK/ready.json" ] && break; sleep 0.1; done
PROM_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

python3 - "$WORK" "$TRANSACTIONS" "$HOURS" "$PROM_PORT" <<'EOF'
import json, subprocess, sys, time, urllib.parse, urllib.request

work, n, hours, prom_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ready = json.load(open(f"{work}/ready.json"))
api, store = f"http://{ready['api']}", ready["store"]

def get(url):
    with urllib.request.urlopen(url, timeout=600) as r:
        return json.load(r)

def sql(q):
    req = urllib.request.Request(store, data=q.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read().decode()

while get(f"{api}/api/v1/self").get("tern_store_schema_version", 0) < 1:
    time.sleep(0.2)

now_ms = int(time.time() * 1000) // 60000 * 60000 - 60000
window = hours * 3600 * 1000
sql(f"""INSERT INTO tern.transactions SELECT
  fromUnixTimestamp64Milli(toInt64({now_ms} - 1 - intDiv(number * {window}, {n}))) AS end_ms,
  toUInt64(greatest(100, exp(randNormal(9.0, 1.0)))) AS elapsed_us,
  ['shop-frontend','order-service','payment-service','inventory-service','notification-worker'][number % 5 + 1] AS service,
  concat(service, '-', toString(number % 3)) AS instance,
  concat('GET /api/e', toString(intDiv(number, 5) % 40)) AS endpoint,
  'GET', toUInt16(if(number % 100 = 0, 500, 200)), toUInt8(number % 100 = 0),
  if(number % 100 = 0, 'HTTP 500', ''), '', intDiv(elapsed_us, 3),
  toUInt32(number % 4), intDiv(elapsed_us, 4), toUInt32(number % 2), intDiv(elapsed_us, 5),
  toUInt64(0), '10.0.0.1', '',
  toFixedString(concat(reinterpretAsString(cityHash64(number)), reinterpretAsString(cityHash64(number, 1))), 16),
  toFixedString(reinterpretAsString(cityHash64(number, 2)), 8)
FROM numbers({n})""")
sql("OPTIMIZE TABLE tern.endpoint_minutes FINAL")

# Export Tern's samples (per family, to keep answers small) as OpenMetrics.
names = get(f"{api}/api/v1/label/__name__/values")["data"]
samples = 0
with open(f"{work}/samples.om", "w") as out:
    for name in names:
        q = urllib.parse.quote(f"{name}[{hours + 1}h]")
        data = get(f"{api}/api/v1/query?query={q}&time={now_ms / 1000}")["data"]["result"]
        for s in data:
            m = s["metric"]
            esc = lambda v: v.replace("\\", "\\\\").replace('"', '\\"')
            labels = ",".join(f'{k}="{esc(v)}"' for k, v in sorted(m.items()) if k != "__name__")
            for t, v in s["values"]:
                out.write(f"{m['__name__']}{{{labels}}} {v} {t}\n")
                samples += 1
    out.write("# EOF\n")
subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", f"{work}/samples.om",
                f"{work}/prom"], check=True, stdout=subprocess.DEVNULL)
open(f"{work}/prom.yml", "w").write("global: {}\n")
prom = subprocess.Popen(["prometheus", f"--config.file={work}/prom.yml",
                         f"--storage.tsdb.path={work}/prom", f"--web.listen-address=127.0.0.1:{prom_port}",
                         "--storage.tsdb.retention.time=30d"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
purl = f"http://127.0.0.1:{prom_port}"
try:
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{purl}/-/ready", timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    end = now_ms / 1000
    queries = [
        ("requests/s by service, 1h, step 60s", "sum by (service) (rate(tern_requests_total[5m]))", 3600, 60),
        ("p95 by service, 1h, step 60s",
         "histogram_quantile(0.95, sum by (le, service) (rate(tern_request_duration_seconds_bucket[5m])))", 3600, 60),
        ("error ratio by service, 1h, step 60s",
         "sum by (service) (rate(tern_request_errors_total[5m])) / on (service) sum by (service) (rate(tern_requests_total[5m]))",
         3600, 60),
        ("top 10 endpoints of one service, 1h, step 60s",
         'topk(10, sum by (endpoint) (rate(tern_requests_total{service="order-service"}[5m])))', 3600, 60),
        (f"requests/s by service, {hours}h, step 5m", "sum by (service) (rate(tern_requests_total[5m]))",
         hours * 3600, 300),
        ("endpoint table (instant, increase over 1h)",
         'sum by (endpoint) (increase(tern_requests_total{service="order-service"}[1h]))', 0, 0),
    ]
    def timed(base, q, rng, step):
        if rng:
            url = (f"{base}/api/v1/query_range?query={urllib.parse.quote(q)}"
                   f"&start={end - rng}&end={end}&step={step}")
        else:
            url = f"{base}/api/v1/query?query={urllib.parse.quote(q)}&time={end}"
        for _ in range(2):
            get(url)
        ms = []
        for _ in range(10):
            t = time.perf_counter()
            r = get(url)
            ms.append((time.perf_counter() - t) * 1000)
        assert r["status"] == "success", r
        ms.sort()
        return ms[len(ms) // 2], ms[-1], len(r["data"]["result"])
    print(f"\n{n} transactions over {hours} h, {samples} samples exported to Prometheus\n")
    print("| query | Tern p50 / max ms | Prometheus 2.42 p50 / max ms | series |")
    print("| --- | --- | --- | --- |")
    for what, q, rng, step in queries:
        t50, tmax, ts = timed(api, q, rng, step)
        p50, pmax, ps = timed(purl, q, rng, step)
        # topk over equal rates may pick different (tied) endpoints at some steps.
        assert ts == ps or "topk" in q, (what, ts, ps)
        series = ts if ts == ps else f"{ts} (Prometheus {ps}: ties)"
        print(f"| {what} | {t50:.1f} / {tmax:.1f} | {p50:.1f} / {pmax:.1f} | {series} |")
finally:
    prom.terminate()
EOF
