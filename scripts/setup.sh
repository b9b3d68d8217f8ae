#!/usr/bin/env bash
# Set-up for a fresh Debian machine: system packages, the pinned embedded ClickHouse
# engine (chDB), and the web UI's browser-test tools (Debian's Chromium, playwright-core
# from npm, pinned by collector/tests/ui/package-lock.json). Idempotent: each step is skipped when already done.
set -euo pipefail

CHDB_VERSION="26.7.3-stable.1"
CHDB_DIR="${TERN_CACHE_DIR:-$HOME/.cache/tern}/chdb/$CHDB_VERSION"
export TERN_CHDB_LIB="${TERN_CHDB_LIB:-$CHDB_DIR/libchdb.so}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# PHP agent (sdk-php-ext): PHP 8.2 with the extensions its tests use, headers for
# ext-php-rs, clang for bindgen.
for pkg in php8.2-cli php8.2-dev php8.2-fpm php8.2-sqlite3 php8.2-curl php8.2-mysql php8.2-opcache clang libclang-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)  # reference for the PromQL comparison test
# The PHP agent's integration tests and benchmark: nginx in front of php-fpm, MariaDB, wrk.
[ -x /usr/sbin/nginx ] || need_apt+=(nginx)
[ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -s "$TERN_CHDB_LIB" ]; then
  say "fetching the embedded ClickHouse engine (chDB $CHDB_VERSION, ~180 MB download, 566 MB unpacked)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "@chdb/lib-linux-x64-gnu@$CHDB_VERSION" >/dev/null)
  tar -xzf "$tmp"/chdb-lib-linux-x64-gnu-*.tgz -C "$tmp" package/libchdb.so
  mkdir -p "$CHDB_DIR"
  mv "$tmp/package/libchdb.so" "$TERN_CHDB_LIB.partial"
  mv "$TERN_CHDB_LIB.partial" "$TERN_CHDB_LIB"
fi
say "embedded engine: $TERN_CHDB_LIB"

UI_TESTS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/collector/tests/ui"
if [ ! -d "$UI_TESTS/node_modules/playwright-core" ]; then
  say "installing playwright-core for the browser tests (no browser download: Debian's chromium is used)"
  (cd "$UI_TESTS" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund >/dev/null)
fi
