#!/usr/bin/env bash
# deploy/verify/live.sh: the deploy/ artefacts running for real, on loopback, free ports
# (about 40 s; exit 1 on the first failure; stops what it started, by pid).
#
#   1. covetd (deploy/nginx/covetd.yaml, 2 workers, metrics on; app deploy/verify/app.py
#      = examples/chat.py + /whoami, /upload, /stream) and a real nginx (Debian package)
#      running deploy/nginx/covetd.conf, only its `listen` and upstream `server` lines
#      changed to the free ports; `nginx -t` clean
#   2. through nginx, from 127.0.0.2 (an address covetd does not trust): covetd sees the
#      real client despite forged X-Forwarded-For / Forwarded headers; Host and scheme;
#      the access log's client; body limits agree at 10 MiB; upstream keep-alive;
#      a streamed response is not buffered
#   3. WebSocket through nginx: /echo (text, binary, 256 KiB) with the websockets
#      client, and with real Chromium (deploycheck browser-ws) when it is installed
#   4. a HUP reload of covetd under keep-alive GET + POST load through nginx: no failure
#   5. a real Prometheus (deploycheck prom-scrape) scrapes covetd's /metrics, 2 workers
#   6. a real Prometheus runs deploy/prometheus/prometheus.yml (target and intervals
#      changed) with alerts.yml: every rule evaluates, none fires on a healthy covetd;
#      covetd stopped: up=0 and CovetdDown goes pending
#   nginx's error log has no [error] or worse throughout.
#
# Needs: the project venv (.venv), nginx, prometheus + promtool, curl, ss (iproute2);
# ../shared/tools/deploycheck (prom-scrape; browser-ws with chromium, optional).
# Env: COVETD_VENV, DEPLOYCHECK, KEEP_WORK=1 keeps the scratch dir (logs),
# COVETD_VERIFY_TIMEOUT bounds the whole run (240 s; exit 124 when reached).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bound_time "${COVETD_VERIFY_TIMEOUT:-240}" "$0" "$@"
trap cleanup EXIT
trap 'exit 143' TERM INT
cd "$ROOT"
make_work live
chmod 755 "$WORK"  # nginx's workers (user nobody when started as root) use its temp dirs
T0=$SECONDS

for tool in curl nginx prometheus promtool ss; do need "$tool" "see the header of $0"; done
[ -x "$PY" ] || fail "$PY missing: run make test (or set COVETD_VENV)"
[ -x "$DEPLOYCHECK/prom-scrape" ] || fail "$DEPLOYCHECK/prom-scrape missing (set DEPLOYCHECK)"

step "1. covetd behind nginx"
PORT=$(free_port)
METRICS=$(free_port)
NGINX=$(free_port)
start_covetd covetd COVETD_APP=deploy.verify.app:app COVETD_BIND="127.0.0.1:$PORT" \
  COVETD_METRICS_BIND="127.0.0.1:$METRICS" COVETD_WORKERS=2
wait_http "http://127.0.0.1:$METRICS/readyz" 30
ok "covetd master $COVETD_PID on 127.0.0.1:$PORT, metrics on :$METRICS: $(curl -fsS "http://127.0.0.1:$METRICS/healthz")"

nginx_conf_copy "$WORK/nginx/covetd.conf" "$NGINX" "$PORT"
ok "deploy/nginx/covetd.conf with 3 lines changed: listen 127.0.0.1:$NGINX (no [::]:80), upstream server 127.0.0.1:$PORT"
nginx_t
ok "nginx -t: clean"
nginx "${NGINX_ARGS[@]}" -g 'daemon off;' &
NGINX_PID=$!
started "$NGINX_PID" nginx
wait_http "http://127.0.0.1:$NGINX/" 10
ok "nginx $(nginx -v 2>&1 | sed 's/.*version: //') master $NGINX_PID on 127.0.0.1:$NGINX"

step "2. HTTP through nginx: the real client, limits, keep-alive, streaming"
"$PY" deploy/verify/live_checks.py proxy "$NGINX" "$PORT"
sleep 0.2
"$PY" - "$WORK/covetd.out" <<'EOF' || fail "covetd's access log"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
proxied = [l for l in lines if l["path"] == "/whoami"]
clients = sorted({l["client"] for l in proxied})
print(f"  {'ok  ' if clients == ['127.0.0.2'] else 'FAIL'} covetd's access log: "
      f"{len(lines)} lines, {len(proxied)} for /whoami, client(s) {clients}")
sys.exit(clients != ["127.0.0.2"])
EOF

step "3. WebSocket through nginx"
"$PY" deploy/verify/live_checks.py ws "$NGINX"
if [ -x "$DEPLOYCHECK/browser-ws" ] && command -v chromium >/dev/null 2>&1; then
  timeout 90 "$DEPLOYCHECK/browser-ws" "ws://127.0.0.1:$NGINX/echo" --count 5 --size 262144 \
    >"$WORK/browser-ws.txt" 2>&1 || { cat "$WORK/browser-ws.txt"; fail "browser-ws"; }
  sed 's/^/  /' "$WORK/browser-ws.txt" | tail -n 8
  ok "Chromium: WebSocket echo through nginx"
else
  echo "  --   browser-ws skipped (deploycheck browser-ws or chromium not installed)"
fi

step "4. HUP reload of covetd under load through nginx"
"$PY" deploy/verify/live_checks.py reload "$NGINX" "$COVETD_PID" "$WORK/covetd.err"
wait_http "http://127.0.0.1:$METRICS/readyz" 10
ok "covetd ready after the reload: $(curl -fsS "http://127.0.0.1:$METRICS/healthz")"

step "5. prom-scrape: a real Prometheus scrapes covetd's /metrics (2 workers)"
expect=()
for name in covetd_http_requests_total covetd_http_request_duration_seconds_bucket \
  covetd_http_requests_in_flight covetd_http_connections_active \
  covetd_websocket_connections_active covetd_websocket_messages_total covetd_workers \
  covetd_worker_restarts_total covetd_event_loop_lag_seconds process_cpu_seconds_total \
  process_resident_memory_bytes; do expect+=(--expect "$name"); done
timeout 90 "$DEPLOYCHECK/prom-scrape" "http://127.0.0.1:$METRICS/metrics" --scrapes 3 \
  "${expect[@]}" \
  --query 'covetd_workers' \
  --query 'sum by (reason) (covetd_worker_restarts_total)' \
  --query 'sum by (route, status) (covetd_http_requests_total)' \
  --query 'covetd_event_loop_lag_seconds' \
  --query 'sum by (process) (process_resident_memory_bytes)' \
  >"$WORK/prom-scrape.txt" 2>&1 || { cat "$WORK/prom-scrape.txt"; fail "prom-scrape"; }
awk '/^  [a-z_]+$/ { names = names " " $1; next }
     names { print "    " names; names = "" } { print "  " $0 }' "$WORK/prom-scrape.txt"

step "6. Prometheus with deploy/prometheus/prometheus.yml and alerts.yml"
PROM=$(free_port)
"$PY" - "$WORK/prometheus.yml" "127.0.0.1:$METRICS" "$ROOT/deploy/prometheus/alerts.yml" <<'EOF'
import sys, yaml
out, target, rules = sys.argv[1:]
config = yaml.safe_load(open("deploy/prometheus/prometheus.yml"))
config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
config["rule_files"] = [rules]
(job,) = [j for j in config["scrape_configs"] if j["job_name"] == "covetd"]
job["static_configs"][0]["targets"] = [target]
yaml.safe_dump(config, open(out, "w"), sort_keys=False)
print(f"  deploy/prometheus/prometheus.yml with target {target}, intervals 1 s, rules {rules}")
EOF
promtool check config "$WORK/prometheus.yml" >/dev/null || fail "promtool check config"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus-data" \
  --web.listen-address="127.0.0.1:$PROM" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
started "$PROM_PID" prometheus
wait_http "http://127.0.0.1:$PROM/-/ready" 30
ok "prometheus $(prometheus --version 2>&1 | head -n1 | awk '{print $3}') pid $PROM_PID on 127.0.0.1:$PROM"
"$PY" deploy/verify/live_checks.py rules "http://127.0.0.1:$PROM"
stop_pid "$COVETD_PID" covetd
ok "covetd stopped (TERM): $(grep -c 'exited (stop, code 0)' "$WORK/covetd.err") workers exited 0"
"$PY" deploy/verify/live_checks.py rules "http://127.0.0.1:$PROM" down

step "nginx error log"
# One [error] is expected: the 10 MiB + 1 upload nginx refused with 413.
if grep -E '\[(error|crit|alert|emerg)\]' "$WORK/nginx/logs/error.log" \
  | grep -v 'client intended to send too large body: 10485761 bytes'; then
  fail "nginx logged errors (above)"
fi
ok "nginx error log: $(wc -l <"$WORK/nginx/logs/error.log") line(s), nothing but the expected 413; $(wc -l <"$WORK/nginx/logs/access.log") requests in its access log"

printf '\nlive.sh: PASS (%d s)\n' "$((SECONDS - T0))"
