"""Server hooks: imported once with one-line errors, run without ever raising."""

from __future__ import annotations

import importlib
import logging
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from covetd.config.schema import HooksConfig
from covetd.master.hooks import HOOK_NAMES, HookError, Hooks

WriteModule = Callable[[str, str], Path]


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore sys.path and forget modules imported by the test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return tmp_path / "project"


@pytest.fixture
def write_module(app_dir: Path) -> WriteModule:
    """``write_module("pkg/mod.py", source)`` under app_dir."""

    def write(relative: str, source: str) -> Path:
        path = app_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return path

    return write


class RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log() -> Iterator[list[logging.LogRecord]]:
    """Records of ``covetd.error`` (it may not propagate to the root logger)."""
    handler = RecordingHandler()
    logger = logging.getLogger("covetd.error")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


RECORDER = """
calls = []
imports = globals().get("imports", 0) + 1

def record(name):
    return lambda *args: calls.append((name, args))

on_starting = record("on_starting")
on_reload = record("on_reload")
worker_started = record("worker_started")
worker_exited = record("worker_exited")
"""


def recorded_calls() -> list[tuple[str, tuple[Any, ...]]]:
    calls: list[tuple[str, tuple[Any, ...]]] = sys.modules["myhooks"].calls
    return calls


def every_hook() -> HooksConfig:
    return HooksConfig(**{name: f"myhooks:{name}" for name in HOOK_NAMES})


def load_error(config: HooksConfig, app_dir: Path | None) -> str:
    with pytest.raises(HookError) as info:
        Hooks.load(config, None if app_dir is None else str(app_dir))
    message = str(info.value)
    assert "\n" not in message
    return message


# --- loading ------------------------------------------------------------------------------


def test_every_hook_is_called_with_its_arguments(write_module: WriteModule, app_dir: Path) -> None:
    write_module("myhooks.py", RECORDER)
    hooks = Hooks.load(every_hook(), str(app_dir))
    config, info = object(), object()
    hooks.run("on_starting", config)
    hooks.run("on_reload", config)
    hooks.run("worker_started", info)
    hooks.run("worker_exited", info)
    assert recorded_calls() == [
        ("on_starting", (config,)),
        ("on_reload", (config,)),
        ("worker_started", (info,)),
        ("worker_exited", (info,)),
    ]


def test_modules_are_imported_once(write_module: WriteModule, app_dir: Path) -> None:
    write_module("myhooks.py", RECORDER)
    hooks = Hooks.load(every_hook(), str(app_dir))
    for _ in range(3):
        hooks.run("worker_exited", None)
    assert sys.modules["myhooks"].imports == 1
    assert len(recorded_calls()) == 3


def test_unset_hooks_do_nothing(write_module: WriteModule, app_dir: Path) -> None:
    write_module("myhooks.py", RECORDER)
    hooks = Hooks.load(HooksConfig(worker_exited="myhooks:worker_exited"), str(app_dir))
    assert "worker_exited" in hooks
    assert "on_starting" not in hooks
    hooks.run("on_starting", object())
    hooks.run("worker_exited", 7)
    assert recorded_calls() == [("worker_exited", (7,))]


def test_no_hooks_configured() -> None:
    for hooks in (Hooks.load(HooksConfig(), None), Hooks()):
        for name in HOOK_NAMES:
            assert name not in hooks
            hooks.run(name, object())


def test_app_dir_goes_first_on_sys_path(write_module: WriteModule, app_dir: Path) -> None:
    write_module("myhooks.py", RECORDER)
    config = HooksConfig(on_starting="myhooks:on_starting")
    assert (
        load_error(config, None)
        == "hook on_starting (myhooks:on_starting): no module named 'myhooks'"
    )
    Hooks.load(config, str(app_dir)).run("on_starting", 1)
    assert recorded_calls() == [("on_starting", (1,))]


def test_a_dotted_attribute(write_module: WriteModule, app_dir: Path) -> None:
    write_module("pkg/__init__.py", "")
    write_module("pkg/server.py", "class Hooks:\n    seen = []\n    on_reload = seen.append\n")
    Hooks.load(HooksConfig(on_reload="pkg.server:Hooks.on_reload"), str(app_dir)).run(
        "on_reload", "config"
    )
    assert sys.modules["pkg.server"].Hooks.seen == ["config"]


@pytest.mark.parametrize(
    ("source", "spec", "message"),
    [
        (None, "nosuch:fn", "hook worker_exited (nosuch:fn): no module named 'nosuch'"),
        (
            "import missing_dependency\n",
            "myhooks:fn",
            "hook worker_exited (myhooks:fn): error while importing 'myhooks': "
            "ModuleNotFoundError: No module named 'missing_dependency'",
        ),
        (
            "raise RuntimeError('boom at import')\n",
            "myhooks:fn",
            "hook worker_exited (myhooks:fn): error while importing 'myhooks': "
            "RuntimeError: boom at import",
        ),
        (
            "def worker_exit(info):\n    pass\n",
            "myhooks:worker_exited",
            "hook worker_exited (myhooks:worker_exited): module 'myhooks' has no attribute "
            "'worker_exited' (did you mean 'worker_exit'?)",
        ),
        (
            "worker_exited = 42\n",
            "myhooks:worker_exited",
            "hook worker_exited (myhooks:worker_exited): not callable (it is of type int)",
        ),
        (
            "async def worker_exited(info):\n    pass\n",
            "myhooks:worker_exited",
            "hook worker_exited (myhooks:worker_exited): is an async function; "
            "hooks are called synchronously",
        ),
        (
            "def make():\n    pass\n",
            "myhooks:make()",
            'hook worker_exited (myhooks:make()): expected "module:callable" '
            '("make()" is not an attribute name)',
        ),
    ],
)
def test_load_errors_are_one_line_naming_hook_and_spec(
    write_module: WriteModule, app_dir: Path, source: str | None, spec: str, message: str
) -> None:
    write_module("myhooks.py", source or "")
    assert load_error(HooksConfig(worker_exited=spec), app_dir) == message


def test_the_first_broken_hook_stops_loading(write_module: WriteModule, app_dir: Path) -> None:
    write_module("myhooks.py", RECORDER)
    config = HooksConfig(on_starting="myhooks:on_starting", on_reload="myhooks:on_relaod")
    assert load_error(config, app_dir).startswith("hook on_reload (myhooks:on_relaod): ")


def test_an_import_error_keeps_its_cause(write_module: WriteModule, app_dir: Path) -> None:
    write_module("myhooks.py", "1 / 0\n")
    with pytest.raises(HookError) as info:
        Hooks.load(HooksConfig(on_starting="myhooks:fn"), str(app_dir))
    assert isinstance(info.value.__cause__.__cause__, ZeroDivisionError)  # type: ignore[union-attr]


# --- running ------------------------------------------------------------------------------

FAILING = """
import asyncio

def crash(info):
    raise RuntimeError(f"hook crashed on {info}")

def leave(info):
    raise SystemExit(3)

async def later():
    pass

def returns_coroutine(info):
    return later()
"""


def test_a_failing_hook_is_logged_and_swallowed(
    write_module: WriteModule, app_dir: Path, error_log: list[logging.LogRecord]
) -> None:
    write_module("failing.py", FAILING)
    hooks = Hooks.load(HooksConfig(worker_exited="failing:crash"), str(app_dir))
    hooks.run("worker_exited", "worker 3")
    hooks.run("worker_exited", "worker 4")
    assert [record.getMessage() for record in error_log] == [
        "hook worker_exited (failing:crash) failed",
        "hook worker_exited (failing:crash) failed",
    ]
    record = error_log[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "hook crashed on worker 3"


def test_a_hook_may_exit_the_process_on_purpose(write_module: WriteModule, app_dir: Path) -> None:
    write_module("failing.py", FAILING)
    hooks = Hooks.load(HooksConfig(on_starting="failing:leave"), str(app_dir))
    with pytest.raises(SystemExit):
        hooks.run("on_starting", object())


def test_a_hook_returning_a_coroutine_is_reported_not_left_unawaited(
    write_module: WriteModule, app_dir: Path, error_log: list[logging.LogRecord]
) -> None:
    write_module("failing.py", FAILING)
    hooks = Hooks.load(HooksConfig(worker_started="failing:returns_coroutine"), str(app_dir))
    hooks.run("worker_started", object())  # "never awaited" would be a warning, i.e. an error
    assert [record.getMessage() for record in error_log] == [
        "hook worker_started (failing:returns_coroutine) returned an awaitable; "
        "hooks must not be async"
    ]


def test_an_unknown_hook_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown hook 'on_stopping'"):
        Hooks().run("on_stopping")  # type: ignore[arg-type]
