#!/bin/bash
# Verify systemd/covetd.service and systemd/covetd.socket for real.
#
#   deploy/verify/systemd.sh            everything below (~2 min, root, deploycheck set up)
#   deploy/verify/systemd.sh --static   only step 1 (seconds; no root, no container)
#
# 1. On this host: `systemd-analyze security --offline` exposure of covetd.service
#    (must be <= 2.0) and `systemd-analyze verify` of both units (the only diagnostic
#    tolerated here is that /opt/covetd/venv/bin/covetd is not installed on this host).
# 2. Builds covetd's wheel from this working tree plus its dependencies' wheels.
# 3. Boots real systemd in systemd-nspawn (deploycheck unit-run, private network) with
#    the units, a covetd user, covetd installed in /opt/covetd/venv from those wheels,
#    systemd/config.yaml as /etc/covetd/config.yaml and examples/hello.py as the app,
#    and runs deploy/verify/systemd-probe.sh inside, which checks:
#    deploycheck `lint unit` (verify clean + exposure) on the installed units; socket
#    activation (TCP and unix); `systemctl reload` keeps MainPID with 0 failed requests
#    under load; a USR2 upgrade hands MainPID to the new master with 0 failed requests;
#    the watchdog kills and restarts a SIGSTOPped master (new MainPID, NRestarts + 1);
#    `systemctl stop` ends with Result=success; the service alone binds server.bind.
#
# Needs: /work/shared/tools/deploycheck/setup --rootfs (or DEPLOYCHECK=dir of it).
# Exit status: 0 all passed, 1 a check failed, 2 missing tools.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DC="${DEPLOYCHECK:-$ROOT/../shared/tools/deploycheck}"
MAX_EXPOSURE=2.0
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND"' ERR
MISSING_BINARY="covetd.service: Command /opt/covetd/venv/bin/covetd is not executable: No such file or directory"

echo "== static checks on this host"
command -v systemd-analyze >/dev/null || { echo "missing: systemd-analyze"; exit 2; }
line=$(systemd-analyze security --offline=true --no-pager "$ROOT/systemd/covetd.service" | tail -1)
exposure=$(echo "$line" | grep -oE '[0-9]+\.[0-9]+' | head -1)
echo "  security (offline): exposure $exposure (max $MAX_EXPOSURE)"
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN{exit !(e <= m)}' \
  || { echo "FAIL: exposure $exposure > $MAX_EXPOSURE"; exit 1; }
verify=$(cd "$ROOT/systemd" && systemd-analyze verify --man=no covetd.service covetd.socket 2>&1 || true)
rest=$(printf '%s\n' "$verify" | grep -vxF "$MISSING_BINARY" || true)
if [ -n "$rest" ]; then
  echo "FAIL: systemd-analyze verify:"; echo "$rest" | sed 's/^/  /'; exit 1
fi
echo "  verify: clean${verify:+ (except: covetd not installed on this host; verified installed below)}"
[ "${1:-}" = --static ] && { echo "STATIC CHECKS PASSED"; exit 0; }

[ -x "$DC/unit-run" ] || { echo "missing deploycheck at $DC"; exit 2; }
[ "$(id -u)" = 0 ] || { echo "unit-run needs root"; exit 2; }

W=$(mktemp -d /tmp/covetd-verify-systemd.XXXXXX)
trap 'rm -rf "$W"' EXIT

echo "== wheels: covetd from this working tree + dependencies"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || { echo "need Python 3.11 to build wheels for the Debian 12 rootfs (have $("$PY" -V))"; exit 2; }
mkdir -p "$W/src" "$W/wheels"
tar -C "$ROOT" --exclude=__pycache__ --exclude='*.orig' --exclude='*.so' -cf - pyproject.toml README.md covetd \
  | tar -C "$W/src" -xf -
{ timeout 600 "$PY" -m pip wheel -q --disable-pip-version-check --wheel-dir "$W/wheels" "$W/src" \
  && timeout 300 "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$W/wheels" pip; } > "$W/pip.log" 2>&1 || { cat "$W/pip.log"; echo "FAIL: wheels"; exit 1; }
ls "$W/wheels" | sed 's/^/  /'

echo "== booting systemd in systemd-nspawn (deploycheck unit-run)"
trap - ERR
set +e
"$DC/unit-run" --private-network --timeout 360 --env HOME=/root \
  --unit "$ROOT/systemd/covetd.service" --unit "$ROOT/systemd/covetd.socket" \
  --copy "$W/wheels:/var/tmp/covetd-wheels" \
  --copy "$ROOT/systemd/config.yaml:/etc/covetd/config.yaml" \
  --copy "$ROOT/examples/__init__.py:/opt/covetd/app/examples/__init__.py" \
  --copy "$ROOT/examples/hello.py:/opt/covetd/app/examples/hello.py" \
  --copy "$ROOT/deploy/verify/http_loop.py:/usr/local/lib/covetd-verify/http_loop.py" \
  --copy "$DC/lint:/usr/local/bin/deploycheck-lint" \
  --setup 'useradd --system --user-group --home-dir /opt/covetd --no-create-home --shell /usr/sbin/nologin covetd' \
  --setup 'python3 -m venv --without-pip /opt/covetd/venv' \
  --setup 'set -- /var/tmp/covetd-wheels/pip-*.whl; /opt/covetd/venv/bin/python "$1/pip" install --isolated -q --no-index --disable-pip-version-check --find-links /var/tmp/covetd-wheels covetd' \
  --setup 'chown root:covetd /etc/covetd/config.yaml && chmod 0640 /etc/covetd/config.yaml' \
  "$ROOT/deploy/verify/systemd-probe.sh"
rc=$?
set -e
[ "$rc" = 0 ] && echo "SYSTEMD VERIFICATION PASSED" || echo "SYSTEMD VERIFICATION FAILED (rc=$rc)"
exit "$rc"
