"""The optional mypyc build (``make native``, setup.py): rules the compiled modules
must keep, checked on the source (whether or not they are compiled right now)."""

from __future__ import annotations

import ast
import asyncio
import contextvars
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


def test_c_first_step_matches_context_run() -> None:
    """The native build's C first step (engine/_first_step.c) does what
    ``context.run(coro.send, None)`` does, reporting the finish instead of raising."""
    first_step_module = pytest.importorskip("covetd.engine._first_step")
    first_step = first_step_module.first_step
    variable: contextvars.ContextVar[str] = contextvars.ContextVar("variable", default="outer")

    async def finishes() -> str:
        variable.set("inner")
        return "result"

    context = contextvars.copy_context()
    assert first_step(context, finishes()) == (True, "result")
    assert context[variable] == "inner" and variable.get() == "outer"

    async def suspends() -> None:
        await asyncio.sleep(0)

    coro = suspends()
    finished, yielded = first_step(contextvars.copy_context(), coro)
    assert finished is False and yielded is None  # asyncio.sleep(0) yields None
    coro.close()

    async def fails() -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        first_step(contextvars.copy_context(), fails())
    never_run = finishes()
    with pytest.raises(TypeError):
        first_step(None, never_run)
    never_run.close()


@pytest.mark.parametrize("path", native_modules())
def test_mypyc_attr_decorates_classes_only(path: str) -> None:
    """Interpreted, ``mypyc_attr`` is a no-op on anything; compiled, it means something
    only on a class: on a function it silently leaves the class it was meant for
    without its option (and the native build fails)."""
    tree = ast.parse((REPO / path).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                assert not (isinstance(target, ast.Name) and target.id == "mypyc_attr"), (
                    f"{path}:{node.lineno}: mypyc_attr on function {node.name}"
                )
