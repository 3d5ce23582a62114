# Shared by deploy/verify/static.sh and live.sh (sourced, not run).
# Everything started here is recorded in STARTED (pid:name) and stopped by pid, in
# reverse order, by cleanup (the scripts trap EXIT); nothing leaves loopback.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${COVETD_VENV:-$ROOT/.venv}"
DEPLOYCHECK="${DEPLOYCHECK:-$ROOT/../shared/tools/deploycheck}"
PY="$VENV/bin/python"
STARTED=()
WORK=""

step() { printf '\n== %s\n' "$*"; }
ok() { printf '  ok   %s\n' "$*"; }
fail() { printf '  FAIL %s\n' "$*" >&2; exit 1; }

need() {  # need CMD HINT
  command -v "$1" >/dev/null 2>&1 || fail "$1 not found: $2"
}

make_work() {  # make_work NAME: a scratch dir, removed by cleanup
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/covetd-$1.XXXXXX")"
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

started() { STARTED+=("$1:$2"); }

stop_pid() {  # stop_pid PID NAME: TERM, up to 40 s for a graceful exit, then KILL
  local pid="$1" name="$2" i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 400); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  $name ($pid) ignored TERM for 40 s: KILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i entry
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
    entry="${STARTED[$i]}"
    stop_pid "${entry%%:*}" "${entry#*:}"
  done
  if [ -n "$WORK" ] && [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; fi
  [ -n "$WORK" ] && [ -n "${KEEP_WORK:-}" ] && echo "scratch kept: $WORK"
  return "$rc"
}

wait_http() {  # wait_http URL SECONDS: until URL answers 200
  local url="$1" deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$url did not answer 200 within $2 s"
    sleep 0.2
  done
}

# nginx_conf_copy DEST LISTEN_PORT [UPSTREAM_PORT]: deploy/nginx/covetd.conf with only its
# `listen` lines (-> 127.0.0.1:LISTEN_PORT; `nginx -t` binds them, and port 80 needs
# root) and optionally the upstream `server` line changed; fails if anything else
# differs. Then a main config around it in DEST's directory (pid, logs, temp paths).
nginx_conf_copy() {
  local dest="$1" listen="$2" upstream="${3:-}" dir expected=3
  dir="$(dirname "$dest")"
  mkdir -p "$dir/logs"
  sed -e "s/^    listen 80;$/    listen 127.0.0.1:$listen;/" \
      -e '/^    listen \[::\]:80;$/d' \
      ${upstream:+-e "s/^    server 127.0.0.1:8000;$/    server 127.0.0.1:$upstream;/"} \
      "$ROOT/deploy/nginx/covetd.conf" >"$dest"
  [ -z "$upstream" ] || expected=5
  if [ "$(diff "$ROOT/deploy/nginx/covetd.conf" "$dest" | grep -c '^[<>]')" != "$expected" ]; then
    diff "$ROOT/deploy/nginx/covetd.conf" "$dest" || true
    fail "deploy/nginx/covetd.conf: its listen/server lines are not the expected ones"
  fi
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    include $dest;
}
EOF
  NGINX_ARGS=(-p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log")
}

nginx_t() {  # nginx -t on the config nginx_conf_copy made: clean, no warnings
  nginx -t -q "${NGINX_ARGS[@]}" >"$WORK/nginx-t.txt" 2>&1 \
    || { cat "$WORK/nginx-t.txt"; fail "nginx -t"; }
  [ ! -s "$WORK/nginx-t.txt" ] || { cat "$WORK/nginx-t.txt"; fail "nginx -t printed warnings"; }
}

start_covetd() {  # start_covetd NAME ENV... : covetd -c deploy/nginx/covetd.yaml, env set
  local name="$1"
  shift
  (cd "$ROOT" && exec env "$@" "$VENV/bin/covetd" -c deploy/nginx/covetd.yaml \
    >"$WORK/$name.out" 2>"$WORK/$name.err") &
  COVETD_PID=$!
  started "$COVETD_PID" "$name"
}

# Bound the whole script: re-run it under timeout(1) once (TERM, then KILL 10 s later);
# the EXIT trap still stops what it started.
bound_time() {  # bound_time SECONDS "$0" "$@"
  local limit="$1"
  shift
  if [ -z "${COVETD_VERIFY_BOUNDED:-}" ]; then
    COVETD_VERIFY_BOUNDED=1 exec timeout --kill-after=10 "$limit" "$@"
  fi
}
