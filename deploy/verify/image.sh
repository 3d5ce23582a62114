#!/bin/bash
# Verify docker/Dockerfile and docker/docker-compose.yml for real, without a Docker
# engine (deploycheck: hadolint, buildah, podman + runc).
#
#   deploy/verify/image.sh            everything below (~2 min first time, root)
#   deploy/verify/image.sh --static   only the lint/validate steps (seconds)
#
# 1. hadolint (deploycheck lint dockerfile) on docker/Dockerfile;
#    docker-compose.yml: `docker-compose config -q` (Debian's docker-compose 1.29, which
#    validates against its Compose-spec JSON schema with no engine) and covetd
#    --check-config of the configs it mounts; promtool check config docker/prometheus.yml.
# 2. Builds the image with `deploycheck/ctr build`. Image registries are unreachable
#    here, so PYTHON_IMAGE is a local stand-in for python:3.11-slim (Debian 12 +
#    Python 3.11, deploy/verify/python-standin.Containerfile), built once. Checks it is
#    the native build (compiled engine, C first step) with no C compiler left in it.
# 3. Runs it (host network, free ports) and checks: serves / (HTTP 200), the image's
#    HEALTHCHECK passes (podman healthcheck run), covetd is PID 1 and reaps an orphan,
#    everything runs as uid 10001 (non-root), /metrics answers, then `podman stop`
#    exits 0 well within the stop timeout; deploycheck's `ctr smoke` verdict with a
#    read-only root filesystem; and docker-compose.yml's covetd service (its config,
#    read-only root, env) against a real PostgreSQL with examples/techempower.sql and
#    Redis (host binaries standing in for the images that cannot be pulled here).
#
# Its container is named covetd-verify-<pid> (ctr smoke's: dc-smoke-<pid>), removed
# on exit. Exit: 0 passed,
# 1 a check failed, 2 missing tools.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DC="${DEPLOYCHECK:-$ROOT/../shared/tools/deploycheck}"
TAG=localhost/covetd:verify
STANDIN=localhost/covetd-verify/python:3.11-standin-2  # -2: with the Python headers
STOP_TIMEOUT=30
NAME="covetd-verify-$$"
CTR="$DC/ctr"

fail() { echo "FAIL: $*"; exit 1; }
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND"' ERR
ok() { echo "  ok: $*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

[ -x "$DC/lint" ] || { echo "missing deploycheck at $DC"; exit 2; }

echo "== static checks"
out=$("$DC/lint" dockerfile "$ROOT/docker/Dockerfile" 2>&1) || { echo "$out"; fail "hadolint"; }
echo "$out" | sed 's/^/  /'
COMPOSE=$(command -v docker-compose || true)
if [ -z "$COMPOSE" ]; then
  echo "  docker-compose missing: apt-get install -y docker-compose"; exit 2
fi
(cd "$ROOT/docker" && "$COMPOSE" -f docker-compose.yml config -q) || fail "compose file invalid"
ok "docker-compose.yml: valid ($("$COMPOSE" version --short) config -q); services: $(cd "$ROOT/docker" && "$COMPOSE" -f docker-compose.yml config --services | tr '\n' ' ')"
PY="$ROOT/.venv/bin/python"; [ -x "$PY" ] || PY=python3
for pair in "config.yaml" "techempower.yaml"; do
  DATABASE_URL=postgresql://u:p@db/x REDIS_URL=redis://r:6379/0 \
    "$PY" -m covetd -c "$ROOT/docker/$pair" --app-dir "$ROOT" --check-config >/dev/null \
    || fail "docker/$pair does not pass covetd --check-config"
done
ok "docker/config.yaml, docker/techempower.yaml: covetd --check-config OK"
if command -v promtool >/dev/null; then
  promtool check config "$ROOT/docker/prometheus.yml" >/dev/null || fail "promtool check config"
  ok "docker/prometheus.yml: promtool check config OK"
fi
[ "${1:-}" = --static ] && { echo "STATIC CHECKS PASSED"; exit 0; }

[ "$(id -u)" = 0 ] || { echo "ctr needs root"; exit 2; }
PGDIR="" PGBIN="" REDIS_PID=""
cleanup() {
  "$CTR" podman rm -f "$NAME" >/dev/null 2>&1 || true
  [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
  if [ -n "$PGDIR" ]; then
    [ -f "$PGDIR/data/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
  fi
}
trap cleanup EXIT

echo "== build"
if ! "$CTR" podman image exists localhost/deploycheck/bookworm:base; then
  echo "  no deploycheck base image: run $DC/setup --rootfs"; exit 2
fi
if ! "$CTR" podman image exists "$STANDIN"; then
  echo "  building the python:3.11-slim stand-in $STANDIN (once)"
  timeout 900 "$CTR" build "$ROOT/deploy/verify" -f "$ROOT/deploy/verify/python-standin.Containerfile" \
    -t "$STANDIN" > /tmp/covetd-verify-standin.log 2>&1 \
    || { tail -20 /tmp/covetd-verify-standin.log; fail "stand-in base build"; }
fi
t0=$(now)
timeout 900 "$CTR" build "$ROOT" -f "$ROOT/docker/Dockerfile" -t "$TAG" \
  --build-arg PYTHON_IMAGE="$STANDIN" > /tmp/covetd-verify-build.log 2>&1 \
  || { tail -30 /tmp/covetd-verify-build.log; fail "image build"; }
ok "built $TAG in $(since "$t0")s (log: /tmp/covetd-verify-build.log)"
size=$("$CTR" podman image inspect "$TAG" --format '{{.Size}}')
base=$("$CTR" podman image inspect "$STANDIN" --format '{{.Size}}')
ok "image size $((size / 1000000)) MB = base $((base / 1000000)) MB + covetd layers $(((size - base) / 1000000)) MB"
cfg=$("$CTR" podman image inspect "$TAG" --format 'user={{.Config.User}} stopsignal={{.Config.StopSignal}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} ports={{.Config.ExposedPorts}}')
ok "$cfg"
[ -n "$("$CTR" podman image inspect "$TAG" --format '{{.Config.Healthcheck}}')" ] || fail "no HEALTHCHECK"
native=$("$CTR" podman run --rm --entrypoint python3 "$TAG" -c \
  'import covetd.engine.protocol as p, covetd.engine.driver as d; print(p.__file__, d._C_FIRST_STEP is not None)')
case "$native" in *.so\ True) ok "native build: $native" ;; *) fail "not the native build: $native" ;; esac
if "$CTR" podman run --rm --entrypoint sh "$TAG" -c 'command -v gcc || command -v cc'; then
  fail "a C compiler in the final image"
fi
ok "no C compiler in the final image"

echo "== run"
PORT=$(free_port); METRICS_PORT=$(free_port)
t0=$(now)
"$CTR" podman run -d --name "$NAME" --network host \
  -e PORT="$PORT" -e METRICS_PORT="$METRICS_PORT" "$TAG" 2> >(grep -v 'systemd connection' >&2) >/dev/null
code=000
for _ in $(seq 150); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/" || true)
  [ "$code" = 200 ] && break
  [ "$("$CTR" podman inspect "$NAME" --format '{{.State.Running}}')" = true ] || break
  sleep 0.2
done
[ "$code" = 200 ] || { "$CTR" podman logs "$NAME" 2>&1 | tail -20; fail "GET / answered $code"; }
ok "GET http://127.0.0.1:$PORT/ -> 200 ($(curl -s "http://127.0.0.1:$PORT/" | tr -d '\n')) $(since "$t0")s after podman run"
"$CTR" podman healthcheck run "$NAME" || fail "HEALTHCHECK failed"
ok "HEALTHCHECK (podman healthcheck run): healthy"
uid=$("$CTR" podman exec "$NAME" id -u)
users=$("$CTR" podman top "$NAME" user pid ppid args | tail -n +2)
echo "$users" | sed 's/^/     /'
[ "$uid" = 10001 ] || fail "runs as uid $uid"
ok "uid inside: $uid ($("$CTR" podman exec "$NAME" id -un)); no process as root: $(echo "$users" | awk '$1=="root"' | wc -l) found"
[ -z "$(echo "$users" | awk '$1=="root"')" ] || fail "a process runs as root"
pid1=$("$CTR" podman exec "$NAME" cat /proc/1/cmdline | tr '\0' ' ')
case "$pid1" in *covetd*) ok "PID 1: $pid1" ;; *) fail "PID 1 is $pid1" ;; esac
# An orphan: a podman exec'd process exits at once; its child, reparented to PID 1
# (covetd), notes its new parent and exits a second later: PID 1 must reap it.
"$CTR" podman exec "$NAME" python3 -c 'if 1:
    import os, time
    if os.fork() == 0:
        time.sleep(0.5)
        with open("/tmp/orphan", "w") as f:
            f.write(f"{os.getpid()} {os.getppid()}")
        time.sleep(1)
    os._exit(0)'
sleep 3
read -r orphan parent < <("$CTR" podman exec "$NAME" cat /tmp/orphan) || true
[ "$parent" = 1 ] || fail "the orphan's parent was $parent, not PID 1"
state=$("$CTR" podman exec "$NAME" sh -c "grep '^State:' /proc/$orphan/status 2>/dev/null || echo gone")
zombies=$("$CTR" podman exec "$NAME" sh -c 'grep -l "^State:[[:space:]]*Z" /proc/[0-9]*/status 2>/dev/null | wc -l')
[ "$state" = gone ] && [ "$zombies" = 0 ] || fail "orphan $orphan: $state; $zombies zombie(s): PID 1 does not reap"
ok "orphan $orphan was reparented to PID 1 and reaped after it exited (zombies: $zombies)"
metrics=$(curl -s --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics")
echo "$metrics" | grep -q '^covetd_workers 2' || fail "/metrics without covetd_workers 2"
ok "/metrics on $METRICS_PORT: $(echo "$metrics" | grep -m1 '^covetd_http_requests_total{')"
t0=$(now)
"$CTR" podman stop -t "$STOP_TIMEOUT" "$NAME" 2> >(grep -v 'systemd connection' >&2) >/dev/null
took=$(since "$t0")
ec=$("$CTR" podman inspect "$NAME" --format '{{.State.ExitCode}}')
ok "podman stop: exit code $ec after ${took}s (SIGKILL would come at ${STOP_TIMEOUT}s)"
[ "$ec" = 0 ] || fail "exit code $ec"
awk -v t="$took" -v m="$STOP_TIMEOUT" 'BEGIN{exit !(t < m / 3)}' || fail "stop took ${took}s"
echo "  log tail:"; "$CTR" podman logs "$NAME" 2>&1 | tail -4 | sed 's/^/     /'

echo "== deploycheck ctr smoke"
PORT=$(free_port); METRICS_PORT=$(free_port)
echo "  (read-only root filesystem + tmpfs /tmp, as docker-compose.yml runs it)"
out=$("$CTR" smoke "$TAG" "$PORT" --stop-timeout "$STOP_TIMEOUT" -- \
  --read-only --read-only-tmpfs=false --tmpfs /tmp -e METRICS_PORT="$METRICS_PORT" 2>&1) || { echo "$out"; fail "ctr smoke"; }
echo "$out" | sed 's/^/  /'

echo "== docker-compose.yml's covetd service against a real PostgreSQL and Redis"
# The postgres/redis images cannot be pulled here: the host's PostgreSQL and Redis
# binaries stand in for them, set up as the compose file does (user covetd, database
# techempower, examples/techempower.sql run as that user like docker-entrypoint-initdb.d).
PGBIN=$(dirname "$(readlink -f "$(command -v initdb || echo /nonexistent)")")
if [ ! -x "$PGBIN/pg_ctl" ] || ! command -v redis-server >/dev/null; then
  echo "  SKIPPED: needs PostgreSQL (initdb, pg_ctl) and redis-server"
else
  PGDIR=$(mktemp -d /tmp/covetd-verify-pg.XXXXXX); chown postgres: "$PGDIR"
  PGPORT=$(free_port); RPORT=$(free_port)
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -E UTF8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -t 30 \
    -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1" start >/dev/null
  psql -q -h "$PGDIR" -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE covetd LOGIN PASSWORD 'covetd'" -c "CREATE DATABASE techempower OWNER covetd"
  psql -q -h "$PGDIR" -p "$PGPORT" -U covetd -d techempower -v ON_ERROR_STOP=1 \
    -f "$ROOT/examples/techempower.sql" >/dev/null
  redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no \
    > "$PGDIR/redis.log" 2>&1 &
  REDIS_PID=$!
  ok "PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}') on :$PGPORT (scram-sha-256), Redis on :$RPORT"
  PORT=$(free_port); METRICS_PORT=$(free_port)
  "$CTR" podman run -d --name "$NAME" --replace --network host \
    --read-only --read-only-tmpfs=false --tmpfs /tmp \
    -v "$ROOT/docker/techempower.yaml:/etc/covetd/config.yaml:ro" \
    -e PORT="$PORT" -e METRICS_PORT="$METRICS_PORT" -e COVETD_WORKERS=2 \
    -e DATABASE_URL="postgresql://covetd:covetd@127.0.0.1:$PGPORT/techempower" \
    -e REDIS_URL="redis://127.0.0.1:$RPORT/0" \
    "$TAG" 2> >(grep -v 'systemd connection' >&2) >/dev/null
  code=000
  for _ in $(seq 150); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$METRICS_PORT/readyz" || true)
    [ "$code" = 200 ] && break
    [ "$("$CTR" podman inspect "$NAME" --format '{{.State.Running}}')" = true ] || break
    sleep 0.2
  done
  [ "$code" = 200 ] || { "$CTR" podman logs "$NAME" 2>&1 | tail -20; fail "/readyz answered $code"; }
  ok "/readyz 200 (every worker's pool connected)"
  db=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/db")
  echo "$db" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert set(d) == {"id","randomNumber"}' \
    || fail "/db answered: $db"
  n=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/queries?queries=5" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$n" = 5 ] || fail "/queries?queries=5 gave $n rows"
  curl -s --max-time 5 "http://127.0.0.1:$PORT/fortunes" | grep -q 'Additional fortune added at request time' \
    || fail "/fortunes"
  ok "/db -> $db; /queries?queries=5 -> $n rows; /fortunes -> the fortunes table"
  "$CTR" podman stop -t "$STOP_TIMEOUT" "$NAME" 2> >(grep -v 'systemd connection' >&2) >/dev/null
  ec=$("$CTR" podman inspect "$NAME" --format '{{.State.ExitCode}}')
  [ "$ec" = 0 ] || fail "exit code $ec"
  ok "stopped: exit code $ec"
fi

echo "IMAGE VERIFICATION PASSED"
