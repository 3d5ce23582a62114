"""A Covet app for the built-in middleware tests (tests/middleware/): it reports what
the middleware changed on the request and lets tests set headers or stall on purpose."""

import asyncio
import io
import logging
from typing import Any

from eventlog import record

from covetd import Covet, PlainTextResponse, Request, Response, StreamingResponse
from covetd.middleware.request_id import RequestIdFilter, current_request_id

app = Covet()
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


@app.get("/")
async def index() -> str:
    return "hello"


@app.route("/info", methods=ALL_METHODS)
async def info(request: Request) -> dict[str, Any]:
    """What the request looks like once the middleware ran (after ``?s=`` seconds)."""
    await asyncio.sleep(float(request.query_params.get("s", "0")))
    client = request.client
    return {
        "client": [client.host, client.port] if client else None,
        "scheme": request.scheme,
        "host": request.headers.getlist("host"),
        "url": str(request.url),
        "request_id": {
            "state": getattr(request.state, "request_id", None),
            "context": current_request_id.get(),
            "header": request.headers.getlist("x-request-id"),
            "trace": request.headers.getlist("trace-id"),
        },
    }


@app.get("/own-headers")
async def own_headers() -> Response:
    """A response that already has headers the middleware would add."""
    return PlainTextResponse(
        "mine",
        headers={
            "Content-Security-Policy": "default-src 'none'",
            "X-Frame-Options": "DENY",
            "Strict-Transport-Security": "max-age=5",
            "Referrer-Policy": "no-referrer",
            "X-Request-ID": "chosen-by-app",
            "Vary": "Accept-Encoding",
        },
    )


@app.get("/vary-star")
async def vary_star() -> Response:
    return PlainTextResponse("any", headers={"Vary": "*"})


@app.get("/log")
async def log_line() -> str:
    """A log record formatted with the request id filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(request_id)s %(message)s"))
    logger = logging.getLogger("mw_basic.log")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("handled")
    finally:
        logger.removeHandler(handler)
    return stream.getvalue().strip()


# -- deadlines ----------------------------------------------------------------------


async def stall(name: str) -> str:
    """Wait forever; log start and the cancellation (the proof the handler was stopped)."""
    record(f"{name}-started")
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        record(f"{name}-cancelled")
        raise
    finally:
        record(f"{name}-finally")
    return "unreachable"


@app.get("/forever")
async def forever(request: Request) -> str:
    return await stall(request.query_params.get("name", "forever"))


@app.get("/slow/forever")
async def slow_forever() -> str:
    return await stall("slow")


@app.get("/sleep")
async def sleep(request: Request) -> str:
    await asyncio.sleep(float(request.query_params.get("s", "0")))
    return "slept"


@app.get("/slow/sleep")
async def slow_sleep(request: Request) -> str:
    await asyncio.sleep(float(request.query_params.get("s", "0")))
    return "slept"


@app.get("/swallow")
async def swallow() -> str:
    """Catches its cancellation and answers anyway."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        record("swallow-cancelled")
    return "answered anyway"


@app.get("/own-timeout")
async def own_timeout() -> str:
    """The handler's own TimeoutError: an app error (500), not the middleware's 503."""
    await asyncio.wait_for(asyncio.Event().wait(), 0.01)
    return "unreachable"


@app.get("/stream-slowly")
async def stream_slowly(request: Request) -> StreamingResponse:
    """Parts keep coming well after the handler returned."""
    pause = float(request.query_params.get("pause", "0.1"))

    async def parts() -> Any:
        for i in range(int(request.query_params.get("n", "3"))):
            await asyncio.sleep(pause)
            yield f"part {i}\n"

    return StreamingResponse(parts(), media_type="text/plain")
