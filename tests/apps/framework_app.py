"""A Covet app exercising the framework end to end (tests/integration/test_framework_http.py)."""

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from eventlog import record

from covetd import (
    Covet,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    Router,
    StreamingResponse,
)

app = Covet()


@app.get("/")
async def index() -> str:
    return "framework"


# -- typed parameters and lookup order ---------------------------------------------------


def typed(value: Any) -> dict[str, Any]:
    return {"value": str(value), "type": type(value).__name__}


@app.get("/items/{id:int}")
async def item_by_id(id: int) -> dict[str, Any]:
    return {"route": "by_id", **typed(id)}


@app.get("/items/{name}")
async def item_by_name(name: str) -> dict[str, Any]:
    return {"route": "by_name", **typed(name)}


@app.get("/floats/{x:float}")
async def floats(x: float) -> dict[str, Any]:
    return typed(x)


@app.get("/uuids/{u:uuid}")
async def uuids(u: uuid.UUID) -> dict[str, Any]:
    return typed(u)


@app.get("/flags/{flag:bool}")
async def flags(flag: bool) -> dict[str, Any]:
    return typed(flag)


@app.get("/files/{p:path}")
async def files(p: str) -> dict[str, Any]:
    return typed(p)


@app.get("/static/*filepath")
async def static(filepath: str) -> dict[str, Any]:
    return typed(filepath)


@app.get("/users/me/profile")
async def my_profile() -> str:
    return "my profile"


@app.get("/users/{id}/settings")
async def user_settings(id: str) -> str:
    return f"settings of {id}"


# -- methods -----------------------------------------------------------------------------


@app.route("/resource", methods=["GET", "PUT"])
async def resource(request: Request) -> str:
    return f"{request.method} resource"


@app.delete("/resource")
async def delete_resource() -> None:
    return None


@app.get("/sized")
async def sized() -> PlainTextResponse:
    return PlainTextResponse("twelve bytes", headers={"X-Route": "get"})


@app.get("/custom-head")
async def custom_head_get() -> str:
    return "the body of GET"


@app.head("/custom-head")
async def custom_head() -> Response:
    return Response(headers={"X-Route": "explicit-head", "Content-Length": "99"})


# -- requests --------------------------------------------------------------------------------


@app.get("/inspect")
async def inspect(request: Request) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "raw_path": request.raw_path.decode("latin-1"),
        "query_string": request.query_string.decode("latin-1"),
        "query": request.query_params.multi_items(),
        "multi": request.headers.getlist("x-multi"),
        "host": request.headers["HOST"],
        "cookies": request.cookies,
        "client_host": request.client.host if request.client else None,
        "url": str(request.url),
    }


@app.get("/inspect/{rest:path}")
async def inspect_path(request: Request, rest: str) -> dict[str, Any]:
    return {"path": request.path, "raw_path": request.raw_path.decode(), "rest": rest}


@app.post("/json")
async def echo_json(request: Request) -> dict[str, Any]:
    return {"received": await request.json()}


@app.post("/form")
async def echo_form(request: Request) -> dict[str, Any]:
    form = await request.form()
    return {"fields": form.multi_items()}


@app.post("/body")
async def echo_body(request: Request) -> Response:
    body = await request.body()
    again = b"".join([chunk async for chunk in request.stream()])
    return JSONResponse({"length": len(body), "same": body == again, "text": body.decode()})


@app.post("/stream-in")
async def stream_in(request: Request) -> dict[str, Any]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
    return {"total": total}


# -- responses -------------------------------------------------------------------------------


@app.get("/cookies/set")
async def set_cookies() -> Response:
    response = PlainTextResponse("cookies set")
    response.set_cookie("session", "abc123", httponly=True, max_age=3600)
    response.set_cookie("theme", "dark", samesite="strict", secure=True)
    return response


@app.get("/cookies/delete")
async def delete_cookie() -> Response:
    response = PlainTextResponse("deleted")
    response.delete_cookie("session")
    return response


@app.get("/cookies/echo")
async def echo_cookies(request: Request) -> dict[str, str]:
    return request.cookies


@app.get("/stream/async")
async def stream_async(request: Request) -> StreamingResponse:
    count = int(request.query_params.get("n", "3"))

    async def parts() -> AsyncIterator[str]:
        for i in range(count):
            yield f"async {i}\n"

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/stream/sync")
async def stream_sync() -> StreamingResponse:
    def parts() -> Iterator[bytes]:
        for i in range(3):
            yield f"sync {i} {threading.current_thread() is threading.main_thread()}\n".encode()

    return StreamingResponse(parts(), media_type="text/plain")


@app.get("/stream/forever")
async def stream_forever() -> StreamingResponse:
    async def ticks() -> AsyncIterator[bytes]:
        record("streaming")
        try:
            while True:
                yield b"tick\n"
                await asyncio.sleep(0.01)
        finally:
            record("generator-closed")

    return StreamingResponse(ticks(), media_type="text/plain")


@app.get("/redirect")
async def redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(request.query_params.get("to", "/"))


@app.get("/html")
async def html() -> Response:
    from covetd import HTMLResponse

    return HTMLResponse("<p>héllo</p>")


@app.get("/bytes")
async def raw_bytes() -> bytes:
    return b"\x00\x01\x02"


@app.get("/nothing")
async def nothing() -> None:
    return None


@app.get("/bad-header")
async def bad_header(request: Request) -> Response:
    return PlainTextResponse("x", headers={"X-Evil": request.query_params["v"]})


@app.get("/bad-header-name")
async def bad_header_name(request: Request) -> Response:
    return PlainTextResponse("x", headers={request.query_params["n"]: "v"})


# -- errors and threads ----------------------------------------------------------------------


@app.get("/teapot")
async def teapot() -> None:
    raise HTTPException(418, "short and stout", headers={"X-Tea": "earl grey"})


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internal detail")


@app.get("/thread")
def in_thread() -> dict[str, Any]:
    return {"main": threading.current_thread() is threading.main_thread()}


@app.get("/async-thread")
async def async_thread() -> dict[str, Any]:
    return {"main": threading.current_thread() is threading.main_thread()}


class Unavailable(Exception):
    pass


@app.exception_handler(Unavailable)
async def unavailable(request: Request, exc: Unavailable) -> Response:
    return JSONResponse({"unavailable": str(exc)}, 503, {"Retry-After": "5"})


@app.get("/unavailable")
async def raise_unavailable() -> None:
    raise Unavailable("maintenance")


# -- groups ----------------------------------------------------------------------------------

api = Router(prefix="/api")


@api.get("/ping")
async def ping() -> dict[str, str]:
    return {"pong": "yes"}


@api.get("/users/{id:int}")
async def api_user(request: Request, id: int) -> dict[str, Any]:
    return {"id": id, "url": request.app.url_path_for("api_user", id=id)}


app.include_router(api, prefix="/v1")
