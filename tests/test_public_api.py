"""covetd's public surface is exactly ``covetd.__all__``; changing it is deliberate."""

from __future__ import annotations

import importlib

import covetd

PUBLIC_API = [
    "ClientDisconnect",
    "Covet",
    "FormData",
    "HTMLResponse",
    "HTTPException",
    "Headers",
    "JSONResponse",
    "PlainTextResponse",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "Response",
    "Router",
    "State",
    "StreamingResponse",
    "WebSocket",
    "WebSocketDisconnect",
    "__version__",
]


def test_all_is_pinned() -> None:
    assert covetd.__all__ == PUBLIC_API


def test_every_public_name_is_importable() -> None:
    module = importlib.import_module("covetd")
    for name in PUBLIC_API:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from covetd import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(PUBLIC_API)


def test_public_classes_live_in_the_framework_package() -> None:
    for name in PUBLIC_API:
        value = getattr(covetd, name)
        if isinstance(value, type):
            assert value.__module__.startswith("covetd.app."), (name, value.__module__)


def test_version_is_a_string() -> None:
    assert isinstance(covetd.__version__, str)
    assert covetd.__version__
