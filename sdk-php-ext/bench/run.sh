#!/usr/bin/env bash
# Per-call cost of the PHP extension: the same workload in PHP CLI without the extension,
# with it (hooks on, no call tree), and with every request profiled (call tree of all user
# calls), in one run. Usage: sdk-php-ext/bench/run.sh [iterations]   (builds --release)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p tern-php --release --quiet
so=$PWD/target/release/libtern.so
n=${1:-200000}
work=sdk-php-ext/bench/workload.php
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
common=(-d opcache.enable_cli=1 -d tern.socket="$tmp/none.sock" -d tern.active_path="$tmp/active")
php "${common[@]}" "$work" "$n" > "$tmp/off"
php "${common[@]}" -d extension="$so" "$work" "$n" > "$tmp/on"
php "${common[@]}" -d extension="$so" -d tern.profile_sample=1 -d tern.max_nodes=2000 "$work" "$n" > "$tmp/tree"
paste "$tmp/off" "$tmp/on" "$tmp/tree" | awk '
  BEGIN { printf "%-22s %10s %10s %10s %10s %10s\n", "case", "no ext", "tern", "added", "tern+tree", "added" }
  { printf "%-22s %10.1f %10.1f %10.1f %10.1f %10.1f\n", $1, $2, $4, $4 - $2, $6, $6 - $2 }'
echo "(ns per iteration, best of 3 rounds of $n; opcache on; no forwarder listening)"
