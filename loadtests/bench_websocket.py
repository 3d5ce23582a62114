"""Side-by-side WebSocket benchmark: covetd vs uvicorn, echo and broadcast fan-out.

Servers (one worker each, pinned to CPU 1 with ``taskset``; a fresh process per
server per round; servers interleaved, their order rotated every round):

  covetd-native       covetd + loadtests/ws_app.py (Covet handlers, ``app.hub``)
  covetd-asgi         covetd + loadtests/ws_asgi.py (raw ASGI app, covetd's bridge)
  uvicorn-websockets  uvicorn --ws websockets + ws_asgi.py   (the reference, x1.00)
  uvicorn-wsproto     uvicorn --ws wsproto + ws_asgi.py
  uvicorn-sansio      uvicorn --ws websockets-sansio + ws_asgi.py (not by default)
  uvicorn-websockets-aa  the reference again, an A/A control (not by default)

covetd runs with loadtests/bench.yaml (metrics and access log off) plus -b/-w;
uvicorn with uvloop, httptools, no access log. Clients offer no compression.

Measurements (the client is this script in ``client`` mode, pinned to CPU 0, one
uvloop event loop, raw sockets: pre-built masked frames out, byte counts and a
minimal frame parser in, so that it is not the bottleneck; its CPU use is reported):

  echo     N connections (default 64), each: send a 16-byte text message, wait for
           its echo, repeat; round trips/s over a fixed duration after a warm-up,
           and the p50/p99 round-trip time.
  fanout   1000 members and 1 publisher (a 29-byte text message per broadcast).
           Saturated: the publisher keeps ``window`` (4) broadcasts in flight
           (published x members - delivered < window x members): deliveries/s
           (messages received by members), broadcasts/s, p50/p99 latency from
           publish to receipt (on every 10th member; includes the queueing behind
           the broadcasts ahead). Then one broadcast at a time for half as long
           (``one p50/p99``: how long one broadcast takes to reach the members).

Figures are medians over rounds; ratios are medians of per-round ratios to
uvicorn-websockets. Loopback only; every run is bounded in time.

    python loadtests/bench_websocket.py                       # 3 rounds, default servers
    python loadtests/bench_websocket.py --rounds 5 --servers covetd-native,uvicorn-websockets
    python loadtests/bench_websocket.py --quick               # 1 round, short runs
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import importlib.metadata
import json
import os
import platform
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOADTESTS = REPO / "loadtests"
BIN = Path(sys.executable).parent
REFERENCE = "uvicorn-websockets"

# -- servers ------------------------------------------------------------------------------


def _uvicorn(ws: str) -> str:
    return (
        f"{BIN / 'uvicorn'} ws_asgi:app --app-dir {LOADTESTS} --host 127.0.0.1 --port {{port}}"
        f" --loop uvloop --http httptools --ws {ws} --no-access-log --log-level warning"
    )


_COVETD = f"{BIN / 'covetd'} -c {LOADTESTS / 'bench.yaml'} -b 127.0.0.1:{{port}} -w 1"
SERVERS: dict[str, str] = {
    "covetd-native": f"{_COVETD} --app-dir {LOADTESTS} ws_app:app",
    "covetd-asgi": f"{_COVETD} --app-dir {LOADTESTS} ws_asgi:app",
    "uvicorn-websockets": _uvicorn("websockets"),
    "uvicorn-wsproto": _uvicorn("wsproto"),
    "uvicorn-sansio": _uvicorn("websockets-sansio"),
    # The reference again: its distance from x1.00 is the noise floor of a run.
    "uvicorn-websockets-aa": _uvicorn("websockets"),
}
DEFAULT_SERVERS = "covetd-native,covetd-asgi,uvicorn-websockets,uvicorn-wsproto"

# -- the client ---------------------------------------------------------------------------

ECHO_PAYLOAD = b"0123456789abcdef"
FANOUT_FRAME = 31  # unmasked text frame: 2-byte head + "%08d %020d" (29 bytes)
OK_FRAME = b"\x81\x02ok"


def masked_frame(payload: bytes, mask: bytes) -> bytes:
    """One client text frame (FIN, masked); payloads under 126 bytes."""
    assert len(payload) < 126
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def handshake(path: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class _Upgrading(asyncio.Protocol):
    """Sends the handshake, waits for 101 (and ``expect``, the first frame), then
    hands every read to ``on_data``."""

    def __init__(self, request: bytes, expect: bytes = b"") -> None:
        self.request = request
        self.expect = expect
        self.buffer = b""
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.lost = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport  # uvloop's transports are no asyncio.Transport subclass
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.opened.done():
            self.on_data(data)
            return
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        if not self.buffer.startswith(b"HTTP/1.1 101"):
            self.opened.set_exception(RuntimeError(f"no upgrade: {self.buffer[:80]!r}"))
            return
        rest = self.buffer[end + 4 :]
        if len(rest) < len(self.expect):
            return
        if rest[: len(self.expect)] != self.expect:
            self.opened.set_exception(RuntimeError(f"unexpected first frame {rest[:16]!r}"))
            return
        self.opened.set_result(None)
        if len(rest) > len(self.expect):
            self.on_data(rest[len(self.expect) :])

    def on_data(self, data: bytes) -> None:
        raise NotImplementedError

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during the handshake: {exc}"))


class EchoClient(_Upgrading):
    frame = masked_frame(ECHO_PAYLOAD, b"\x37\xfa\x21\x3d")
    reply = b"\x81" + bytes([len(ECHO_PAYLOAD)]) + ECHO_PAYLOAD

    def __init__(self, request: bytes, run: EchoRun) -> None:
        super().__init__(request)
        self.run = run
        self.pending = 0
        self.sent_at = 0
        self.checked = False

    def go(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter_ns()
        self.transport.write(self.frame)

    def on_data(self, data: bytes) -> None:
        if not self.checked:
            if not data.startswith(self.reply):
                raise RuntimeError(f"wrong echo {data[:32]!r}")
            self.checked = True
        self.pending += len(data)
        if self.pending < len(self.reply):
            return
        self.pending -= len(self.reply)
        now = time.perf_counter_ns()
        run = self.run
        if run.measuring:
            run.round_trips += 1
            run.latencies.append(now - self.sent_at)
        if run.running:
            self.sent_at = now
            assert self.transport is not None
            self.transport.write(self.frame)


@dataclass
class EchoRun:
    running: bool = True
    measuring: bool = False
    round_trips: int = 0
    latencies: list[int] = field(default_factory=list)


@dataclass
class FanoutRun:
    members: int
    window: int
    running: bool = True
    measuring: bool = False
    published: int = 0
    delivered: int = 0  # frames received by all members together
    latencies: list[int] = field(default_factory=list)
    publisher: Publisher | None = None


class Member(_Upgrading):
    def __init__(self, request: bytes, run: FanoutRun, sampled: bool) -> None:
        super().__init__(request, OK_FRAME)
        self.run = run
        self.sampled = sampled
        self.bytes = 0
        self.partial = b""

    def on_data(self, data: bytes) -> None:
        run = self.run
        before = self.bytes // FANOUT_FRAME
        self.bytes += len(data)
        run.delivered += self.bytes // FANOUT_FRAME - before
        if self.sampled:
            self._timestamps(data)
        if run.publisher is not None:
            run.publisher.publish_more()

    def _timestamps(self, data: bytes) -> None:
        data = self.partial + data
        whole = len(data) - len(data) % FANOUT_FRAME
        self.partial = data[whole:]
        if not self.run.measuring:
            return
        now = time.monotonic_ns()
        latencies = self.run.latencies
        for start in range(0, whole, FANOUT_FRAME):
            latencies.append(now - int(data[start + 11 : start + FANOUT_FRAME]))


class Publisher(_Upgrading):
    mask = b"\x00\x00\x00\x00"  # a zero mask leaves the payload as it is: cheap to build

    def __init__(self, request: bytes, run: FanoutRun) -> None:
        super().__init__(request)
        self.run = run

    def publish_more(self) -> None:
        run = self.run
        limit = run.window * run.members
        transport = self.transport
        assert transport is not None
        while run.running and run.published * run.members - run.delivered < limit:
            payload = b"%08d %020d" % (run.published % 10**8, time.monotonic_ns())
            transport.write(b"\x81\x9d" + self.mask + payload)
            run.published += 1

    def on_data(self, data: bytes) -> None:
        pass


async def _connect_all(
    loop: asyncio.AbstractEventLoop,
    port: int,
    factories: Sequence[Callable[[], _Upgrading]],
    batch: int = 50,
) -> list[_Upgrading]:
    opened: list[_Upgrading] = []
    for first in range(0, len(factories), batch):
        group = await asyncio.gather(
            *(
                loop.create_connection(f, "127.0.0.1", port)
                for f in factories[first : first + batch]
            )
        )
        protocols = [protocol for _, protocol in group]
        await asyncio.wait_for(asyncio.gather(*(p.opened for p in protocols)), 30)
        opened.extend(protocols)
    for protocol in opened:
        sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return opened


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Window:
    """CPU accounting over the measurement window: this client, the server's session,
    and the server's core (``other``: busy with anything but the server)."""

    session: int
    core: int
    client_core: int
    started: float = 0.0
    client: float = 0.0
    server: float = 0.0
    busy: float = 0.0
    client_busy: float = 0.0

    def open(self) -> None:
        self.client, self.server = _cpu_seconds(), session_cpu(self.session)
        self.busy, self.client_busy = core_busy(self.core), core_busy(self.client_core)
        self.started = time.perf_counter()

    def close(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        server = session_cpu(self.session) - self.server
        client = _cpu_seconds() - self.client
        other = core_busy(self.core) - self.busy - server
        client_other = core_busy(self.client_core) - self.client_busy - client
        return {
            "elapsed": elapsed,
            "server_cpu": server / elapsed,
            "client_cpu": client / elapsed,
            "other_load": max(0.0, other) / elapsed,
            "client_core_other": max(0.0, client_other) / elapsed,
        }


def _percentiles(samples: list[int]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(samples)

    def pick(quantile: float) -> float:
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] / 1e6

    return {"p50_ms": pick(0.50), "p99_ms": pick(0.99)}


async def run_echo(
    port: int, connections: int, warmup: float, duration: float, window: Window
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = EchoRun()
    request = handshake("/echo", port)
    clients = await _connect_all(loop, port, [lambda: EchoClient(request, run)] * connections)
    for client in clients:
        assert isinstance(client, EchoClient)
        client.go()
    await asyncio.sleep(warmup)
    window.open()
    run.measuring = True
    await asyncio.sleep(duration)
    run.measuring = False
    accounting = window.close()
    run.running = False
    await asyncio.sleep(0.1)
    lost = sum(1 for c in clients if c.lost)
    for client in clients:
        if client.transport is not None:
            client.transport.abort()
    rate = run.round_trips / accounting["elapsed"]
    return {
        "round_trips_per_s": rate,
        "per_server_cpu_s": rate / max(accounting["server_cpu"], 1e-9),
        **_percentiles(run.latencies),
        **accounting,
        "connections_lost": lost,
    }


async def run_fanout(
    port: int, members: int, in_flight: int, warmup: float, duration: float, window: Window
) -> dict[str, Any]:
    """Saturated (``in_flight`` broadcasts in flight), then one broadcast at a time."""
    loop = asyncio.get_running_loop()
    run = FanoutRun(members=members, window=in_flight)
    request = handshake("/bcast/member", port)
    factories = [
        (lambda sampled: lambda: Member(request, run, sampled))(i % 10 == 0) for i in range(members)
    ]
    joined = await _connect_all(loop, port, factories)
    publishing = handshake("/bcast/publish", port)
    (publisher,) = await _connect_all(loop, port, [lambda: Publisher(publishing, run)])
    assert isinstance(publisher, Publisher)
    run.publisher = publisher
    saturated = await _fanout_phase(run, publisher, warmup, duration, window)
    run.window = 1
    one = await _fanout_phase(run, publisher, warmup / 2, duration / 2, window)
    lost = sum(1 for m in joined if m.lost)
    uneven = sum(1 for m in joined if isinstance(m, Member) and m.bytes % FANOUT_FRAME)
    for protocol in [*joined, publisher]:
        if protocol.transport is not None:
            protocol.transport.abort()
    return {
        **saturated,
        "one_broadcasts_per_s": one["broadcasts_per_s"],
        "one_p50_ms": one["p50_ms"],
        "one_p99_ms": one["p99_ms"],
        "connections_lost": lost,
        "all_delivered": saturated["all_delivered"] and one["all_delivered"] and not uneven,
    }


async def _fanout_phase(
    run: FanoutRun, publisher: Publisher, warmup: float, duration: float, window: Window
) -> dict[str, Any]:
    run.running, run.latencies = True, []
    publisher.publish_more()
    await asyncio.sleep(warmup)
    window.open()
    delivered, published = run.delivered, run.published
    run.measuring = True
    await asyncio.sleep(duration)
    run.measuring = False
    accounting = window.close()
    elapsed = accounting["elapsed"]
    delivered, published = run.delivered - delivered, run.published - published
    run.running = False
    drained = time.monotonic() + 10
    while run.delivered < run.published * run.members and time.monotonic() < drained:
        await asyncio.sleep(0.02)
    return {
        "deliveries_per_s": delivered / elapsed,
        "per_server_cpu_s": delivered / elapsed / max(accounting["server_cpu"], 1e-9),
        "broadcasts_per_s": published / elapsed,
        **_percentiles(run.latencies),
        **accounting,
        "all_delivered": run.delivered == run.published * run.members,
    }


def client_main(args: argparse.Namespace) -> int:
    import uvloop

    window = Window(args.server_session, args.server_cpu, args.client_cpu)
    coroutine: Any
    if args.mode == "echo":
        coroutine = run_echo(args.port, args.connections, args.warmup, args.duration, window)
    else:
        coroutine = run_fanout(
            args.port, args.members, args.window, args.warmup, args.duration, window
        )
    result = uvloop.run(asyncio.wait_for(coroutine, 2 * (args.warmup + args.duration) + 120))
    print(json.dumps(result))
    return 0


# -- the orchestrator ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError("the server did not listen in time")


def session_cpu(session: int) -> float:
    """CPU seconds (user + system) of every live process in ``session``."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[3]) == session:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def core_busy(core: int) -> float:
    """Busy seconds of one CPU since boot (everything but idle and iowait)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            values = [int(v) for v in line.split()[1:]]
            return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")
    return 0.0


@dataclass
class Options:
    server_cpu: int
    client_cpu: int
    connections: int
    members: int
    window: int
    warmup: float
    duration: float
    log_dir: Path


def run_client(mode: str, port: int, session: int, options: Options) -> dict[str, Any]:
    command = [
        "taskset", "-c", str(options.client_cpu), sys.executable, __file__, "client",
        "--mode", mode, "--port", str(port), "--server-session", str(session),
        "--server-cpu", str(options.server_cpu), "--client-cpu", str(options.client_cpu),
        "--warmup", str(options.warmup),
        "--duration", str(options.duration), "--connections", str(options.connections),
        "--members", str(options.members), "--window", str(options.window),
    ]  # fmt: skip
    limit = 2 * (options.warmup + options.duration) + 150
    done = subprocess.run(command, capture_output=True, timeout=limit, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} client failed: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def measure(name: str, round_number: int, options: Options) -> dict[str, Any]:
    port = free_port()
    command = SERVERS[name].format(port=port)
    log = open(options.log_dir / f"{name}-{round_number}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        ["taskset", "-c", str(options.server_cpu), *command.split()],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=LOADTESTS,
    )
    results: dict[str, Any] = {"server": name, "round": round_number, "command": command}
    try:
        wait_listening(port, process)
        for mode in ("echo", "fanout"):
            results[mode] = run_client(mode, port, process.pid, options)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    return results


METRICS = {
    "echo": ("round_trips_per_s", "per_server_cpu_s", "p50_ms", "p99_ms"),
    "fanout": (
        "deliveries_per_s",
        "per_server_cpu_s",
        "broadcasts_per_s",
        "p50_ms",
        "p99_ms",
        "one_p50_ms",
        "one_p99_ms",
    ),
}
HEADLINE = {"echo": "round_trips_per_s", "fanout": "deliveries_per_s"}


def median_of(runs: list[dict[str, Any]], mode: str, key: str) -> float:
    return float(statistics.median(r[mode].get(key, float("nan")) for r in runs))


def paired_ratio(
    runs: list[dict[str, Any]], reference: list[dict[str, Any]], mode: str, key: str
) -> float:
    by_round = {r["round"]: r[mode][key] for r in reference}
    ratios = [r[mode][key] / by_round[r["round"]] for r in runs if by_round.get(r["round"])]
    return statistics.median(ratios) if ratios else float("nan")


def report(all_runs: list[dict[str, Any]], servers: list[str]) -> str:
    lines = []
    reference = [r for r in all_runs if r["server"] == REFERENCE]
    for mode in ("echo", "fanout"):
        key = HEADLINE[mode]
        head = [
            "server",
            *METRICS[mode],
            f"x {REFERENCE}",
            "x per CPU-s",
            "server CPU",
            "client CPU",
            "other (server core)",
            "other (client core)",
        ]
        lines += ["", f"### {mode}", "", "| " + " | ".join(head).replace("_", " ") + " |"]
        lines.append("|---" + "|---:" * (len(head) - 1) + "|")
        for name in servers:
            runs = [r for r in all_runs if r["server"] == name]
            if not runs:
                continue
            cells = [name]
            for metric in METRICS[mode]:
                value = median_of(runs, mode, metric)
                cells.append(f"{value:,.0f}" if metric.endswith("_s") else f"{value:.1f}")
            ratio = paired_ratio(runs, reference, mode, key) if reference else float("nan")
            cells.append(f"{ratio:.2f}")
            efficiency = paired_ratio(runs, reference, mode, "per_server_cpu_s")
            cells.append(f"{efficiency:.2f}")
            for metric in ("server_cpu", "client_cpu", "other_load", "client_core_other"):
                cells.append(f"{median_of(runs, mode, metric):.0%}")
            lines.append("| " + " | ".join(cells) + " |")
        problems = [
            f"{r['server']} round {r['round']}: {r[mode]}"
            for r in all_runs
            if r[mode].get("connections_lost") or r[mode].get("all_delivered") is False
        ]
        if problems:
            lines += ["", "problems:", *problems]
    return "\n".join(lines)


def machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = [f"CPython {platform.python_version()}"]
    for package in ("uvloop", "httptools", "websockets", "wsproto", "uvicorn"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    return f"{os.cpu_count()} CPUs ({cpu}); " + ", ".join(versions)


def main_orchestrator(args: argparse.Namespace) -> int:
    servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in servers if s not in SERVERS]
    if unknown:
        print(f"unknown servers {unknown}; known: {', '.join(SERVERS)}", file=sys.stderr)
        return 2
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 2.0, 0.5
    log_dir = Path(tempfile.mkdtemp(prefix="covetd-wsbench-"))
    options = Options(
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
        connections=args.connections,
        members=args.members,
        window=args.window,
        warmup=args.warmup,
        duration=args.duration,
        log_dir=log_dir,
    )
    print(f"+ {' '.join(sys.argv)}", file=sys.stderr)
    print(f"machine: {machine()}; load average {os.getloadavg()}", file=sys.stderr)
    deadline = time.monotonic() + args.max_minutes * 60
    all_runs: list[dict[str, Any]] = []
    rng = random.Random(args.seed)
    order = servers[:]
    rng.shuffle(order)
    try:
        for round_number in range(args.rounds):
            rotation = order[round_number % len(order) :] + order[: round_number % len(order)]
            for name in rotation:
                if time.monotonic() > deadline:
                    raise TimeoutError("--max-minutes reached")
                result = measure(name, round_number, options)
                all_runs.append(result)
                echo, fanout = result["echo"], result["fanout"]
                print(
                    f"round {round_number} {name}: echo {echo['round_trips_per_s']:,.0f} rt/s"
                    f" (server CPU {echo['server_cpu']:.0%}, client {echo['client_cpu']:.0%},"
                    f" other {echo['other_load']:.0%}); fanout"
                    f" {fanout['deliveries_per_s']:,.0f} deliveries/s,"
                    f" p50 {fanout['p50_ms']:.1f} ms p99 {fanout['p99_ms']:.1f} ms"
                    f" (server CPU {fanout['server_cpu']:.0%}, client {fanout['client_cpu']:.0%})",
                    file=sys.stderr,
                    flush=True,
                )
    except (TimeoutError, KeyboardInterrupt) as exc:
        print(f"stopped early: {exc!r}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "runs": all_runs}, indent=1))
    print(f"\nWebSocket benchmark, {args.rounds} round(s), medians; logs in {log_dir}")
    print(report(all_runs, servers))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    client = sub.add_parser("client", help="(internal) one measurement against one server")
    client.add_argument("--mode", choices=("echo", "fanout"), required=True)
    client.add_argument("--port", type=int, required=True)
    client.add_argument("--server-session", type=int, required=True)
    for target in (parser, client):
        target.add_argument("--warmup", type=float, default=1.0)
        target.add_argument("--duration", type=float, default=5.0)
        target.add_argument("--connections", type=int, default=64, help="echo clients")
        target.add_argument("--members", type=int, default=1000, help="fan-out members")
        target.add_argument("--window", type=int, default=4, help="broadcasts in flight")
        target.add_argument("--server-cpu", type=int, default=1, help="the server's core")
        target.add_argument("--client-cpu", type=int, default=0, help="the clients' core")
    parser.add_argument("--servers", default=DEFAULT_SERVERS)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-minutes", type=float, default=20)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s runs")
    parser.add_argument("--json", help="write every measurement here")
    args = parser.parse_args()
    if args.command == "client":
        return client_main(args)
    return main_orchestrator(args)


if __name__ == "__main__":
    sys.exit(main())
