#!/usr/bin/env bash
# The PHP part of the demo (started by scripts/demo.sh): the test app of the PHP agent
# (sdk-php-ext/tests/app) on php-fpm with tern.so behind nginx, the tern-agent forwarder,
# and a little load. Stops everything it started when it ends.
#
#   scripts/demo-php.sh <collector OTLP gRPC URL> <data dir> <port> <outgoing-call target URL>
set -euo pipefail
cd "$(dirname "$0")/.."
GRPC=$1 DATA=$(realpath -m "$2") PORT=$3 TARGET=$4
APP=$PWD/sdk-php-ext/tests/app
DIR=$DATA/php
mkdir -p "$DIR/nginx-tmp"
FPM=/usr/sbin/php-fpm8.2
[ -x "$FPM" ] && [ -x /usr/sbin/nginx ] || { echo "php-fpm8.2 or nginx missing: no PHP demo" >&2; exit 0; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 0' INT TERM

./target/release/tern-agent --socket "$DIR/tern-agent.sock" --active "$DIR/tern-active" \
  --endpoint "$GRPC" 2>"$DIR/tern-agent.log" &
pids+=($!)

cat >"$DIR/php-fpm.conf" <<CONF
[global]
pid = $DIR/php-fpm.pid
error_log = $DIR/php-fpm.log
daemonize = no
[demo]
user = $(id -un)
group = $(id -gn)
listen = $DIR/php-fpm.sock
pm = static
pm.max_children = 4
CONF
as_root=(); [ "$(id -u)" -eq 0 ] && as_root=(-R)
"$FPM" -F "${as_root[@]}" -y "$DIR/php-fpm.conf" -d "extension=$PWD/target/release/libtern.so" \
  -d tern.service_name=demo-php -d "tern.socket=$DIR/tern-agent.sock" \
  -d "tern.active_path=$DIR/tern-active" 2>>"$DIR/php-fpm.log" &
pids+=($!)

user_line=""; [ "$(id -u)" -eq 0 ] && user_line="user root;"
cat >"$DIR/nginx.conf" <<CONF
$user_line
worker_processes 1;
daemon off;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx-tmp/body;
  fastcgi_temp_path $DIR/nginx-tmp/fastcgi;
  proxy_temp_path $DIR/nginx-tmp/proxy;
  uwsgi_temp_path $DIR/nginx-tmp/uwsgi;
  scgi_temp_path $DIR/nginx-tmp/scgi;
  server {
    listen 127.0.0.1:$PORT;
    location / {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $APP/index.php;
      fastcgi_param SCRIPT_NAME /index.php;
      fastcgi_param APP_SELF_URL "http://127.0.0.1:$PORT";
      fastcgi_param APP_TARGET_URL "$TARGET";
      fastcgi_param APP_SQLITE "$DIR/app.sqlite";
      fastcgi_pass unix:$DIR/php-fpm.sock;
    }
  }
}
CONF
/usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" &
pids+=($!)

# A little load: a request every 200 ms or so, mostly fine, some failing, some slow.
paths=(/pdo-sqlite /read /curl /curl-multi /stream /chain /read /throw /exit "/slow?s=2&kind=http")
curl -s -o /dev/null "http://127.0.0.1:$PORT/pdo-sqlite" || true
while true; do
  p=${paths[$((RANDOM % ${#paths[@]}))]}
  curl -s -o /dev/null --max-time 10 "http://127.0.0.1:$PORT$p" || true
  sleep 0.2
done
