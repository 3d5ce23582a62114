"""The Covet application: dispatch, handler call styles, errors, lifespan, state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

import pytest
from support.fake_request import make_request

from covetd import Covet, HTTPException, JSONResponse, PlainTextResponse, Request, Response, State


def call(app: Covet, method: str = "GET", target: str = "/", **kwargs: Any) -> Response:
    return asyncio.run(app.handle(make_request(method, target, **kwargs)))


def json_of(response: Response) -> Any:
    return json.loads(response.body)


def header(response: Response, name: str) -> str | None:
    for key, value in response.raw_headers:
        if key == name.encode():
            return value.decode("latin-1")
    return None


# -- HTTPException -----------------------------------------------------------------------


def test_http_exception_becomes_json_detail_with_its_headers() -> None:
    app = Covet()

    @app.get("/")
    async def index() -> None:
        raise HTTPException(402, "pay up", headers={"X-Price": "3", "Retry-After": "60"})

    response = call(app)
    assert response.status_code == 402
    assert json_of(response) == {"detail": "pay up"}
    assert header(response, "content-type") == "application/json"
    assert header(response, "x-price") == "3"
    assert header(response, "retry-after") == "60"


def test_http_exception_detail_defaults_to_the_reason_phrase() -> None:
    assert HTTPException(404).detail == "Not Found"
    assert HTTPException(418).detail == HTTPStatus(418).phrase
    assert HTTPException(599).detail == "Error"
    assert str(HTTPException(403, "no")) == "403: no"
    assert repr(HTTPException(403, "no")) == "HTTPException(status_code=403, detail='no')"
    assert HTTPException(400).headers is None


def test_unknown_path_is_a_json_404() -> None:
    response = call(Covet(), "GET", "/nowhere")
    assert response.status_code == 404
    assert json_of(response) == {"detail": "Not Found"}


def test_wrong_method_is_a_json_405_with_allow() -> None:
    app = Covet()
    app.add_route("/x", lambda: "x", ["GET", "PUT"])
    response = call(app, "DELETE", "/x")
    assert response.status_code == 405
    assert json_of(response) == {"detail": "Method Not Allowed"}
    assert header(response, "allow") == "GET, HEAD, PUT"


# -- exception handlers ----------------------------------------------------------------------


class AppError(Exception):
    pass


class NotEnoughCoffee(AppError):
    pass


def test_handler_by_status_code() -> None:
    app = Covet()

    @app.exception_handler(404)
    async def not_found(request: Request, exc: HTTPException) -> Response:
        return PlainTextResponse(f"no page at {request.path}", 404)

    response = call(app, "GET", "/missing")
    assert response.status_code == 404
    assert response.body == b"no page at /missing"


def test_status_handler_sees_the_exception_raised_in_a_handler() -> None:
    app = Covet()
    seen: list[HTTPException] = []

    @app.exception_handler(409)
    def conflict(request: Request, exc: HTTPException) -> dict[str, str]:
        seen.append(exc)
        return {"conflict": exc.detail}

    @app.put("/")
    async def index() -> None:
        raise HTTPException(409, "already exists")

    response = call(app, "PUT")
    assert json_of(response) == {"conflict": "already exists"}
    assert seen[0].status_code == 409
    assert call(app, "GET", "/nope").status_code == 404  # other statuses untouched


def test_handler_by_exception_class_follows_the_mro() -> None:
    app = Covet()

    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": type(exc).__name__}, 503)

    @app.get("/")
    async def index() -> None:
        raise NotEnoughCoffee()

    response = call(app)
    assert response.status_code == 503
    assert json_of(response) == {"error": "NotEnoughCoffee"}


def test_the_most_specific_class_handler_wins() -> None:
    app = Covet()
    app.add_exception_handler(AppError, lambda request, exc: PlainTextResponse("base", 500))
    app.add_exception_handler(NotEnoughCoffee, lambda request, exc: PlainTextResponse("sub", 503))

    @app.get("/")
    async def index() -> None:
        raise NotEnoughCoffee()

    assert call(app).body == b"sub"


def test_handler_for_http_exception_class() -> None:
    app = Covet()

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        return PlainTextResponse(f"{exc.status_code} {exc.detail}", exc.status_code, exc.headers)

    app.add_route("/only-get", lambda: "x")
    response = call(app, "POST", "/only-get")
    assert (response.status_code, response.body) == (405, b"405 Method Not Allowed")
    assert header(response, "allow") == "GET, HEAD"


def test_status_handler_wins_over_class_handler() -> None:
    app = Covet()
    app.add_exception_handler(HTTPException, lambda request, exc: "by class")
    app.add_exception_handler(404, lambda request, exc: "by status")
    assert call(app, "GET", "/nope").body == b"by status"
    app.add_route("/x", lambda: "x")
    assert call(app, "POST", "/x").body == b"by class"


@pytest.mark.parametrize("is_async", [False, True])
def test_sync_and_async_exception_handlers(is_async: bool) -> None:
    app = Covet()

    def sync_handler(request: Request, exc: Exception) -> str:
        return f"sync handled {exc}"

    async def async_handler(request: Request, exc: Exception) -> str:
        await asyncio.sleep(0)
        return f"async handled {exc}"

    app.add_exception_handler(KeyError, async_handler if is_async else sync_handler)

    @app.get("/")
    async def index() -> None:
        raise KeyError("k")

    response = call(app)
    assert response.status_code == 200
    assert response.body == (b"async handled 'k'" if is_async else b"sync handled 'k'")


def test_unexpected_exception_is_a_bare_500(caplog: pytest.LogCaptureFixture) -> None:
    app = Covet()

    @app.get("/")
    async def index() -> None:
        raise RuntimeError("password=hunter2")

    with caplog.at_level(logging.ERROR, logger="covetd.error"):
        response = call(app)
    assert response.status_code == 500
    assert response.body == b"Internal Server Error\n"
    assert header(response, "content-type") == "text/plain; charset=utf-8"
    assert b"hunter2" not in response.body
    assert b"Traceback" not in response.body
    (record,) = [r for r in caplog.records if r.name == "covetd.error"]
    assert record.exc_info is not None
    assert "GET /" in record.getMessage()


def test_sync_handler_raising_is_a_500_too() -> None:
    app = Covet()

    @app.get("/")
    def index() -> None:
        raise ValueError("secret")

    response = call(app)
    assert response.status_code == 500
    assert b"secret" not in response.body


def test_exception_handler_that_raises_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    app = Covet()

    @app.exception_handler(AppError)
    async def broken(request: Request, exc: Exception) -> Response:
        raise RuntimeError("handler secret")

    @app.get("/")
    async def index() -> None:
        raise AppError()

    with caplog.at_level(logging.ERROR, logger="covetd.error"):
        response = call(app)
    assert response.status_code == 500
    assert b"secret" not in response.body
    assert any("exception handler" in r.getMessage() for r in caplog.records)


def test_exception_handler_returning_garbage_is_a_500() -> None:
    app = Covet()
    app.add_exception_handler(AppError, lambda request, exc: object())

    @app.get("/")
    async def index() -> None:
        raise AppError()

    assert call(app).status_code == 500


def test_a_500_handler_renders_unexpected_exceptions() -> None:
    """Like Starlette's ``exception_handlers={500: ...}``: the app's own error page for
    exceptions no other handler took."""
    app = Covet()

    @app.exception_handler(500)
    async def server_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("our own error page", 500)

    @app.get("/")
    async def index() -> None:
        raise RuntimeError("boom")

    response = call(app)
    assert (response.status_code, response.body) == (500, b"our own error page")


# -- handler call styles ----------------------------------------------------------------------


def test_handler_without_arguments() -> None:
    app = Covet()

    @app.get("/")
    async def index() -> str:
        return "no args"

    assert call(app).body == b"no args"


def test_handler_with_the_request_under_any_name() -> None:
    app = Covet()

    @app.get("/who")
    async def who(req: Request) -> str:
        return f"{req.method} {req.path}"

    assert call(app, "GET", "/who").body == b"GET /who"


def test_path_params_as_keyword_arguments_without_the_request() -> None:
    app = Covet()

    @app.get("/users/{id:int}/posts/{slug}")
    async def post(id: int, slug: str) -> dict[str, Any]:
        return {"id": id, "slug": slug, "id_type": type(id).__name__}

    assert json_of(call(app, "GET", "/users/3/posts/hi")) == {
        "id": 3,
        "slug": "hi",
        "id_type": "int",
    }


def test_path_params_as_keyword_arguments_with_the_request() -> None:
    app = Covet()

    @app.get("/users/{id:int}")
    async def user(request: Request, id: int) -> dict[str, Any]:
        return {"id": id, "params": request.path_params}

    assert json_of(call(app, "GET", "/users/3")) == {"id": 3, "params": {"id": 3}}


def test_path_params_through_var_keyword() -> None:
    app = Covet()

    @app.get("/a/{x:int}/{y}")
    async def only_kwargs(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    @app.get("/b/{x:int}")
    async def request_and_kwargs(request: Request, **kwargs: Any) -> dict[str, Any]:
        return {"path": request.path, **kwargs}

    assert json_of(call(app, "GET", "/a/1/two")) == {"x": 1, "y": "two"}
    assert json_of(call(app, "GET", "/b/5")) == {"path": "/b/5", "x": 5}


def test_path_params_only_on_the_request_for_a_request_only_handler() -> None:
    app = Covet()

    @app.get("/items/{id:int}")
    async def item(request: Request) -> dict[str, Any]:
        return request.path_params

    assert json_of(call(app, "GET", "/items/8")) == {"id": 8}


def test_handler_declaring_some_of_the_path_params_gets_only_those() -> None:
    """Like FastAPI: a path parameter the function does not declare is not passed."""
    app = Covet()

    @app.get("/orgs/{org}/repos/{repo}")
    async def repo(request: Request, repo: str) -> dict[str, Any]:
        return {"repo": repo, "org": request.path_params["org"]}

    response = call(app, "GET", "/orgs/acme/repos/covetd")
    assert response.status_code == 200
    assert json_of(response) == {"repo": "covetd", "org": "acme"}


def test_callable_object_handlers() -> None:
    class AsyncEndpoint:
        async def __call__(self, request: Request) -> str:
            return f"async object {threading.current_thread() is threading.main_thread()}"

    class SyncEndpoint:
        def __call__(self, request: Request) -> str:
            return f"sync object {threading.current_thread() is threading.main_thread()}"

    app = Covet()
    app.add_route("/async", AsyncEndpoint())
    app.add_route("/sync", SyncEndpoint())
    assert call(app, "GET", "/async").body == b"async object True"
    assert call(app, "GET", "/sync").body == b"sync object False"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/none", {"style": "none"}),
        ("/req", {"style": "request", "path": "/req"}),
        ("/params/4", {"style": "params", "n": 4}),
        ("/both/4", {"style": "both", "n": 4, "path": "/both/4"}),
    ],
)
def test_plain_def_handlers_run_in_a_worker_thread(path: str, expected: dict[str, Any]) -> None:
    app = Covet()
    threads: list[threading.Thread] = []

    @app.get("/none")
    def none() -> dict[str, Any]:
        threads.append(threading.current_thread())
        return {"style": "none"}

    @app.get("/req")
    def req(request: Request) -> dict[str, Any]:
        threads.append(threading.current_thread())
        return {"style": "request", "path": request.path}

    @app.get("/params/{n:int}")
    def params(n: int) -> dict[str, Any]:
        threads.append(threading.current_thread())
        return {"style": "params", "n": n}

    @app.get("/both/{n:int}")
    def both(request: Request, n: int) -> dict[str, Any]:
        threads.append(threading.current_thread())
        return {"style": "both", "n": n, "path": request.path}

    assert json_of(call(app, "GET", path)) == expected
    (thread,) = threads
    assert thread is not threading.main_thread()


def test_async_handlers_run_on_the_event_loop_thread() -> None:
    app = Covet()

    @app.get("/")
    async def index() -> dict[str, bool]:
        return {"main": threading.current_thread() is threading.main_thread()}

    assert json_of(call(app)) == {"main": True}


def test_request_knows_its_app_and_route() -> None:
    app = Covet()
    seen: list[Request] = []

    @app.get("/r/{id:int}", name="the_route")
    async def handler(request: Request) -> None:
        seen.append(request)

    call(app, "GET", "/r/1")
    (request,) = seen
    assert request.app is app
    assert request.route is not None
    assert request.route.name == "the_route"
    assert request.path_params == {"id": 1}


def test_add_route_and_url_path_for_on_the_app() -> None:
    app = Covet()
    app.add_route("/files/*path", lambda path: path, name="file")
    assert app.url_path_for("file", path="a/b.txt") == "/files/a/b.txt"
    assert call(app, "GET", "/files/a/b.txt").body == b"a/b.txt"


# -- lifespan and state ---------------------------------------------------------------------


def test_startup_and_shutdown_hooks_sync_and_async_in_order() -> None:
    events: list[str] = []
    app = Covet()

    @app.on_startup
    def sync_start() -> None:
        events.append("sync start")

    @app.on_startup
    async def async_start() -> None:
        await asyncio.sleep(0)
        events.append("async start")

    @app.on_shutdown
    async def async_stop() -> None:
        events.append("async stop")

    @app.on_shutdown
    def sync_stop() -> None:
        events.append("sync stop")

    async def life() -> None:
        await app.startup()
        events.append("serving")
        await app.shutdown()

    asyncio.run(life())
    assert events == ["sync start", "async start", "serving", "async stop", "sync stop"]


def test_lifespan_context_manager_state_lands_in_app_state() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Covet) -> AsyncIterator[dict[str, Any]]:
        events.append(f"enter {type(app).__name__}")
        yield {"db": "connection", "answer": 42}
        events.append("exit")

    app = Covet(lifespan=lifespan)

    @app.get("/")
    async def index(request: Request) -> dict[str, Any]:
        return {"db": request.app.state.db, "answer": request.app.state.answer}

    async def life() -> Response:
        await app.startup()
        response = await app.handle(make_request("GET", "/"))
        await app.shutdown()
        return response

    response = asyncio.run(life())
    assert json_of(response) == {"db": "connection", "answer": 42}
    assert events == ["enter Covet", "exit"]


def test_lifespan_yielding_nothing_and_hooks_together() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Covet) -> AsyncIterator[None]:
        events.append("lifespan enter")
        yield
        events.append("lifespan exit")

    app = Covet(lifespan=lifespan)
    app.on_startup(lambda: events.append("hook start"))
    app.on_shutdown(lambda: events.append("hook stop"))

    async def life() -> None:
        await app.startup()
        await app.shutdown()

    asyncio.run(life())
    assert set(events) == {"lifespan enter", "lifespan exit", "hook start", "hook stop"}
    assert events.index("lifespan enter") < events.index("lifespan exit")
    assert events.index("hook start") < events.index("hook stop")


def test_startup_failure_propagates() -> None:
    app = Covet()

    @app.on_startup
    async def fail() -> None:
        raise RuntimeError("cannot reach the database")

    with pytest.raises(RuntimeError, match="cannot reach the database"):
        asyncio.run(app.startup())


def test_app_state_is_an_attribute_bag() -> None:
    app = Covet()
    assert isinstance(app.state, State)
    app.state.counter = 1
    app.state.counter += 1
    assert app.state.counter == 2
    assert "counter" in repr(app.state)
    assert State({"a": 1}).a == 1
    with pytest.raises(AttributeError):
        app.state.missing  # noqa: B018
