"""Middleware sees WebSocket upgrade requests (issue 5, deliverable 3): the YAML chain
wraps a WebSocket exactly as it wraps a plain request.

A custom middleware refuses an upgrade with its own response before the app; ``auth``
answers 401 to an anonymous upgrade of a protected path and gives the handler
``request.user`` otherwise; ``access_log`` logs refusals and (when they end) sessions;
``proxy_headers`` sets the client address and scheme the handler sees, for a trusted
peer only, for a Covet app and for an ASGI app.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from support.process import Covetd, wait_for
from wsclients import WsprotoClient, refused, ws_connect

SECRET = "websocket-tests-secret-0123456789abcdef"
FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def access_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ws-access") / "access.log"


@pytest.fixture(scope="module")
def server(module_covetd: Any, access_log: Path) -> Covetd:
    config = {
        "websocket": {"ping_interval": 0},
        "middleware": [
            {"access_log": {"output": str(access_log)}},
            {"proxy_headers": {}},  # trusts 127.0.0.1 (http.proxy_headers.trusted)
            {"ws_middleware:TicketGate": {"ticket": "t-1"}},
            {"auth": {"secret": SECRET, "protect": {"/user": []}, "required_claims": ["sub"]}},
        ],
    }
    server: Covetd = module_covetd("ws_covet:app", config)
    return server


@pytest.fixture(scope="module")
def asgi_server(module_covetd: Any) -> Covetd:
    config = {"websocket": {"ping_interval": 0}, "middleware": [{"proxy_headers": {}}]}
    server: Covetd = module_covetd("ws_asgi:app", config)
    return server


def token(subject: str = "ada") -> str:
    return jwt.encode({"sub": subject}, SECRET, algorithm="HS256")


def log_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def logged(log: Path, **fields: Any) -> dict[str, Any]:
    """The first access-log line with ``fields`` (waited for: a session is logged when
    it ends)."""

    def find() -> dict[str, Any] | None:
        for line in log_lines(log):
            if fields.items() <= line.items():
                return line
        return None

    found: dict[str, Any] = wait_for(find, 10, 0.05, f"an access-log line with {fields}")
    return found


# -- a custom middleware ------------------------------------------------------------------


def test_custom_middleware_refuses_an_upgrade_before_the_app(server: Covetd) -> None:
    seen_before = int(httpx.get(server.url + "/gate-count", timeout=10).text)
    response = refused(server, "/echo?ticket=wrong")
    assert response.status_code == 403
    assert response.headers["X-Gate"] == "refused"
    assert bytes(response.body) == b"ticket required\n"
    assert int(httpx.get(server.url + "/gate-count", timeout=10).text) == seen_before


def test_custom_middleware_lets_a_good_upgrade_through(server: Covetd) -> None:
    seen_before = int(httpx.get(server.url + "/gate-count", timeout=10).text)
    with ws_connect(server, "/echo?ticket=t-1") as client:
        client.send("through")
        assert client.recv(timeout=10) == "through"
    assert int(httpx.get(server.url + "/gate-count", timeout=10).text) == seen_before + 1


def test_plain_http_passes_the_gate(server: Covetd) -> None:
    assert httpx.get(server.url + "/", timeout=10).text == "plain HTTP"


# -- auth ---------------------------------------------------------------------------------


def test_auth_refuses_an_anonymous_upgrade_with_401(server: Covetd) -> None:
    response = refused(server, "/user?ticket=t-1")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_auth_refuses_a_bad_token_with_401(server: Covetd) -> None:
    bad = jwt.encode({"sub": "mallory"}, "another-secret-0123456789abcdefghij", algorithm="HS256")
    response = refused(
        server, "/user?ticket=t-1", additional_headers={"Authorization": f"Bearer {bad}"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')


def test_auth_gives_the_handler_its_user(server: Covetd) -> None:
    headers = {"Authorization": f"Bearer {token('ada')}"}
    with ws_connect(server, "/user?ticket=t-1", additional_headers=headers) as client:
        assert json.loads(client.recv(timeout=10)) == {"subject": "ada"}


# -- access_log ---------------------------------------------------------------------------


def test_access_log_logs_refused_upgrades(server: Covetd, access_log: Path) -> None:
    refused(server, "/echo?ticket=logged-refusal")
    line = logged(access_log, path="/echo", query="ticket=logged-refusal")
    assert line["status"] == 403
    assert line["method"] == "GET"
    assert line["user_agent"].startswith("Python/")  # the websockets client


def test_access_log_logs_a_session_when_it_ends(server: Covetd, access_log: Path) -> None:
    with ws_connect(server, "/echo?ticket=t-1&session=logged") as client:
        client.send("x")
        assert client.recv(timeout=10) == "x"
        httpx.get(server.url + "/?session=meanwhile", timeout=10)
        logged(access_log, query="session=meanwhile")  # a later request's line is there,
        early = [line for line in log_lines(access_log) if "session=logged" in line["query"]]
        assert early == [], "a session is logged once it ended, not at the 101"
    line = logged(access_log, path="/echo", query="ticket=t-1&session=logged")
    assert (line["status"], line["bytes"]) == (101, 0)


# -- proxy_headers ------------------------------------------------------------------------


def test_proxy_headers_set_the_covet_handlers_client(server: Covetd) -> None:
    with ws_connect(server, "/client?ticket=t-1", additional_headers=FORWARDED) as client:
        assert json.loads(client.recv(timeout=10)) == {"host": "203.0.113.7", "scheme": "https"}


def test_proxy_headers_from_an_untrusted_peer_are_ignored(server: Covetd) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in FORWARDED.items()]
    with WsprotoClient.open(
        server.host, server.port, "/client?ticket=t-1", extra_headers=headers, source="127.0.0.2"
    ) as client:
        assert client.receive_json() == {"host": "127.0.0.2", "scheme": "http"}


def test_access_log_shows_the_forwarded_client(server: Covetd, access_log: Path) -> None:
    with ws_connect(server, "/client?ticket=t-1&who=fwd", additional_headers=FORWARDED) as c:
        c.recv(timeout=10)
    assert logged(access_log, query="ticket=t-1&who=fwd")["client"] == "203.0.113.7"


def test_proxy_headers_set_the_asgi_scope(asgi_server: Covetd) -> None:
    with ws_connect(asgi_server, "/scope", additional_headers=FORWARDED) as client:
        scope = json.loads(client.recv(timeout=10))
    assert scope["client"][0] == "203.0.113.7"
    assert scope["scheme"] == "wss"
