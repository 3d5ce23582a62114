"""timeout: past its deadline a handler is cancelled (its finally runs) and the client
gets 503, while other requests go on; per-route deadlines; streams are not cut."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.events import events_env, read_events, wait_for_event
from support.mw_servers import ServerPool
from support.rawhttp import RawConnection

from covetd.config.errors import ConfigError
from covetd.middleware.options import parse_options
from covetd.middleware.timeout import TimeoutMiddleware

APPS = ["mw_basic:app", "mw_starlette:app"]
DEADLINE = 0.3  # short, and far from the 0.6 s a "slow" handler takes or the 5 s of a long one
BODY = "Service Unavailable: the request timed out\n"


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("timeout-events")


@pytest.fixture(scope="module")
def servers(events: Path) -> Iterator[ServerPool]:
    pool = ServerPool()
    env = events_env(events)
    with pool:
        yield lambda app, config: pool(app, config, env=env)  # type: ignore[misc]


def deadlines(**options: Any) -> dict[str, Any]:
    return {"middleware": [{"timeout": options}]}


def test_the_handler_is_cancelled_and_the_client_gets_503(servers: Any, events: Path) -> None:
    server = servers("mw_basic:app", deadlines(timeout=DEADLINE))
    response = httpx.get(server.url + "/forever?name=covet-1")
    assert response.status_code == 503
    assert response.text == BODY
    assert "retry-after" not in response.headers
    logged = wait_for_event(events, "covet-1-finally")
    assert logged.index("covet-1-started") < logged.index("covet-1-cancelled")


def test_an_asgi_app_gets_503_too(servers: Any) -> None:
    server = servers("mw_starlette:app", deadlines(timeout=DEADLINE))
    response = httpx.get(server.url + "/forever?name=asgi-503")
    assert response.status_code == 503
    assert response.text == BODY


def test_an_asgi_handler_is_cancelled(servers: Any, events: Path) -> None:
    server = servers("mw_starlette:app", deadlines(timeout=DEADLINE))
    assert httpx.get(server.url + "/forever?name=asgi-1").status_code == 503
    wait_for_event(events, "asgi-1-cancelled", timeout=1.5)


@pytest.mark.parametrize("app", APPS)
def test_other_requests_proceed_meanwhile(servers: Any, events: Path, app: str) -> None:
    server = servers(app, deadlines(timeout=2.0))  # far beyond the other request
    name = f"stalled-{app.partition(':')[0]}"
    with RawConnection(server.host, server.port) as stalled:
        stalled.send(f"GET /forever?name={name} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        wait_for_event(events, f"{name}-started")
        other = httpx.get(server.url + "/")
        assert other.status_code == 200
        assert f"{name}-finally" not in read_events(events)  # answered while it waited
        response = stalled.read_response()
        assert response.status == 503
        # The connection is still good for the next request.
        stalled.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert stalled.read_response().status == 200


def test_a_handler_within_its_deadline_is_untouched(servers: Any) -> None:
    server = servers("mw_basic:app", deadlines(timeout=5))
    response = httpx.get(server.url + "/sleep?s=0.05")
    assert response.status_code == 200
    assert response.text == "slept"


def test_retry_after_is_rounded_up(servers: Any) -> None:
    server = servers("mw_basic:app", deadlines(timeout=DEADLINE, retry_after=2.5))
    response = httpx.get(server.url + "/forever?name=retry")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"


def test_the_handlers_own_timeout_error_is_not_a_503(servers: Any) -> None:
    server = servers("mw_basic:app", deadlines(timeout=5))
    assert httpx.get(server.url + "/own-timeout").status_code == 500


def test_a_handler_that_swallows_the_cancellation_is_answered(servers: Any, events: Path) -> None:
    server = servers("mw_basic:app", deadlines(timeout=DEADLINE))
    response = httpx.get(server.url + "/swallow")
    assert response.status_code == 200
    assert response.text == "answered anyway"
    assert "swallow-cancelled" in read_events(events)


def test_a_streaming_response_is_not_cut(servers: Any) -> None:
    server = servers("mw_basic:app", deadlines(timeout=DEADLINE))
    response = httpx.get(server.url + "/stream-slowly?n=4&pause=0.15")  # 0.6 s of parts
    assert response.status_code == 200
    assert response.text == "part 0\npart 1\npart 2\npart 3\n"


# -- per-route deadlines -------------------------------------------------------------


def test_a_route_may_have_a_longer_deadline(servers: Any) -> None:
    server = servers("mw_basic:app", deadlines(timeout=DEADLINE, routes={"/slow/*": 5}))
    assert httpx.get(server.url + "/slow/sleep?s=0.6").status_code == 200
    assert httpx.get(server.url + "/sleep?s=0.6").status_code == 503


def test_a_route_may_have_none(servers: Any) -> None:
    server = servers("mw_basic:app", deadlines(timeout=DEADLINE, routes={"/sleep": None}))
    assert httpx.get(server.url + "/sleep?s=0.6").status_code == 200
    assert httpx.get(server.url + "/slow/sleep?s=0.6").status_code == 503


def test_only_routes_may_have_deadlines(servers: Any, events: Path) -> None:
    server = servers("mw_basic:app", deadlines(timeout=None, routes={"/slow/*": DEADLINE}))
    assert httpx.get(server.url + "/slow/forever").status_code == 503
    wait_for_event(events, "slow-cancelled")
    assert httpx.get(server.url + "/sleep?s=0.6").status_code == 200


def test_the_first_matching_route_wins(servers: Any) -> None:
    # Written in the order that sorting would reverse: the YAML order is what counts.
    short_first = deadlines(timeout=5, routes={"/slow/sleep": DEADLINE, "/slow/*": 5})
    response = httpx.get(servers("mw_basic:app", short_first).url + "/slow/sleep?s=0.6")
    assert response.status_code == 503
    long_first = deadlines(timeout=DEADLINE, routes={"/slow/*": 5, "/slow/sleep": DEADLINE})
    assert httpx.get(servers("mw_basic:app", long_first).url + "/slow/sleep?s=0.6").is_success


# -- options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "message"),
    [
        ({"timeout": 0}, "timeout", "expected a positive duration"),
        ({"timeout": "soon"}, "timeout", "expected a positive duration"),
        ({"routes": ["/slow/*"]}, "routes", "expected a mapping of path patterns"),
        ({"routes": {"slow/*": 5}}, "routes", 'a path pattern starts with "/"'),
        ({"routes": {"/slow/*": -5}}, "routes", "expected a positive duration"),
        ({"retry_after": -1}, "retry_after", "expected a duration"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_options(TimeoutMiddleware.Options, options, "timeout", "c.yaml:2")
    assert str(caught.value).startswith(f"c.yaml:2: middleware.timeout.{key}: ")
    assert message in str(caught.value)


def test_deadlines_read_like_the_config_files() -> None:
    options = parse_options(
        TimeoutMiddleware.Options, {"timeout": "2m", "routes": {"/a": "500ms"}}, "timeout"
    )
    middleware = TimeoutMiddleware(_never, options)
    assert middleware.deadline_for("/a") == 0.5
    assert middleware.deadline_for("/b") == 120


async def _never(request: Any) -> Any:
    raise AssertionError("not called")
