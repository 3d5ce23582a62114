"""Per-request cost of the bare native path (no middleware), for build experiments.

Instructions (callgrind, deterministic): the difference between a run of N and one
of 3N requests of ``mw_cost.py --one -``, divided by 2N. Time: ``mw_cost``'s
in-process CPU time per request, minimum of ``--repeat`` runs.

    python loadtests/bare_cost.py            # both
    python loadtests/bare_cost.py --time     # only µs/req
    python loadtests/bare_cost.py --instr    # only instructions/req
    python loadtests/bare_cost.py --path /json --asgi ../shared/tools/bench/apps/asgi_raw.py:app
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MW_COST = HERE / "mw_cost.py"


def instructions(requests: int, what: list[str]) -> float:
    # One run outside valgrind first: a source edited since its last import would be
    # compiled to bytecode during the first counted run only and skew the difference.
    subprocess.run(
        [sys.executable, str(MW_COST), "--one", "-", "--requests", "64", *what], check=True
    )
    counts = []
    for n in (requests, 3 * requests):
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        command += [sys.executable, str(MW_COST), "--one", "-", "--requests", str(n), *what]
        env = {**os.environ, "PYTHONHASHSEED": "0"}  # fewer run-to-run differences
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
        match = re.search(r"Collected : (\d+)", done.stderr)
        if match is None:
            raise SystemExit(done.stderr)
        counts.append(int(match[1]))
    return (counts[1] - counts[0]) / (2 * requests)


def micros(repeat: int, requests: int, path: str, asgi: str) -> tuple[float, float, float, float]:
    app = f"m._load_app({asgi!r})" if asgi else "None"
    code = (
        "import sys, asyncio, uvloop, statistics; sys.argv=['x'];"
        f"sys.path[:0]=[{str(HERE)!r}];"
        "import mw_cost as m;"
        "c=m.SuspendCounter(); c.install();"
        f"b=m.Bench(m.raw_request([], {path!r}), {requests}, c, {app});"
        f"best, med = uvloop.run(b.best([], {repeat}));"
        "print(best.micros, med, best.suspended, best.garbage)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    a, b, c, d = map(float, out.stdout.split())
    return a, b, c, d


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--time", action="store_true")
    parser.add_argument("--instr", action="store_true")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--instr-requests", type=int, default=640)
    parser.add_argument("--label", default="")
    parser.add_argument("--path", default="/plaintext", help="what the requests GET")
    parser.add_argument("--asgi", default="", metavar="FILE:APP", help="this ASGI app instead")
    args = parser.parse_args()
    both = not (args.time or args.instr)
    what = ["--path", args.path, *(["--asgi", args.asgi] if args.asgi else [])]
    parts = [f"{args.label:24s}"]
    if args.instr or both:
        parts.append(f"instr/req {instructions(args.instr_requests, what):9.0f}")
    if args.time or both:
        best, median, suspended, garbage = micros(args.repeat, args.requests, args.path, args.asgi)
        parts.append(f"us/req min {best:6.2f} median {median:6.2f}")
        parts.append(f"suspended {suspended:.0%} garbage {garbage:.1f}")
    print("  ".join(parts), flush=True)


if __name__ == "__main__":
    main()
