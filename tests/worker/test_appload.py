"""load_app: attributes, factories, sys.path handling, and a one-line error for each failure."""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from covetd.worker.appload import AppLoadError, load_app

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


def load_error(spec: str, app_dir: Path | str | None) -> AppLoadError:
    with pytest.raises(AppLoadError) as info:
        load_app(spec, None if app_dir is None else str(app_dir))
    assert "\n" not in str(info.value)
    return info.value


# --- finding the app -------------------------------------------------------------------


def test_attribute(write_module: WriteModule, app_dir: Path) -> None:
    write_module("hello_app.py", "app = ['the app']\n")
    assert load_app("hello_app:app", str(app_dir)) == ["the app"]


def test_dotted_attribute_and_package(write_module: WriteModule, app_dir: Path) -> None:
    write_module("shop/__init__.py", "")
    write_module("shop/web.py", "class Holder:\n    app = 'nested app'\n")
    assert load_app("shop.web:Holder.app", str(app_dir)) == "nested app"


def test_factory_is_called(write_module: WriteModule, app_dir: Path) -> None:
    write_module(
        "factory_app.py",
        """\
        calls = []

        def create_app():
            calls.append(1)
            return {"app": len(calls)}
        """,
    )
    assert load_app("factory_app:create_app()", str(app_dir)) == {"app": 1}


# --- sys.path --------------------------------------------------------------------------


def test_app_dir_goes_first_on_sys_path_once(write_module: WriteModule, app_dir: Path) -> None:
    write_module("path_app.py", "app = 1\n")
    load_app("path_app:app", str(app_dir))
    load_app("path_app:app", str(app_dir))
    assert sys.path[0] == str(app_dir)
    assert sys.path.count(str(app_dir)) == 1


def test_relative_app_dir_is_made_absolute(
    write_module: WriteModule, app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module("relative_app.py", "app = 2\n")
    monkeypatch.chdir(app_dir.parent)
    assert load_app("relative_app:app", "project") == 2
    assert sys.path[0] == str(app_dir)
    assert os.path.isabs(sys.path[0])


def test_app_dir_already_on_sys_path_is_moved_first(
    write_module: WriteModule, app_dir: Path
) -> None:
    write_module("moved_app.py", "app = 3\n")
    sys.path.append(str(app_dir))
    load_app("moved_app:app", str(app_dir))
    assert sys.path[0] == str(app_dir)
    assert sys.path.count(str(app_dir)) == 1


def test_app_dir_shadows_an_installed_module(
    write_module: WriteModule, app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module("colorsys.py", "app = 'local colorsys'\n")
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    assert load_app("colorsys:app", str(app_dir)) == "local colorsys"


def test_no_app_dir_leaves_sys_path_alone() -> None:
    before = list(sys.path)
    assert load_app("json:loads", None) is __import__("json").loads
    assert sys.path == before


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["main", "main:", ":app", "main:app-x", "my-app:app", "main:app()()"]
)
def test_malformed_spec(spec: str) -> None:
    message = str(load_error(spec, None))
    assert message.startswith(
        f'invalid application "{spec}": expected "module:attr" or "module:factory()" ('
    )


def test_missing_module(app_dir: Path) -> None:
    error = load_error("no_such_module_xyz:app", app_dir)
    assert str(error) == "no module named 'no_such_module_xyz'"


def test_missing_package_of_the_module(app_dir: Path) -> None:
    assert (
        str(load_error("no_such_pkg_xyz.web:app", app_dir)) == "no module named 'no_such_pkg_xyz'"
    )


def test_missing_dependency_is_not_a_missing_module(
    write_module: WriteModule, app_dir: Path
) -> None:
    write_module("needs_dep.py", "import some_missing_dependency_xyz\napp = 1\n")
    error = load_error("needs_dep:app", app_dir)
    assert str(error) == (
        "error while importing 'needs_dep': "
        "ModuleNotFoundError: No module named 'some_missing_dependency_xyz'"
    )
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_exception_raised_by_the_import(write_module: WriteModule, app_dir: Path) -> None:
    write_module("crashing.py", "raise RuntimeError('database\\nunreachable')\n")
    error = load_error("crashing:app", app_dir)
    assert str(error) == "error while importing 'crashing': RuntimeError: database unreachable"
    assert isinstance(error.__cause__, RuntimeError)
    assert error.__cause__.__traceback__ is not None


def test_syntax_error_in_the_module(write_module: WriteModule, app_dir: Path) -> None:
    write_module("broken_syntax.py", "app = (\n")
    message = str(load_error("broken_syntax:app", app_dir))
    assert message.startswith("error while importing 'broken_syntax': SyntaxError: ")


def test_missing_attribute_suggests_a_near_name(write_module: WriteModule, app_dir: Path) -> None:
    write_module("attr_app.py", "application = 1\n")
    assert str(load_error("attr_app:app", app_dir)) == "module 'attr_app' has no attribute 'app'"
    assert str(load_error("attr_app:applicaton", app_dir)) == (
        "module 'attr_app' has no attribute 'applicaton' (did you mean 'application'?)"
    )


def test_missing_nested_attribute(write_module: WriteModule, app_dir: Path) -> None:
    write_module("nested_attr.py", "class Holder:\n    pass\n")
    assert str(load_error("nested_attr:Holder.app", app_dir)) == (
        "'nested_attr:Holder' has no attribute 'app'"
    )


def test_factory_failure(write_module: WriteModule, app_dir: Path) -> None:
    write_module("bad_factory.py", "def create_app():\n    raise ValueError('no settings')\n")
    error = load_error("bad_factory:create_app()", app_dir)
    assert str(error) == (
        "error while calling factory bad_factory:create_app(): ValueError: no settings"
    )
    assert isinstance(error.__cause__, ValueError)


def test_factory_that_is_not_callable(write_module: WriteModule, app_dir: Path) -> None:
    write_module("not_callable.py", "app = 42\n")
    assert str(load_error("not_callable:app()", app_dir)) == (
        "not_callable:app(): 'app' is not callable (it is of type int)"
    )


def test_factory_returning_nothing(write_module: WriteModule, app_dir: Path) -> None:
    write_module("none_factory.py", "def create_app():\n    pass\n")
    assert str(load_error("none_factory:create_app()", app_dir)) == (
        "factory none_factory:create_app() returned None; it must return the app"
    )


def test_async_factory_is_refused_without_a_warning(
    write_module: WriteModule, app_dir: Path
) -> None:
    write_module("async_factory.py", "async def create_app():\n    return 1\n")
    assert str(load_error("async_factory:create_app()", app_dir)) == (
        "factory async_factory:create_app() returned an awaitable; it must return the app"
    )
