"""What metrics and middleware cost: covetd with each against covetd without, same run.

Runs ../shared/tools/bench (wrk, one pinned core per side, interleaved rounds, fresh
process per round) with these covetd candidates, all serving loadtests/bench_app.py:

  covetd-bare        loadtests/bench.yaml: no middleware, metrics off, access log off
  covetd-bare-AA     the same again: its distance from covetd-bare is the run's noise
  covetd-metrics     metrics on (the engine's observer; exporter on a free port)
  covetd-fullstack   every built-in middleware of config/full-stack.yaml (rate limit
                     raised so nothing is refused, access log written to /dev/null)

uvicorn-raw runs beside them as the harness's reference. The ratio to covetd-bare
is the figure: 1 - ratio is the overhead (docs/performance.md).

    python loadtests/bench_overhead.py                 # 3 rounds, plaintext and json
    python loadtests/bench_overhead.py -- --quick      # smoke test
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
HARNESS = Path(os.environ.get("COVETD_BENCH", REPO.parent / "shared" / "tools" / "bench"))
BARE = REPO / "loadtests" / "bench.yaml"
FULL_STACK = REPO / "config" / "full-stack.yaml"
SECRETS = {"COVETD_SESSION_KEY": "b" * 48, "COVETD_JWT_SECRET": "c" * 48}
UNLIMITED = {"rate": "1000000000/second", "burst": 1000000000, "routes": {}}


def bare() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(BARE.read_text())
    return loaded


def with_metrics() -> dict[str, Any]:
    config = bare()
    config["metrics"] = {"enabled": True, "bind": "127.0.0.1:0"}
    return config


def with_full_stack() -> dict[str, Any]:
    config = bare()
    stack = yaml.safe_load(FULL_STACK.read_text())["middleware"]
    for entry in stack:
        name, options = next(iter(entry.items()))
        if name == "access_log":
            options["output"] = "/dev/null"  # the formatting is measured, not the disk
        elif name == "rate_limit":
            options.update(UNLIMITED)  # every request checked, none refused
    config["middleware"] = stack
    return config


def candidates(covetd: str, scratch: Path) -> list[str]:
    env = " ".join(f"{key}={value}" for key, value in SECRETS.items())
    configs = {
        "covetd-bare": bare(),
        "covetd-bare-AA": bare(),
        "covetd-metrics": with_metrics(),
        "covetd-fullstack": with_full_stack(),
    }
    args = []
    for name, config in configs.items():
        path = scratch / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        command = (
            f"env {env} {covetd} -c {path} -b 127.0.0.1:{{port}} -w {{workers}}"
            f" --app-dir {REPO / 'loadtests'} bench_app:app"
        )
        args += ["--candidate", command, "--candidate-name", name]
    return args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("harness_args", nargs="*", help="passed to the harness after --")
    args = parser.parse_args()
    run = HARNESS / "run.sh"
    if not run.exists():
        print(f"bench harness not found at {HARNESS} (set COVETD_BENCH)", file=sys.stderr)
        return 2
    covetd = str(Path(sys.executable).with_name("covetd"))
    with tempfile.TemporaryDirectory(prefix="covetd-overhead-") as scratch:
        command = [
            str(run),
            "--servers",
            "uvicorn-raw",
            *candidates(covetd, Path(scratch)),
            *args.harness_args,
        ]
        print("+", " ".join(command), file=sys.stderr)
        return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
