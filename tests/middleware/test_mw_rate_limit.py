"""rate_limit: a token bucket per key, exact across workers (local) and hosts (redis)."""

from __future__ import annotations

import collections
import dataclasses
import glob
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from support.mwsecurity import (
    check_config,
    dead_port,
    fire,
    redis_keys,
    silent_server,
    start_per_slot,
)
from support.process import Covetd, wait_for
from support.rawhttp import RawConnection, RawResponse
from support.services import redis_url

from covetd.middleware.rate_limit import RateLimitMiddleware

APP = "mw_ratelimit_app:app"
SLOW = "1/hour"  # no token comes back while a test runs: counts are exact
PROBE = ["/__probe__"]  # the readiness probe of tests/support/process.py is not counted
SECRET = "rate-limit-test-secret-0123456789abcdef"


def limited(**options: Any) -> dict[str, Any]:
    """A config: the pid stamper outermost, then the rate limiter with ``options``."""
    return {
        "middleware": [
            {"mw_probe:WorkerPid": {}},
            {"rate_limit": {"exclude": PROBE, **options}},
        ]
    }


def statuses(responses: list[Any]) -> collections.Counter[int]:
    return collections.Counter(response.status for response in responses)


def test_local_limit_is_exact_across_two_workers(covetd) -> None:
    """N = 25 per key; 160 requests on 32 connections spread by the kernel over two
    workers: exactly 25 succeed (two unshared buckets would let up to 50 through)."""
    config = limited(rate=SLOW, burst=25)
    config["server"] = {"workers": 2}
    server = start_per_slot(covetd, APP, config)
    try:
        responses = fire(server.port, connections=32, per_connection=5)
        counts = statuses(responses)
        assert counts == {200: 25, 429: 135}
        pids = {response.header("x-worker-pid") for response in responses}
        assert len(pids) == 2, "the kernel gave every connection to one worker"
        granted = {r.header("x-worker-pid") for r in responses if r.status == 200}
        print(f"granted by {len(granted)} worker(s); responses per worker {_per_pid(responses)}")
    finally:
        master = server.proc.pid
        server.stop()
        for path in glob.glob(f"/dev/shm/covetd-ratelimit-{master}-*.tbl"):
            os.unlink(path)  # no master hook removes it yet (see the report)


def test_a_bucket_drained_on_one_worker_is_empty_on_the_other(covetd, tmp_path) -> None:
    """Deterministic companion of the test above: find a connection on each worker
    (probing with throw-away keys), drain key "shared" through one, ask the other."""
    config = limited(rate=SLOW, burst=3, key="header", header="X-Key", directory=str(tmp_path))
    config["server"] = {"workers": 2}
    server = start_per_slot(covetd, APP, config)
    by_worker: dict[str, RawConnection] = {}
    opened: list[RawConnection] = []
    try:
        for probe in range(64):
            conn = RawConnection("127.0.0.1", server.port)
            opened.append(conn)
            pid = _get(conn, f"probe-{probe}").header("x-worker-pid")
            by_worker.setdefault(str(pid), conn)
            if len(by_worker) == 2:
                break
        assert len(by_worker) == 2, "64 connections all went to one worker"
        first, second = by_worker.values()
        assert [_get(first, "shared").status for _ in range(3)] == [200, 200, 200]
        refused = _get(second, "shared")
        assert refused.status == 429
        assert refused.header("ratelimit-remaining") == "0"
    finally:
        for conn in opened:
            conn.close()


def _get(conn: RawConnection, key: str) -> RawResponse:
    conn.send(f"GET / HTTP/1.1\r\nHost: t\r\nX-Key: {key}\r\n\r\n".encode())
    return conn.read_response()


def test_the_shared_table_lives_in_shared_memory_named_after_the_master(covetd, tmp_path) -> None:
    server = covetd(APP, limited(rate=SLOW, burst=3, directory=str(tmp_path)))
    assert httpx.get(server.url + "/").status_code == 200
    [table] = os.listdir(tmp_path)
    assert table.startswith(f"covetd-ratelimit-{server.proc.pid}-")
    assert os.stat(tmp_path / table).st_mode & 0o777 == 0o600
    assert os.stat(tmp_path / table).st_size < 2 * 1024 * 1024  # bounded: 65536 slots


def test_a_dead_masters_table_is_removed_by_the_next_server(covetd, tmp_path) -> None:
    config = limited(rate=SLOW, burst=3, directory=str(tmp_path))
    first = covetd(APP, config)
    httpx.get(first.url + "/")
    [stale] = os.listdir(tmp_path)
    first.stop()
    second = covetd(APP, config)
    httpx.get(second.url + "/")
    tables = os.listdir(tmp_path)
    assert stale not in tables
    assert len(tables) == 1 and tables[0].startswith(f"covetd-ratelimit-{second.proc.pid}-")


def test_redis_limit_is_exact_across_two_instances(covetd) -> None:
    url = redis_url()
    with redis_keys(url) as prefix:
        config = limited(rate=SLOW, burst=20, backend="redis", url=url, prefix=prefix)
        config["server"] = {"workers": 2}
        first = start_per_slot(covetd, APP, config)
        second = start_per_slot(covetd, APP, config)
        results: dict[str, list[Any]] = {}

        def run(name: str, port: int) -> None:
            results[name] = fire(port, connections=12, per_connection=5)

        threads = [
            threading.Thread(target=run, args=(name, server.port))
            for name, server in (("first", first), ("second", second))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        everything = results["first"] + results["second"]
        assert statuses(everything) == {200: 20, 429: 100}
        assert len(results["first"]) == len(results["second"]) == 60
        served = {r.header("x-worker-pid") for r in everything}
        assert len(served) >= 3, f"both instances should serve on several workers: {served}"


def test_every_answer_carries_the_ratelimit_headers(covetd, tmp_path) -> None:
    server = covetd(APP, limited(rate=SLOW, burst=3, directory=str(tmp_path)))
    with httpx.Client(base_url=server.url) as client:
        answers = [client.get("/") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    for answer in answers:
        assert answer.headers["ratelimit-limit"] == "3"
        assert answer.headers["ratelimit-policy"] == "3;w=10800"  # 3 tokens at 1/hour
    assert answers[0].headers["ratelimit-reset"] == "3600"  # one token short of full
    assert answers[2].headers["ratelimit-reset"] == "10800"
    refused = answers[3]
    assert "retry-after" not in answers[2].headers
    assert 3590 <= int(refused.headers["retry-after"]) <= 3600
    assert refused.text == "Too Many Requests\n"


def test_headers_can_be_turned_off(covetd, tmp_path) -> None:
    server = covetd(APP, limited(rate=SLOW, burst=1, headers=False, directory=str(tmp_path)))
    allowed, refused = httpx.get(server.url + "/"), httpx.get(server.url + "/")
    assert (allowed.status_code, refused.status_code) == (200, 429)
    assert not any(name.startswith("ratelimit") for name in allowed.headers)
    assert "retry-after" in refused.headers  # a 429 always says when to come back


def test_routes_have_their_own_limits(covetd, tmp_path) -> None:
    routes = {"/login": {"rate": SLOW, "burst": 2}, "/api/*": SLOW}
    config = limited(rate=SLOW, burst=4, routes=routes, directory=str(tmp_path))
    server = covetd(APP, config)
    with httpx.Client(base_url=server.url) as client:
        login = [client.get("/login").status_code for _ in range(3)]
        api = [client.get(path).status_code for path in ("/api/a", "/api/b")]
        index = [client.get("/").status_code for _ in range(5)]
        assert client.get("/api/c").headers["ratelimit-limit"] == "1"  # "1/hour": burst 1
    assert login == [200, 200, 429]
    assert api == [200, 429]  # one bucket for the whole pattern
    assert index == [200, 200, 200, 200, 429]  # untouched by the route limits


def test_only_routes_are_limited_when_rate_is_null(covetd, tmp_path) -> None:
    config = limited(
        rate=None, routes={"/login": {"rate": SLOW, "burst": 1}}, directory=str(tmp_path)
    )
    server = covetd(APP, config)
    with httpx.Client(base_url=server.url) as client:
        assert [client.get("/login").status_code for _ in range(2)] == [200, 429]
        free = client.get("/")
    assert free.status_code == 200 and "ratelimit-limit" not in free.headers


def test_keyed_by_a_header(covetd, tmp_path) -> None:
    config = limited(rate=SLOW, burst=1, key="header", header="X-API-Key", directory=str(tmp_path))
    server = covetd(APP, config)

    def get(key: str) -> int:
        return httpx.get(server.url + "/", headers={"x-api-key": key}).status_code

    assert [get("alpha"), get("alpha"), get("beta")] == [200, 429, 200]


def test_keyed_by_the_authenticated_user(covetd, tmp_path) -> None:
    config = limited(rate=SLOW, burst=1, key="user", directory=str(tmp_path))
    config["middleware"].insert(1, {"auth": {"secret": SECRET, "exclude": PROBE}})
    server = covetd(APP, config)

    def get(user: str) -> int:
        now = int(time.time())
        claims = {"sub": user, "iat": now, "exp": now + 60}
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        return httpx.get(server.url + "/", headers={"authorization": f"Bearer {token}"}).status_code

    assert [get("alice"), get("alice"), get("bob")] == [200, 429, 200]
    anonymous = [httpx.get(server.url + "/").status_code for _ in range(2)]
    assert anonymous == [200, 429]  # anonymous requests are keyed by address


def test_an_asgi_app_is_limited_too(covetd, tmp_path) -> None:
    config = {
        "middleware": [
            {"rate_limit": {"exclude": PROBE, "rate": SLOW, "burst": 1, "directory": str(tmp_path)}}
        ]
    }
    server = covetd("asgi_raw:app", config)
    first, second = httpx.get(server.url + "/"), httpx.get(server.url + "/")
    assert (first.status_code, second.status_code) == (200, 429)
    assert first.headers["ratelimit-remaining"] == "0"


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
def test_a_down_redis_fails_open_or_closed(covetd, fail_open: bool, status: int) -> None:
    url = f"redis://127.0.0.1:{dead_port()}/0"
    server = covetd(APP, limited(backend="redis", url=url, fail_open=fail_open))
    started = time.monotonic()
    answers = [httpx.get(server.url + "/", timeout=10) for _ in range(3)]
    assert time.monotonic() - started < 3
    assert [a.status_code for a in answers] == [status] * 3
    assert "ratelimit-remaining" not in answers[0].headers
    if not fail_open:
        assert answers[0].headers["retry-after"] == "1"
    assert "Redis at redis://127.0.0.1" in _wait_log(server, "Redis at")


def test_a_hung_redis_never_hangs_a_request(covetd) -> None:
    with silent_server() as port:
        url = f"redis://127.0.0.1:{port}/0"
        server = covetd(APP, limited(backend="redis", url=url, timeout=0.2, fail_open=False))
        started = time.monotonic()
        answer = httpx.get(server.url + "/", timeout=10)
        elapsed = time.monotonic() - started
        server.stop()
    assert answer.status_code == 503
    assert elapsed < 2, f"a hung Redis held the request {elapsed:.2f}s (timeout 0.2s)"


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"rate": "fast"}, "rate", "expected a rate"),
        ({"rate": "10/fortnight"}, "rate", "expected a rate"),
        ({"key": "header"}, "header", "needs the header"),
        ({"backend": "redis"}, "url", "needs a Redis URL"),
        ({"routes": {"/x": {"rate": "1/s", "burst": 0}}}, "routes", "burst"),
        ({"burts": 3}, "burts", 'did you mean "burst"'),
    ],
)
def test_bad_options_are_refused_with_file_and_line(
    options: dict[str, Any], key: str, message: str
) -> None:
    server = Covetd(APP, {"middleware": [{"rate_limit": options}]}, bind=False)
    try:
        result = check_config(server)
    finally:
        server.stop()
    assert result.returncode == 1
    assert re.search(rf"covetd\.yaml:\d+: middleware\.rate_limit\.{key}: ", result.stderr)
    assert message in result.stderr


def test_every_option_is_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs/middleware/rate_limit.md").read_text()
    for field in dataclasses.fields(RateLimitMiddleware.Options):
        assert f"`{field.name}`" in doc, field.name


def _per_pid(responses: list[Any]) -> dict[str | None, int]:
    return dict(collections.Counter(response.header("x-worker-pid") for response in responses))


def _wait_log(server: Covetd, text: str) -> str:
    return str(wait_for(lambda: text in server.log() and server.log(), 10, what=text))
