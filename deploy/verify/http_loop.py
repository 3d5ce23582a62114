#!/usr/bin/env python3
"""Send requests without pause until told to stop, and count the ones that failed.

Used by the deploy verifications to show that a reload or an upgrade loses nothing:

    http_loop.py URL --stop-file F [--max-seconds 120] [--clients 2] > result.json

Two kinds of client run side by side, ``--clients`` of each:

- ``fresh``: a new TCP connection for every request;
- ``keepalive``: one persistent connection, replaced only when the server answers
  with ``connection: close`` (what a well-behaved HTTP/1.1 client does).

A request fails when it raises (refused, reset, timeout, closed before the answer) or
its status is not 200. Nothing is retried, so the count is strict. Each failure is
also classed: ``closed`` (the connection was closed or reset before any byte of an
answer: RFC 9112 9.3.1 lets a client retry such an idempotent request, and browsers,
nginx and most client libraries do), ``refused``, ``timeout``, ``http`` (an answer
other than 200), ``other``. Prints one JSON object (total, failures, per-kind and
per-class counts, the first errors) when the stop file appears or --max-seconds
pass. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse
from collections import Counter

TIMEOUT = 5.0


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def record(self, kind: str, error: str | None) -> None:
        with self.lock:
            self.counts[f"{kind}_total"] += 1
            if error is not None:
                self.counts[f"{kind}_failures"] += 1
                self.counts[f"class_{classify(error)}"] += 1
                if len(self.errors) < 10:
                    self.errors.append(f"{time.strftime('%H:%M:%S')} {kind}: {error}")


CLOSED = ("RemoteDisconnected", "ConnectionResetError", "BrokenPipeError", "IncompleteRead")


def classify(error: str) -> str:
    name = error.split(":", 1)[0]
    if name in CLOSED:
        return "closed"
    if name == "ConnectionRefusedError":
        return "refused"
    if name in ("TimeoutError", "timeout"):
        return "timeout"
    return "http" if name.startswith("HTTP ") else "other"


def connection(url: urllib.parse.SplitResult) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=TIMEOUT)


def request(conn: http.client.HTTPConnection, path: str) -> tuple[str | None, bool]:
    """One GET; returns (error or None, whether the server asked to close)."""
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}", True
    closing = (response.getheader("connection") or "").lower() == "close"
    error = None if response.status == 200 else f"HTTP {response.status}"
    return error, closing


def fresh_client(url: urllib.parse.SplitResult, tally: Tally, stop: threading.Event) -> None:
    while not stop.is_set():
        conn = connection(url)
        error, _ = request(conn, url.path or "/")
        conn.close()
        tally.record("fresh", error)


def keepalive_client(url: urllib.parse.SplitResult, tally: Tally, stop: threading.Event) -> None:
    conn = connection(url)
    while not stop.is_set():
        error, closing = request(conn, url.path or "/")
        tally.record("keepalive", error)
        if closing:
            conn.close()
            conn = connection(url)
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=2, help="clients of each kind (2)")
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    tally, stop = Tally(), threading.Event()
    threads = [
        threading.Thread(target=client, args=(url, tally, stop), daemon=True)
        for client in (fresh_client, keepalive_client)
        for _ in range(args.clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while not os.path.exists(args.stop_file) and time.monotonic() - started < args.max_seconds:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT + 1)
    counts = tally.counts
    total = counts["fresh_total"] + counts["keepalive_total"]
    failures = counts["fresh_failures"] + counts["keepalive_failures"]
    print(
        json.dumps(
            {
                "seconds": round(time.monotonic() - started, 1),
                "total": total,
                "failures": failures,
                **dict(sorted(counts.items())),
                "errors": tally.errors,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
