#!/usr/bin/env bash
# Every test, with set-up: formatting, lints, unit and integration tests (the real
# embedded ClickHouse engine, real OTLP clients, servers on free loopback ports).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
say "building tests"
cargo build --workspace --bins --quiet
cargo build -p tern-php --quiet # the PHP extension (cdylib) its PHPT tests load
if cargo nextest --version >/dev/null 2>&1; then
  say "cargo nextest run"
  cargo nextest run --workspace --no-fail-fast --failure-output final
else
  say "cargo test"
  cargo test --workspace --no-fail-fast
fi
