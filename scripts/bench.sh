#!/usr/bin/env bash
# The end-to-end benchmarks behind docs/benchmarks.md (release build, real engine).
#   ./scripts/bench.sh ingest [--seconds 60]
#   ./scripts/bench.sh query  [--transactions 10000000]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --quiet -p tern-collector -p tern-loadgen -p tern-bench
exec ./target/release/tern-bench "$@"
