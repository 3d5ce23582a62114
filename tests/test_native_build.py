"""The optional mypyc build (``make native``, setup.py): rules the compiled modules
must keep, checked on the source (whether or not they are compiled right now)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def native_modules() -> list[str]:
    """``NATIVE_MODULES`` of setup.py, read without running setup()."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "NATIVE_MODULES" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, list)
            return [str(path) for path in value]
    raise AssertionError("setup.py has no NATIVE_MODULES")


@pytest.mark.parametrize("path", native_modules())
def test_no_await_in_finally(path: str) -> None:
    """mypyc miscompiles an ``await`` in a ``finally`` block: run inside a caller's
    ``except`` block, the coroutine ends with the caller's exception (a handler's
    StopIteration value) instead of running on (see RequestCycle.send_streaming)."""
    tree = ast.parse((REPO / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            for statement in node.finalbody:
                for inner in ast.walk(statement):
                    assert not isinstance(inner, ast.Await | ast.AsyncFor | ast.AsyncWith), (
                        f"{path}:{inner.lineno}: await in a finally block"
                    )


@pytest.mark.parametrize("path", native_modules())
def test_module_imports(path: str) -> None:
    """Each native module imports, compiled (``.so`` next to it) or not."""
    name = path.removesuffix(".py").replace("/", ".")
    module = importlib.import_module(name)
    assert module.__name__ == name


@pytest.mark.parametrize("path", native_modules())
def test_compiled_module_is_not_stale(path: str) -> None:
    """A compiled module older than its source would silently run the old code."""
    source = REPO / path
    for compiled in source.parent.glob(source.stem + ".*.so"):
        assert compiled.stat().st_mtime >= source.stat().st_mtime, (
            f"{compiled.name} is older than {path}: run `make native` again (or `make pure`)"
        )
