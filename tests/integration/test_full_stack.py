"""config/full-stack.yaml: every built-in middleware at once, around
examples/full_stack.py, on two workers. It starts, passes --check-config, and each
middleware does its job in the company of all the others."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from support.process import REPO, Covetd, wait_for

CONFIG = REPO / "config" / "full-stack.yaml"
SECRETS = {"COVETD_SESSION_KEY": "s" * 40, "COVETD_JWT_SECRET": "j" * 40}


def full_stack_settings() -> tuple[str, dict[str, Any]]:
    settings = yaml.safe_load(CONFIG.read_text())
    app = settings.pop("app")
    settings["app_dir"] = str(REPO)
    settings["server"].pop("bind")  # the fixture's socket
    return app, settings


@pytest.fixture(scope="module")
def server() -> Iterator[Covetd]:
    app, settings = full_stack_settings()
    started = Covetd(app, settings, env=SECRETS, app_dir=REPO)
    try:
        yield started.start()
    finally:
        started.stop()


def token(**claims: Any) -> str:
    now = int(time.time())
    payload = {"sub": "alice", "iat": now, "exp": now + 60, **claims}
    return jwt.encode(payload, SECRETS["COVETD_JWT_SECRET"], algorithm="HS256")


def access_lines(server: Covetd) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if "method" in line]  # not the error log's


def test_check_config_accepts_it_with_its_secrets() -> None:
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run
    ok = run(
        [sys.executable, "-m", "covetd", "-c", str(CONFIG), "--check-config"],
        cwd=REPO,
        env={**SECRETS, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    missing = run(
        [sys.executable, "-m", "covetd", "-c", str(CONFIG), "--check-config"],
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0
    assert "COVETD_SESSION_KEY" in missing.stderr or "COVETD_JWT_SECRET" in missing.stderr


def test_a_public_page_gets_the_whole_stack(server: Covetd) -> None:
    response = httpx.get(server.url + "/", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"  # compression
    assert response.text.startswith("covetd full stack")  # httpx decoded it
    assert len(response.headers["x-request-id"]) == 32  # request_id
    assert response.headers["x-content-type-options"] == "nosniff"  # security_headers
    assert "strict-transport-security" not in response.headers  # plain http: no HSTS
    assert int(response.headers["ratelimit-limit"]) == 200  # rate_limit
    assert "accept-encoding" in response.headers["vary"].lower()
    request_id = response.headers["x-request-id"]
    line = wait_for(
        lambda: [e for e in access_lines(server) if e["request_id"] == request_id],
        what="the access line",
    )[0]
    assert (line["path"], line["status"]) == ("/", 200)  # access_log


def test_an_unknown_host_is_refused(server: Covetd) -> None:
    response = httpx.get(server.url + "/", headers={"Host": "evil.example.org"})
    assert response.status_code == 400  # trusted_host


def test_cors_preflight_from_an_allowed_origin_only(server: Covetd) -> None:
    preflight = {
        "Origin": "https://app.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = httpx.options(server.url + "/api/me", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    other = httpx.options(server.url + "/api/me", headers={**preflight, "Origin": "https://x.io"})
    assert "access-control-allow-origin" not in other.headers


def test_a_form_post_needs_its_csrf_token_and_keeps_the_session(server: Covetd) -> None:
    origin = {"Origin": server.url}
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/form")
        assert page.status_code == 200
        assert "session" in client.cookies  # sessions
        value = page.text.split('value="', 1)[1].split('"', 1)[0]
        assert client.post("/form", headers=origin).status_code == 403  # csrf: no token
        bad = client.post("/form", data={"csrf_token": "x" * 40}, headers=origin)
        assert bad.status_code == 403
        first = client.post("/form", data={"csrf_token": value}, headers=origin)
        assert first.status_code == 200, first.text
        second = client.post("/form", data={"csrf_token": value}, headers=origin)
        assert (first.json(), second.json()) == ({"visits": 1}, {"visits": 2})


def test_the_api_needs_a_valid_token_and_scopes(server: Covetd) -> None:
    anonymous = httpx.get(server.url + "/api/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    me = httpx.get(server.url + "/api/me", headers={"Authorization": f"Bearer {token()}"})
    assert me.json() == {"user": "alice", "scopes": []}
    forged = jwt.encode({"sub": "mallory", "iat": 0, "exp": 2**40}, "k" * 40, algorithm="HS256")
    assert (
        httpx.get(server.url + "/api/me", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    no_scope = httpx.get(server.url + "/api/admin", headers={"Authorization": f"Bearer {token()}"})
    assert no_scope.status_code == 403
    admin = httpx.get(
        server.url + "/api/admin", headers={"Authorization": f"Bearer {token(scope='admin')}"}
    )
    assert admin.json() == {"admin": "alice"}


def test_a_slow_handler_gets_503_at_its_deadline(server: Covetd) -> None:
    started = time.monotonic()
    response = httpx.get(server.url + "/slow?seconds=30", timeout=20)
    assert response.status_code == 503  # timeout
    assert response.headers["retry-after"] == "1"
    assert time.monotonic() - started < 10


def test_the_route_limit_is_exact_across_both_workers(server: Covetd) -> None:
    # New connections spread over the two workers; the bucket is shared: 20 pass,
    # plus what refilled (10/s) while the requests were sent.
    started = time.monotonic()
    statuses = []
    for _ in range(40):
        with httpx.Client() as client:  # a new connection each time
            statuses.append(client.get(server.url + "/form").status_code)
    elapsed = time.monotonic() - started
    passed = statuses.count(200)
    assert set(statuses) <= {200, 429}
    assert 20 <= passed <= 20 + int(elapsed * 10) + 1, (passed, elapsed)
    assert statuses[:20] == [200] * 20


def test_gzip_body_is_what_the_app_sent(server: Covetd) -> None:
    raw = httpx.get(server.url + "/", headers={"Accept-Encoding": "gzip"})
    with httpx.stream("GET", server.url + "/", headers={"Accept-Encoding": "gzip"}) as stream:
        compressed = b"".join(stream.iter_raw())
    assert gzip.decompress(compressed).decode() == raw.text == "covetd full stack\n" * 64


def test_config_file_is_the_one_documented() -> None:
    text = Path(CONFIG).read_text()
    names = [next(iter(entry)) for entry in yaml.safe_load(text)["middleware"]]
    from covetd.middleware.pipeline import BUILTINS

    assert set(BUILTINS) - set(names) <= {"gzip"}  # gzip is compression, gzip only
