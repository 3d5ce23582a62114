"""An unconfigured middleware costs nothing: with ``middleware: []`` (and no access log)
the engine calls the app's own handler, with no wrapper of any kind in between."""

from __future__ import annotations

from covetd import Covet
from covetd.config import Config, load_config
from covetd.engine.asgi import AsgiRunner
from covetd.engine.native import NativeRunner
from covetd.middleware.pipeline import build_chain, configured_entries
from covetd.worker.main import _AppAdapter

app = Covet()


@app.get("/")
async def index() -> str:
    return "hello"


async def asgi_app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("never called here")


def unconfigured() -> Config:
    return load_config(None, {"logging.access_log": "false"})


def test_an_empty_list_builds_no_chain() -> None:
    assert build_chain([], app.handle) is app.handle


def test_no_entries_without_the_access_log() -> None:
    assert configured_entries(unconfigured()) == []


def test_the_engine_calls_a_covet_apps_own_handler() -> None:
    runner = _AppAdapter(app, unconfigured()).runner()
    assert isinstance(runner, NativeRunner)
    assert runner._handle is app.handle


def test_an_asgi_app_runs_on_the_plain_asgi_runner() -> None:
    runner = _AppAdapter(asgi_app, unconfigured()).runner()
    assert isinstance(runner, AsgiRunner)
