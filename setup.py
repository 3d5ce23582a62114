"""The native build: with ``COVETD_MYPYC=1`` the hot-path modules below are compiled
with mypyc and the C helpers built (``make run``/``make test`` do it where a C compiler
is present, and the Docker image; ``pip install`` without it gives pure Python).

Everything else about the package is in ``pyproject.toml``. The compiled modules are
the same source files: an extension module next to a ``.py`` wins the import, and
deleting it (``make pure``) goes back to the interpreted code.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup

# The modules every request runs through on the native and the ASGI path
# (loadtests/bare_cost.py measures them). Only fully typed modules whose classes behave
# the same compiled belong here; docs/performance.md, "The native build".
NATIVE_MODULES = [
    "covetd/engine/h1/parser.py",
    "covetd/engine/h1/writer.py",
    "covetd/engine/cycle.py",
    "covetd/engine/driver.py",
    "covetd/engine/protocol.py",
    "covetd/engine/server.py",
    "covetd/engine/native.py",
    "covetd/engine/asgi.py",
    "covetd/engine/asgi_common.py",
    "covetd/app/head.py",
    "covetd/app/dispatch.py",
    "covetd/app/json_encoding.py",
]


# Hand-written C for what mypyc cannot express; the code that imports each falls back
# to Python when it is not built.
C_EXTENSIONS = [
    Extension("covetd.engine._first_step", ["covetd/engine/_first_step.c"]),
]


def ext_modules() -> list[object]:
    if os.environ.get("COVETD_MYPYC", "0") in ("", "0"):
        return []
    from mypyc.build import mypycify

    # One shared library inside the package (not a hash-named top-level module).
    # COVETD_MYPYC_MODULES="a.py b.py": another set, for experiments (bare_cost.py).
    modules = os.environ.get("COVETD_MYPYC_MODULES", "").split() or NATIVE_MODULES
    compiled = list(mypycify(modules, opt_level="3", group_name="covetd._native"))
    return [*compiled, *C_EXTENSIONS]


setup(ext_modules=ext_modules())
