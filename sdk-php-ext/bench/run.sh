#!/usr/bin/env bash
# Per-call cost of the PHP extension: the same workload in PHP CLI without the extension,
# with it (hooks on, no call tree), and with every request profiled (call tree of all user
# calls), in one run. The three configurations alternate, 3 processes each; each process
# keeps the best of 3 rounds per case and the table shows the best process.
# Usage: sdk-php-ext/bench/run.sh [iterations]   (builds the extension with --release)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p tern-php --release --quiet
so=$PWD/target/release/libtern.so
n=${1:-100000}
work=sdk-php-ext/bench/workload.php
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
common=(-d opcache.enable_cli=1 -d tern.socket="$tmp/none.sock" -d tern.active_path="$tmp/active")
for round in 1 2 3; do
  php "${common[@]}" "$work" "$n" >> "$tmp/off"
  php "${common[@]}" -d extension="$so" "$work" "$n" >> "$tmp/on"
  php "${common[@]}" -d extension="$so" -d tern.profile_sample=1 "$work" "$n" >> "$tmp/tree"
done
# best($file, $column): per case, the lowest value of that column over the processes.
best() { awk -v c="$2" '{ if (!($1 in m) || $c < m[$1]) m[$1] = $c; if (!($1 in o)) o[$1] = n++ } END { for (k in m) print o[k], k, m[k] }' "$1" | sort -n | cut -d' ' -f2-; }
table() {
  echo "$1"
  paste <(best "$tmp/off" "$2") <(best "$tmp/on" "$2") <(best "$tmp/tree" "$2") | awk '
    BEGIN { printf "%-22s %10s %10s %10s %10s %10s\n", "case", "no ext", "tern", "added", "tern+tree", "added" }
    { printf "%-22s %10.1f %10.1f %10.1f %10.1f %10.1f\n", $1, $2, $4, $4 - $2, $6, $6 - $2 }'
}
table "CPU time per iteration, ns (getrusage)" 2
table "wall time per iteration, ns (hrtime)" 3
echo "(best of 3 processes x 3 rounds of $n iterations; opcache on; no forwarder listening)"
