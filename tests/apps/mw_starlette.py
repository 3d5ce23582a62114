"""A Starlette app for the built-in middleware tests: the same probes as mw_basic, seen
through the ASGI bridge (scope client, scheme and headers are built from the Request)."""

import asyncio
from typing import Any

from eventlog import record
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from covetd.middleware.request_id import current_request_id

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


async def index(request: Request) -> Response:
    return PlainTextResponse("starlette")


async def info(request: Request) -> Response:
    client = request.scope["client"]
    return JSONResponse(
        {
            "client": list(client) if client else None,
            "scheme": request.url.scheme,
            "host": request.headers.getlist("host"),
            "url": str(request.url),
            "request_id": {
                "context": current_request_id.get(),
                "header": request.headers.getlist("x-request-id"),
            },
        }
    )


async def own_headers(request: Request) -> Response:
    return PlainTextResponse(
        "mine",
        headers={
            "Content-Security-Policy": "default-src 'none'",
            "X-Frame-Options": "DENY",
            "X-Request-ID": "chosen-by-app",
        },
    )


async def forever(request: Request) -> Response:
    name = request.query_params.get("name", "forever")
    record(f"{name}-started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        record(f"{name}-cancelled")
        raise
    finally:
        record(f"{name}-finally")
    return PlainTextResponse("unreachable")


async def sleep(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("s", "0")))
    return PlainTextResponse("slept")


async def whoami(request: Request) -> Response:
    """Starlette's request.user and request.auth, filled by covetd's auth middleware."""
    user = request.user
    return JSONResponse(
        {
            "authenticated": user.is_authenticated,
            "display_name": user.display_name,
            "scopes": sorted(request.auth.scopes),
        }
    )


@requires("reports:read")
async def reports(request: Request) -> Response:
    return PlainTextResponse("reports")


async def session_put(request: Request) -> Response:
    """Writes Starlette's request.session: covetd's sessions middleware saves it."""
    request.session["value"] = request.query_params["value"]
    return PlainTextResponse("stored")


async def session_get(request: Request) -> Response:
    return JSONResponse(dict(request.session))


async def not_found(request: Request, exc: Any) -> Response:
    return PlainTextResponse("nothing here", 404)


app = Starlette(
    routes=[
        Route("/", index),
        Route("/info", info, methods=ALL_METHODS),
        Route("/own-headers", own_headers),
        Route("/forever", forever),
        Route("/sleep", sleep),
        Route("/whoami", whoami),
        Route("/reports", reports),
        Route("/session/put", session_put),
        Route("/session/get", session_get),
    ],
    exception_handlers={404: not_found},
)
