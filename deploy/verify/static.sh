#!/usr/bin/env bash
# deploy/verify/static.sh: quick checks of every artefact under deploy/ (CI-safe:
# no root, no network beyond loopback, about 15 s, exit 1 on the first failure).
#
#   1. every YAML file under deploy/ parses (PyYAML, and yamllint -d relaxed)
#   2. nginx: `nginx -t` on deploy/nginx/covetd.conf inside a throwaway main config
#      (prefix, pid, logs and temp paths in a scratch dir; only the `listen` lines
#      changed, to a free loopback port, as nginx -t binds them); its values agree with
#      deploy/nginx/covetd.yaml, which `covetd --check-config` accepts
#   3. Kubernetes: kubernetes-validate --strict (1.37 and the oldest supported, 1.30);
#      the manifests agree with each other and with the ConfigMap's covetd YAML,
#      which `covetd --check-config` accepts
#   4. Prometheus: promtool check config, check rules, test rules (alerts_test.yml);
#      every alert has a unit test where it fires
#   5. Grafana + alerts: the dashboard JSON parses; every metric and label it and the
#      alert rules use is one covetd exports: a live scrape of covetd (2 workers,
#      metrics on, after HTTP and WebSocket traffic), which promtool also lints, and
#      the METRICS table for the database series a scrape only has with a database
#
# Needs: the project venv (make test creates .venv), nginx (apt-get install
# nginx-light), promtool (apt-get install prometheus), kubernetes-validate and
# yamllint (../shared/tools/deploycheck/setup installs them; or on PATH), curl.
# Env: COVETD_VENV, DEPLOYCHECK, KEEP_WORK=1 keeps the scratch dir,
# COVETD_VERIFY_TIMEOUT bounds the whole run (180 s; exit 124 when reached).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bound_time "${COVETD_VERIFY_TIMEOUT:-180}" "$0" "$@"
trap cleanup EXIT
trap 'exit 143' TERM INT
cd "$ROOT"
make_work static
T0=$SECONDS

need curl "apt-get install curl"
need nginx "apt-get install nginx-light (Debian's nginx)"
need promtool "apt-get install prometheus"
[ -x "$PY" ] || fail "$PY missing: run make test (or set COVETD_VENV)"
# kubernetes-validate and yamllint: deploycheck's (its venv), else from PATH.
TOOLS_VENV="${COVETD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/covetd-tools}/deploycheck/venv/bin"
if command -v kubernetes-validate >/dev/null 2>&1; then  # CI installs it in .venv
  k8s_validate() { kubernetes-validate --strict "$@"; }
elif [ -x "$DEPLOYCHECK/lint" ] && [ -x "$TOOLS_VENV/kubernetes-validate" ]; then
  k8s_validate() { "$DEPLOYCHECK/lint" k8s "$@"; }
else
  fail "kubernetes-validate not found: pip install kubernetes-validate (or ../shared/tools/deploycheck/setup)"
fi
YAMLLINT="$(command -v yamllint || echo "$TOOLS_VENV/yamllint")"
[ -x "$YAMLLINT" ] || fail "yamllint not found: pip install yamllint (or deploycheck setup)"

step "1. YAML under deploy/"
"$PY" deploy/verify/checks.py yaml
mapfile -t yamls < <(find deploy -name '*.yml' -o -name '*.yaml' | sort)
"$YAMLLINT" -c deploy/verify/yamllint.yaml "${yamls[@]}" >"$WORK/yamllint.txt" \
  || { cat "$WORK/yamllint.txt"; fail "yamllint"; }
ok "yamllint (relaxed, lines <= 100): ${#yamls[@]} files, $(grep -c warning "$WORK/yamllint.txt" || true) warnings, no errors"

step "2. nginx: deploy/nginx/covetd.conf"
nginx_conf_copy "$WORK/nginx/covetd.conf" "$(free_port)"
nginx_t
ok "nginx -t: clean ($(nginx -v 2>&1 | sed 's/.*version: //')); covetd.conf verbatim but its listen lines (-> a free loopback port)"
(COVETD_APP=deploy.verify.app:app "$VENV/bin/covetd" -c deploy/nginx/covetd.yaml --check-config) \
  || fail "covetd --check-config deploy/nginx/covetd.yaml"
"$PY" deploy/verify/checks.py nginx

step "3. Kubernetes: deploy/kubernetes/"
# Kustomization and ServiceMonitor have no schema in kubernetes-validate: checks.py
# checks them against the other manifests instead.
mapfile -t manifests < <(ls deploy/kubernetes/*.yaml | grep -v -e kustomization.yaml -e servicemonitor.yaml)
k8s_validate "${manifests[@]}" | sed 's/^/  /'
k8s_validate -k 1.30.0 --quiet "${manifests[@]}" | sed 's/^/  /'
ok "kubernetes-validate --strict: ${#manifests[@]} manifests against 1.37 and 1.30"
"$PY" - <<'EOF' >"$WORK/k8s-config.yaml"
import yaml
print(yaml.safe_load(open("deploy/kubernetes/configmap.yaml"))["data"]["config.yaml"])
EOF
(DATABASE_URL=postgresql://covetd@127.0.0.1:5432/covetd "$VENV/bin/covetd" \
  -c "$WORK/k8s-config.yaml" --check-config) || fail "covetd --check-config (ConfigMap)"
"$PY" deploy/verify/checks.py kubernetes

step "4. Prometheus: deploy/prometheus/"
promtool check config deploy/prometheus/prometheus.yml 2>&1 | sed 's/^/  /'
promtool check rules deploy/prometheus/alerts.yml 2>&1 | sed 's/^/  /'
(cd deploy/prometheus && promtool test rules alerts_test.yml) 2>&1 | sed 's/^/  /'
"$PY" deploy/verify/checks.py alerts-tested

step "5. Grafana dashboard and alert rules against a live covetd scrape"
PORT=$(free_port)
METRICS=$(free_port)
start_covetd covetd COVETD_APP=deploy.verify.app:app COVETD_BIND="127.0.0.1:$PORT" \
  COVETD_METRICS_BIND="127.0.0.1:$METRICS" COVETD_WORKERS=2
wait_http "http://127.0.0.1:$METRICS/readyz" 30
ok "covetd (master pid $COVETD_PID) ready: $(curl -fsS "http://127.0.0.1:$METRICS/healthz")"
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/whoami"
curl -fsS -o /dev/null -d 'some body' "http://127.0.0.1:$PORT/upload"
curl -sS -o /dev/null "http://127.0.0.1:$PORT/no-such-page"
"$PY" - "$PORT" <<'EOF'
import asyncio, sys
from websockets.asyncio.client import connect

async def main() -> None:
    async with connect(f"ws://127.0.0.1:{sys.argv[1]}/echo") as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"

asyncio.run(main())
EOF
sleep 1.5  # the workers publish their gauges (lag, connections) once a second
curl -fsS "http://127.0.0.1:$METRICS/metrics" >"$WORK/scrape.txt"
ok "scraped $(grep -vc '^#' "$WORK/scrape.txt") samples from http://127.0.0.1:$METRICS/metrics"
promtool check metrics <"$WORK/scrape.txt" || fail "promtool check metrics"
ok "promtool check metrics: clean"
"$PY" deploy/verify/checks.py metrics "$WORK/scrape.txt"

printf '\nstatic.sh: PASS (%d s)\n' "$((SECONDS - T0))"
