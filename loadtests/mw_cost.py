"""What each built-in middleware costs per request, in process: no sockets, no client.

Canned requests (``GET /plaintext`` as wrk sends it, plus any ``--header``) are fed
straight into covetd's own protocol objects over fake transports, 64 connections at a
time, with the app of the overhead benchmark (``loadtests/bench_app.py``) behind the
chain built from ``config/full-stack.yaml``'s ``middleware:`` list: the same chain
and engine code as a worker runs, minus the kernel. The figure is CPU time
(``time.process_time``) per request, the lowest of ``--repeat`` runs (the machine is
shared: the minimum is the run least disturbed). Each middleware is measured alone,
with its options from the file; ``all`` is the whole list. As in
``bench_overhead.py``, the rate limit is raised so nothing is refused and the access
log goes to ``/dev/null`` (the rate limit's table to a scratch directory).

``suspended`` counts requests whose coroutine did not finish in its first step and
went to the connection's driver task (the engine's slow path, see
``covetd/engine/driver.py``); ``garbage`` counts objects per request that only the
cycle collector freed (a reference cycle through the request keeps its whole graph
alive until the next collection, and new requests then get cold memory). On the
common path both should be 0.

    python loadtests/mw_cost.py                         # bare, each middleware, all
    python loadtests/mw_cost.py all access_log cors     # just these
    python loadtests/mw_cost.py --cumulative            # add them one by one, outermost first
    python loadtests/mw_cost.py -H "Cookie: a=b" -H "Origin: https://app.example.com" cors
    python loadtests/mw_cost.py --profile all           # cProfile of the whole stack

On a noisy machine, count instructions instead (callgrind: deterministic, ~20 s a
figure)::

    python loadtests/mw_cost.py --instructions --requests 640 all
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import math
import os
import pstats
import re
import runpy
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "loadtests")]

from bench_app import app  # noqa: E402

from covetd.config import load_config  # noqa: E402
from covetd.config.middleware import MiddlewareEntry  # noqa: E402
from covetd.engine import driver  # noqa: E402
from covetd.engine.asgi import AsgiRunner  # noqa: E402
from covetd.engine.native import NativeRunner  # noqa: E402
from covetd.engine.server import HttpServer  # noqa: E402
from covetd.middleware.pipeline import build_chain  # noqa: E402

SECRETS = {"COVETD_SESSION_KEY": "b" * 48, "COVETD_JWT_SECRET": "c" * 48}
UNLIMITED = {"rate": "1000000000/second", "burst": 1000000000, "routes": {}}
CONNECTIONS = 64
WARMUP_ROUNDS = 20
Stack = list[tuple[str, dict[str, Any]]]


class FakeTransport:
    """Just enough of an asyncio transport for the protocol; counts what it is given."""

    def __init__(self) -> None:
        self.writes = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name in ("peername", "sockname") else default

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0


class SuspendCounter:
    """Counts requests handed to a driver task (the coroutine suspended)."""

    def __init__(self) -> None:
        self.count = 0
        self._enqueue = driver.ConnectionDriver._enqueue
        # Compiled with mypyc (make native), start() calls _enqueue directly: the
        # patch below is never called, and the figure shows as nan.
        self.available = (driver.__file__ or "").endswith(".py")

    def install(self) -> None:
        original = self._enqueue

        def enqueue(conn_driver: Any, item: Any) -> None:
            self.count += 1
            original(conn_driver, item)

        driver.ConnectionDriver._enqueue = enqueue  # type: ignore[method-assign]


def load_stack(path: Path) -> Stack:
    """The ``middleware:`` list of ``path``, ready to measure (see the module doc)."""
    for key, value in SECRETS.items():
        os.environ.setdefault(key, value)
    stack: Stack = []
    for entry in yaml.safe_load(path.read_text())["middleware"]:
        name, options = next(iter(entry.items()))
        options = {key: _expand(value) for key, value in (options or {}).items()}
        if name == "access_log":
            options["output"] = "/dev/null"
        elif name == "rate_limit":
            options.update(UNLIMITED, directory=_scratch())  # not /dev/shm: ours goes away
        stack.append((name, options))
    return stack


def _scratch() -> str:
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = tempfile.TemporaryDirectory(prefix="mw-cost-")
    return _SCRATCH.name


_SCRATCH: tempfile.TemporaryDirectory[str] | None = None


def _expand(value: Any) -> Any:
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, list):
        return [_expand(item) for item in value]
    return value


def raw_request(headers: Sequence[str], path: str = "/plaintext") -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8080", "User-Agent: wrk", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Cost:
    """One run: CPU per request, and what the engine and the GC had to do."""

    micros: float  # µs of CPU per request
    suspended: float  # requests that left the eager path, per request
    garbage: float  # objects freed by the cycle collector (not by refcounts), per request


class Bench:
    """Feeds ``requests`` requests through a chain and measures them."""

    def __init__(
        self, request: bytes, requests: int, counter: SuspendCounter, asgi_app: Any = None
    ) -> None:
        self.request = request
        self.asgi_app = asgi_app  # measure this ASGI app (no chain) instead of bench_app
        self.rounds = max(1, requests // CONNECTIONS)
        self.counter = counter
        self.config = load_config(None)

    async def measure(self, stack: Stack, profile: cProfile.Profile | None = None) -> Cost:
        chain = build_chain([MiddlewareEntry(name, options) for name, options in stack], app.handle)
        runner = NativeRunner(chain) if self.asgi_app is None else AsgiRunner(self.asgi_app)
        server = HttpServer(runner, self.config.http)
        conns = []
        for _ in range(CONNECTIONS):
            protocol, transport = server._new_protocol(), FakeTransport()
            protocol.connection_made(transport)  # type: ignore[arg-type]
            conns.append((protocol, transport))
        await self._rounds(conns, WARMUP_ROUNDS)
        self.counter.count = 0
        written = sum(transport.writes for _, transport in conns)
        gc.collect()
        collected = _gc_collected()
        if profile is not None:
            profile.enable()
        started = time.process_time()
        await self._rounds(conns, self.rounds)
        elapsed = time.process_time() - started
        if profile is not None:
            profile.disable()
        gc.collect()
        requests = self.rounds * CONNECTIONS
        answered = sum(transport.writes for _, transport in conns) - written
        if answered < requests:
            raise SystemExit(f"only {answered} of {requests} requests answered")
        cost = Cost(
            elapsed / requests * 1e6,
            self.counter.count / requests if self.counter.available else math.nan,
            (_gc_collected() - collected) / requests,
        )
        for protocol, transport in conns:
            transport.close()
            protocol.connection_lost(None)
        await asyncio.sleep(0)
        return cost

    async def _rounds(self, conns: list[tuple[Any, FakeTransport]], rounds: int) -> None:
        loop = asyncio.get_running_loop()
        request = self.request

        def feed() -> None:
            for protocol, _ in conns:
                protocol.data_received(request)

        for _ in range(rounds):
            loop.call_soon(feed)
            for _ in range(4):  # a suspended request resumes within a few loop turns
                await asyncio.sleep(0)

    async def best(self, stack: Stack, repeat: int) -> tuple[Cost, float]:
        """The run with the lowest CPU time of ``repeat``, and the median CPU time."""
        runs = [await self.measure(stack) for _ in range(repeat)]
        return min(runs, key=lambda cost: cost.micros), statistics.median(r.micros for r in runs)


def _gc_collected() -> int:
    return sum(generation["collected"] for generation in gc.get_stats())


def selections(names: list[str], stack: Stack, cumulative: bool) -> list[tuple[str, Stack]]:
    known = [name for name, _ in stack]
    if cumulative:
        return [(f"+ {name}", stack[: index + 1]) for index, name in enumerate(known)]
    chosen = names or [*known, "all"]
    unknown = [name for name in chosen if name != "all" and name not in known]
    if unknown:
        raise SystemExit(f"not in the stack: {', '.join(unknown)} (known: {', '.join(known)})")
    return [(name, stack if name == "all" else _only(stack, name)) for name in chosen]


def _only(stack: Stack, name: str) -> Stack:
    return [entry for entry in stack if entry[0] == name]


def instructions(args: argparse.Namespace, chosen: list[tuple[str, Stack]]) -> None:
    """Instructions per request under callgrind: the difference between a run of
    ``--requests`` and one of three times as many (start-up and warm-up cancel out)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind")
    names = [("(bare)", "-"), *((name, ",".join(e[0] for e in stack)) for name, stack in chosen)]
    print(f"{'middleware':20s} {'instr/req':>10s} {'added':>10s}")
    base = None
    for label, selection in names:
        counts = [_instructions(args, selection, n) for n in (args.requests, 3 * args.requests)]
        per_request = (counts[1] - counts[0]) / (2 * args.requests)
        base = per_request if base is None else base
        added = f"{per_request - base:+10.0f}" if label != "(bare)" else ""
        print(f"{label:20s} {per_request:10.0f} {added:>10s}", flush=True)


def _instructions(args: argparse.Namespace, selection: str, requests: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += [__file__, "--one", selection, "--requests", str(requests), "--config"]
    command += [str(args.config), "--loop", args.loop, "--path", args.path]
    if args.asgi:
        command += ["--asgi", args.asgi]
    for header in args.header:
        command += ["-H", header]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise SystemExit(done.stderr)
    return int(match[1])


async def run(args: argparse.Namespace) -> None:
    stack = load_stack(args.config)
    counter = SuspendCounter()
    counter.install()
    asgi_app = _load_app(args.asgi) if args.asgi else None
    bench = Bench(raw_request(args.header, args.path), args.requests, counter, asgi_app)
    if args.one is not None:  # one run of one selection, for --instructions
        await bench.measure([entry for entry in stack if entry[0] in args.one.split(",")])
        return
    chosen = selections(args.names, stack, args.cumulative)
    if args.instructions:
        instructions(args, chosen)
        return
    if args.profile:
        name, selected = chosen[-1]
        profile = cProfile.Profile()
        await bench.measure(selected, profile)
        print(f"profile of {name}:")
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
        return
    base, base_median = await bench.best([], args.repeat)
    print(
        f"{'middleware':20s} {'µs/req':>8s} {'added':>8s} {'median':>8s} {'suspended':>9s} garbage"
    )
    print(_row("(bare)", base, base_median, None))
    for name, selected in chosen:
        cost, median = await bench.best(selected, args.repeat)
        print(_row(name, cost, median, base), flush=True)


def _load_app(spec: str) -> Any:
    """``path/to/file.py:attr`` (the bench harness's apps are files, not modules)."""
    path, _, attr = spec.rpartition(":")
    namespace = runpy.run_path(path)
    return namespace[attr or "app"]


def _row(name: str, cost: Cost, median: float, base: Cost | None) -> str:
    added = f"{cost.micros - base.micros:+8.2f}" if base is not None else ""
    return (
        f"{name:20s} {cost.micros:8.2f} {added:>8s} {median:8.2f} {cost.suspended:9.0%}"
        f" {cost.garbage:7.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", help="middleware names of the stack, or all")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "full-stack.yaml")
    parser.add_argument(
        "--requests", type=int, help="per run (default 20000; 640 with --instructions)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (default 5)")
    parser.add_argument("-H", "--header", action="append", default=[], help='"Name: value"')
    parser.add_argument("--cumulative", action="store_true", help="add middleware one by one")
    parser.add_argument("--profile", action="store_true", help="cProfile the last selection")
    parser.add_argument("--sort", default="tottime", help="profile sort key (tottime)")
    parser.add_argument("--top", type=int, default=30, help="profile lines (30)")
    parser.add_argument(
        "--instructions", action="store_true", help="instructions per request (valgrind)"
    )
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--path", default="/plaintext", help="what the requests GET")
    parser.add_argument(
        "--asgi", metavar="FILE:APP", help="measure this ASGI app, bare, instead of bench_app"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child of --instructions
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 640 if args.instructions else 20000
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(run(args))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
