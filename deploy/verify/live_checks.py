"""The client side of deploy/verify/live.sh: talks to nginx (deploy/nginx/covetd.conf)
in front of covetd (deploy/nginx/covetd.yaml, app deploy/verify/app.py), and to a real
Prometheus running deploy/prometheus/prometheus.yml + alerts.yml.

    python deploy/verify/live_checks.py proxy   NGINX_PORT COVETD_PORT
    python deploy/verify/live_checks.py ws      NGINX_PORT
    python deploy/verify/live_checks.py reload  NGINX_PORT MASTER_PID ERROR_LOG
    python deploy/verify/live_checks.py rules   PROMETHEUS_URL [down]

Each prints what it checked, with figures, and exits 1 if anything was wrong. Every
wait is bounded. Clients connect from 127.0.0.2 (still loopback), an address covetd
does not trust, so "the client covetd sees" is distinguishable from nginx (127.0.0.1).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLIENT = "127.0.0.2"
MiB = 1024 * 1024
failures: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = CLIENT,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def established(port: int) -> list[str]:
    """Established TCP connections to 127.0.0.1:port (nginx's side of the upstream)."""
    out = subprocess.run(
        ["ss", "-tnH", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
        timeout=5,
    ).stdout
    return [line.split()[-2] for line in out.splitlines() if line.strip()]


# -- proxy: addresses, limits, keep-alive, streaming --------------------------------------


def cmd_proxy(nginx_port: str, covetd_port: str) -> None:
    ngx, direct = int(nginx_port), int(covetd_port)
    forged = {
        "X-Forwarded-For": "203.0.113.66",
        "Forwarded": "for=198.51.100.77;proto=https",
        "X-Forwarded-Proto": "https",
        "Host": "covetd.example",
    }
    status, headers, body = request(ngx, "GET", "/whoami", headers=forged)
    seen = json.loads(body)
    print(f"  via nginx from {CLIENT}, forged X-Forwarded-For/Forwarded/Proto: {seen}")
    check(
        status == 200 and seen["client"] == CLIENT,
        f"covetd sees the real client {seen['client']} (not 203.0.113.66 / 198.51.100.77)",
    )
    check(seen["scheme"] == "http", f"scheme {seen['scheme']}: nginx's $scheme, not the forged one")
    check(
        seen["host"] == "covetd.example" and seen["url"] == "http://covetd.example/whoami",
        f"Host {seen['host']}, url {seen['url']} (X-Forwarded-Host)",
    )
    check(headers.get("server", "").startswith("nginx"), f"Server: {headers.get('server')}")

    status, _, body = request(direct, "GET", "/whoami", headers={"X-Forwarded-For": "203.0.113.66"})
    seen = json.loads(body)
    check(
        status == 200 and seen["client"] == CLIENT,
        f"direct to covetd from untrusted {CLIENT}: X-Forwarded-For ignored, client "
        f"{seen['client']}",
    )

    # client_max_body_size 10m = http.max_body_size 10MiB, at the boundary.
    for size, expected in ((MiB, 200), (10 * MiB, 200), (10 * MiB + 1, 413)):
        status, headers, body = request(
            ngx,
            "POST",
            "/upload",
            body=b"x" * size,
            headers={"Content-Type": "application/octet-stream"},
        )
        got = json.loads(body)["received"] if status == 200 else None
        check(
            status == expected and (got is None or got == size),
            f"POST {size} B via nginx: {status}"
            + (f", covetd read {got} B" if got is not None else f" from {headers.get('server')}"),
        )
    status, _, _ = request(direct, "POST", "/upload", body=b"x" * (10 * MiB + 1))
    check(status == 413, f"POST {10 * MiB + 1} B direct: covetd answers {status} too")

    # Upstream keep-alive: many requests, few connections to covetd.
    before = set(established(direct))
    conn = http.client.HTTPConnection("127.0.0.1", ngx, timeout=10, source_address=(CLIENT, 0))
    started = time.monotonic()
    statuses: Counter[int] = Counter()
    for index in range(200):
        post = index % 2 == 1
        conn.request(
            "POST" if post else "GET",
            "/upload" if post else "/whoami",
            body=b"y" * 100 if post else None,
        )
        response = conn.getresponse()
        response.read()
        statuses[response.status] += 1
    elapsed = time.monotonic() - started
    conn.close()
    after = set(established(direct))
    check(
        statuses == Counter({200: 200}),
        f"200 keep-alive requests (GET and POST) via nginx: {dict(statuses)} in "
        f"{elapsed:.2f} s ({200 / elapsed:.0f} req/s)",
    )
    check(
        1 <= len(after) <= 4,
        f"upstream keep-alive: {len(after)} connection(s) nginx->covetd open after them "
        f"({len(after - before)} new), not one per request",
    )

    # Streaming: X-Accel-Buffering: no makes nginx pass chunks on as they come.
    conn = http.client.HTTPConnection("127.0.0.1", ngx, timeout=10, source_address=(CLIENT, 0))
    started = time.monotonic()
    conn.request("GET", "/stream")
    response = conn.getresponse()
    first = response.readline()
    t_first = time.monotonic() - started
    rest = response.read()
    t_all = time.monotonic() - started
    conn.close()
    check(
        first == b"chunk 0\n" and rest == b"chunk 1\nchunk 2\n",
        f"/stream via nginx: {(first + rest).count(b'chunk')} chunks",
    )
    check(
        t_first < 0.4 and t_all >= 0.9,
        f"first chunk after {t_first * 1000:.0f} ms, last after {t_all * 1000:.0f} ms: "
        "not buffered by nginx",
    )


# -- WebSocket ----------------------------------------------------------------------------


async def websocket_checks(port: int) -> None:
    from websockets.asyncio.client import connect

    url = f"ws://127.0.0.1:{port}/echo"
    # local_addr goes to loop.create_connection: connect from CLIENT
    async with connect(url, max_size=4 * MiB, local_addr=(CLIENT, 0)) as ws:
        assert ws.response is not None
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
        messages: list[str | bytes] = [f"hello {i}" for i in range(20)]
        messages += [os.urandom(4096), "é" * 1000, "z" * (256 * 1024)]
        started = time.monotonic()
        for message in messages:
            await ws.send(message)
            echo = await asyncio.wait_for(ws.recv(), 10)
            if echo != message:
                check(False, f"echo of a {type(message).__name__} of {len(message)} differs")
                return
        elapsed = time.monotonic() - started
        total = sum(len(m) for m in messages)
        check(
            True,
            f"{url} via nginx: {len(messages)} messages echoed ({total} B: text, "
            f"binary, 256 KiB) in {elapsed * 1000:.0f} ms; extensions: {extensions}",
        )
        await ws.close()
        check(ws.close_code == 1000, f"closed cleanly (code {ws.close_code})")

    async with connect(f"ws://127.0.0.1:{port}/whoami/ws", local_addr=(CLIENT, 0)) as ws:
        seen = json.loads(await asyncio.wait_for(ws.recv(), 10))
        check(
            seen["client"] == CLIENT,
            f"WebSocket upgrade via nginx: covetd sees client {seen['client']}, url {seen['url']}",
        )


def cmd_ws(nginx_port: str) -> None:
    asyncio.run(asyncio.wait_for(websocket_checks(int(nginx_port)), 30))


# -- HUP reload under load, through nginx ---------------------------------------------------


def cmd_reload(nginx_port: str, master_pid: str, error_log: str) -> None:
    port, pid, log = int(nginx_port), int(master_pid), Path(error_log)
    stop = threading.Event()
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(CLIENT, 0))
        count = 0
        while not stop.is_set():
            post = (index + count) % 2 == 1
            try:
                conn.request(
                    "POST" if post else "GET",
                    "/upload" if post else "/whoami",
                    body=b"z" * 512 if post else None,
                )
                response = conn.getresponse()
                response.read()
                outcome = f"{'POST' if post else 'GET'} {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                outcome = f"{'POST' if post else 'GET'} {type(exc).__name__}"
                conn.close()
                conn = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=10, source_address=(CLIENT, 0)
                )
            with lock:
                statuses[outcome] += 1
            count += 1
        conn.close()

    offset = log.stat().st_size
    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    os.kill(pid, signal.SIGHUP)
    sent = time.monotonic()
    deadline = sent + 30
    serving = retired = 0
    text = ""
    while time.monotonic() < deadline:
        text = log.read_bytes()[offset:].decode(errors="replace")
        serving = len(re.findall(r"reload: generation \d+ serving", text))
        retired = len(re.findall(r"exited \(reload", text))
        if serving and retired >= 2:
            break
        time.sleep(0.1)
    took = time.monotonic() - sent
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(15)
    total = sum(statuses.values())
    bad = {k: v for k, v in statuses.items() if not k.endswith(" 200")}
    check(
        serving == 1 and retired >= 2,
        f"HUP: new generation serving, {retired} old workers retired, in {took:.2f} s",
    )
    check(
        not bad and total > 100,
        f"{total} requests via nginx (4 keep-alive clients, GET + POST) across the reload: "
        f"{dict(statuses)}",
    )


# -- Prometheus rules -----------------------------------------------------------------------


def api(base: str, path: str, **params: str) -> Any:
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        doc = json.load(response)
    if doc.get("status") != "success":
        raise RuntimeError(f"{path}: {doc}")
    return doc["data"]


def rule_groups(base: str) -> list[dict[str, Any]]:
    return api(base, "/api/v1/rules")["groups"]  # type: ignore[no-any-return]


def cmd_rules(base: str, mode: str = "up") -> None:
    deadline = time.monotonic() + 30
    if mode == "down":
        # covetd was stopped: CovetdDown must go pending (its `for: 1m` keeps it from
        # firing within this test) and up must read 0.
        while time.monotonic() < deadline:
            states = {r["name"]: r.get("state") for g in rule_groups(base) for r in g["rules"]}
            if states.get("CovetdDown") in ("pending", "firing"):
                break
            time.sleep(0.5)
        up = api(base, "/api/v1/query", query='up{job="covetd"}')["result"]
        check(
            states.get("CovetdDown") in ("pending", "firing") and up and up[0]["value"][1] == "0",
            f"covetd stopped: up={up[0]['value'][1] if up else None}, CovetdDown "
            f"{states.get('CovetdDown')}",
        )
        return
    started = time.monotonic()
    while time.monotonic() < deadline:  # every group evaluated at least twice
        groups = rule_groups(base)
        fresh = [g for g in groups if g.get("lastEvaluation", "").startswith("0001")]
        up = api(base, "/api/v1/query", query='count_over_time(up{job="covetd"}[1m])')["result"]
        if groups and not fresh and up and float(up[0]["value"][1]) >= 3:
            break
        time.sleep(0.5)
    time.sleep(2.5)  # a couple more evaluations with data in the window
    groups = rule_groups(base)
    rules = [r for g in groups for r in g["rules"]]
    print(
        f"  {len(groups)} groups, {len(rules)} rules loaded from alerts.yml after "
        f"{time.monotonic() - started:.1f} s"
    )
    for group in groups:
        for rule in group["rules"]:
            took = rule.get("evaluationTime", 0) * 1000
            error = f" error={rule['lastError']}" if rule.get("lastError") else ""
            print(
                f"    {group['name']:<22} {rule['name']:<30} health={rule['health']:<3} "
                f"state={rule.get('state', '-'):<8} eval={took:.2f} ms{error}"
            )
    check(
        len(rules) > 0 and all(r["health"] == "ok" for r in rules),
        "every rule evaluates (health ok, no lastError) against live covetd data",
    )
    firing = [r["name"] for r in rules if r.get("state") not in (None, "inactive")]
    check(not firing, f"no alert pending or firing on a healthy covetd: {firing or 'none'}")
    queries = {
        "up": 'up{job="covetd"}',
        "workers": 'covetd_workers{job="covetd"}',
        "requests": 'sum(covetd_http_requests_total{job="covetd"})',
        "lag series": 'count(covetd_event_loop_lag_seconds{job="covetd"})',
        "processes": 'count(process_resident_memory_bytes{job="covetd"})',
    }
    values = {}
    for name, expr in queries.items():
        result = api(base, "/api/v1/query", query=expr)["result"]
        values[name] = result[0]["value"][1] if result else None
    print(f"  live: {values}")
    check(
        values["up"] == "1"
        and values["workers"] == "2"
        and values["lag series"] == "2"
        and values["processes"] == "3",
        "up=1, 2 workers, lag for each worker, 3 processes",
    )


def main() -> int:
    command, *args = sys.argv[1:] or ["help"]
    commands: dict[str, Callable[..., None]] = {
        "proxy": cmd_proxy,
        "ws": cmd_ws,
        "reload": cmd_reload,
        "rules": cmd_rules,
    }
    if command not in commands:
        print(__doc__)
        return 2
    commands[command](*args)
    if failures:
        print(f"{command}: {len(failures)} problem(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
