"""Side-by-side HTTP/1.1 benchmark of covetd against its peers (issue 2's figures).

Runs ../shared/tools/bench (wrk, one pinned core per side, interleaved rounds, fresh
process per round) with two covetd candidates next to the harness's own servers:

  covetd-native  the Covet app in loadtests/bench_app.py (native path, no ASGI)
  covetd-asgi    the harness's raw ASGI app (apps/asgi_raw.py) through covetd's bridge

and prints the harness's tables; ratios are medians of per-round ratios to uvicorn-raw.
Anything after ``--`` goes to the harness (e.g. ``-- --rounds 5 --quick``).

    python loadtests/bench_engine.py                       # covetd vs uvicorn, granian
    python loadtests/bench_engine.py --servers default     # the harness's default set too
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HARNESS = Path(os.environ.get("COVETD_BENCH", REPO.parent / "shared" / "tools" / "bench"))


def candidates(covetd: str) -> list[str]:
    config = REPO / "loadtests" / "bench.yaml"  # metrics and access log off
    common = f"{covetd} -c {config} -b 127.0.0.1:{{port}} -w {{workers}}"
    return [
        "--candidate",
        f"{common} --app-dir {REPO / 'loadtests'} bench_app:app",
        "--candidate-name",
        "covetd-native",
        "--candidate",
        f"{common} asgi_raw:app",
        "--candidate-name",
        "covetd-asgi",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--servers",
        default="uvicorn-raw,granian-asgi,granian-rsgi,limit-uvloop",
        help="the harness's servers to run beside covetd (default: %(default)s)",
    )
    parser.add_argument("harness_args", nargs="*", help="passed to the harness after --")
    args = parser.parse_args()
    run = HARNESS / "run.sh"
    if not run.exists():
        print(f"bench harness not found at {HARNESS} (set COVETD_BENCH)", file=sys.stderr)
        return 2
    covetd = str(Path(sys.executable).with_name("covetd"))
    command = [str(run), "--servers", args.servers, *candidates(covetd), *args.harness_args]
    print("+", " ".join(command), file=sys.stderr)
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
