"""TechEmpower /db and /fortunes: covetd vs Starlette + asyncpg on uvicorn, side by side.

Both serve the same queries on the same database with the same pool size:

  covetd           examples/techempower.py (native Covet app, covetd's pool helpers)
  uvicorn          loadtests/techempower_starlette.py (Starlette, asyncpg pool as
                   Starlette users write it, httptools, uvloop, no access log)
  uvicorn-noreset  the same, its asyncpg pool told to skip the session reset round
                   trip on release (as covetd's helpers do): the server + framework
                   difference without the pool's

Method: one worker each, pinned to CPU 1 (``taskset``), wrk pinned to CPU 0
(``-t1 -c64``), a fresh server process per (server, round), servers interleaved and
their order rotated every round; each endpoint is warmed up, then measured. Server
CPU comes from /proc (utime + stime of the server's process and its children, i.e.
covetd's master too), read just before and after wrk: **CPU per request** = CPU
seconds / requests. PostgreSQL is not pinned (it is the same for both; its CPU is
not counted). Figures are medians over rounds; the ratio is covetd / uvicorn of the
medians (target for covetd / uvicorn: CPU per request <= 0.8). "server CPU" is how busy
the pinned core was: below ~1.0 the database (on the other core, with wrk), not the
server, limited the rate.

    python loadtests/bench_techempower.py                 # 3 rounds x 8 s per endpoint
    python loadtests/bench_techempower.py --rounds 1 --duration 3
    DATABASE_URL=postgresql://... python loadtests/bench_techempower.py

The tables are created and filled first (examples/techempower.sql, idempotent).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ENDPOINTS = ("/db", "/fortunes")
SERVER_CPU, WRK_CPU = "1", "0"


@dataclass
class Sample:
    requests: int
    seconds: float
    cpu_seconds: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.seconds

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.requests * 1e6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_database(dsn: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute((REPO / "examples" / "techempower.sql").read_text())
        finally:
            await conn.close()

    asyncio.run(run())


def covetd_command(port: int, dsn: str, pool_size: int, workdir: Path) -> list[str]:
    config = {
        "app": "examples.techempower:app",
        "app_dir": str(REPO),
        "server": {"bind": [f"127.0.0.1:{port}"], "workers": 1},
        "database": {"default": {"dsn": dsn, "min_size": pool_size, "max_size": pool_size}},
        "logging": {"level": "warning", "format": "text", "access_log": False},
    }
    path = workdir / "covetd.yaml"
    path.write_text(yaml.safe_dump(config))
    return [str(BIN / "covetd"), "-c", str(path)]


def uvicorn_command(port: int, dsn: str, pool_size: int, workdir: Path) -> list[str]:
    return [
        *(str(BIN / "uvicorn"), "--app-dir", str(REPO / "loadtests")),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
        *("--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"),
        "techempower_starlette:app",
    ]


SERVERS = {"covetd": covetd_command, "uvicorn": uvicorn_command, "uvicorn-noreset": uvicorn_command}
SERVER_ENV = {"uvicorn-noreset": {"POOL_RESET": "0"}}


def group_cpu_seconds(pgid: int) -> float:
    """utime + stime of every live process of group ``pgid`` (the server's session)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / CLOCK_TICKS


def get(port: int, path: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def wait_serving(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if get(port, "/db")[0] == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("server did not answer /db in time")
        time.sleep(0.1)


WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(\w+)")
WRK_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)")


def wrk(port: int, path: str, seconds: float, connections: int) -> tuple[int, float, int]:
    output = subprocess.run(
        [
            *(
                "taskset",
                "-c",
                WRK_CPU,
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
            ),
            f"http://127.0.0.1:{port}{path}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = WRK_TOTAL.search(output)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    scale = {"s": 1.0, "ms": 1e-3, "m": 60.0}[match.group(3)]
    errors = 0
    for non_2xx, socket_errors in WRK_ERRORS.findall(output):
        errors += int(non_2xx or 0) + sum(int(n) for n in re.findall(r"\d+", socket_errors))
    return int(match.group(1)), float(match.group(2)) * scale, errors


def measure(
    name: str, dsn: str, pool_size: int, seconds: float, warmup: float, connections: int
) -> dict[str, Sample]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-tfb-") as workdir:
        command = SERVERS[name](port, dsn, pool_size, Path(workdir))
        env = dict(
            os.environ,
            DATABASE_URL=dsn,
            POOL_MIN_SIZE=str(pool_size),
            POOL_MAX_SIZE=str(pool_size),
            **SERVER_ENV.get(name, {}),
        )
        proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *command],
            cwd=REPO,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_serving(port, proc)
            samples = {}
            for path in ENDPOINTS:
                wrk(port, path, warmup, connections)
                before = group_cpu_seconds(proc.pid)
                requests, elapsed, errors = wrk(port, path, seconds, connections)
                cpu = group_cpu_seconds(proc.pid) - before
                samples[path] = Sample(requests, elapsed, cpu, errors)
            return samples
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


def check_answers(dsn: str, pool_size: int) -> None:
    """Both servers answer both endpoints alike before anything is measured."""
    for name in SERVERS:
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="bench-tfb-") as workdir:
            command = SERVERS[name](port, dsn, pool_size, Path(workdir))
            env = dict(os.environ, DATABASE_URL=dsn, **SERVER_ENV.get(name, {}))
            proc = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
            try:
                wait_serving(port, proc)
                status, body = get(port, "/fortunes")
                assert status == 200 and b"&lt;script&gt;" in body, (name, status, body[:200])
                status, body = get(port, "/db")
                assert status == 200 and b'"randomNumber"' in body, (name, status, body)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pool-size", type=int, default=16)
    parser.add_argument(
        "--dsn",
        default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (apt-get install wrk util-linux)", file=sys.stderr)
            return 2
    prepare_database(args.dsn)
    check_answers(args.dsn, args.pool_size)
    names = list(SERVERS)
    results: dict[str, dict[str, list[Sample]]] = {n: {p: [] for p in ENDPOINTS} for n in names}
    for round_no in range(args.rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for name in order:
            print(f"round {round_no + 1}/{args.rounds}: {name}", file=sys.stderr)
            measured = measure(
                name, args.dsn, args.pool_size, args.duration, args.warmup, args.connections
            )
            for path, sample in measured.items():
                results[name][path].append(sample)
                print(
                    f"  {path}: {sample.rps:,.0f} req/s, "
                    f"{sample.cpu_us_per_request:.1f} us CPU/request, "
                    f"server CPU {sample.cores:.2f}, errors {sample.errors}",
                    file=sys.stderr,
                )
    print(
        f"\n{args.rounds} round(s) x {args.duration:g} s, wrk -t1 -c{args.connections} on CPU "
        f"{WRK_CPU}, one worker on CPU {SERVER_CPU}, pool size {args.pool_size}\n"
    )
    print("| endpoint | server | req/s | server CPU per request | server CPU (cores) | errors |")
    print("|---|---|---:|---:|---:|---:|")
    summary = []
    for path in ENDPOINTS:
        medians = {}
        for name in names:
            runs = results[name][path]
            rps = statistics.median(s.rps for s in runs)
            cpu = statistics.median(s.cpu_us_per_request for s in runs)
            cores = statistics.median(s.cores for s in runs)
            errors = sum(s.errors for s in runs)
            medians[name] = (rps, cpu)
            print(f"| {path} | {name} | {rps:,.0f} | {cpu:.1f} us | {cores:.2f} | {errors} |")
        for peer in names[1:]:
            rps_ratio = medians["covetd"][0] / medians[peer][0]
            cpu_ratio = medians["covetd"][1] / medians[peer][1]
            print(f"| {path} | covetd / {peer} | {rps_ratio:.2f}x | {cpu_ratio:.2f}x | | |")
            summary.append(
                f"{path} vs {peer}: CPU/request {cpu_ratio:.2f}x, req/s {rps_ratio:.2f}x"
            )
    print("\ncovetd: " + "; ".join(summary) + " (target vs uvicorn: CPU <= 0.80x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
