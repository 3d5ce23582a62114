"""covetd: an HTTP/1.1 server appliance for Python, with its own small web framework.

The public API is exactly ``__all__`` (a test pins it).
"""

from ._version import __version__
from .app.application import Covet
from .app.datastructures import FormData, Headers, QueryParams, State
from .app.exceptions import ClientDisconnect, HTTPException
from .app.requests import Request
from .app.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from .app.routing import Router
from .app.websockets import WebSocket, WebSocketDisconnect

__all__ = [
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
