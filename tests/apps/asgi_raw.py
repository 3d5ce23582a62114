"""Raw ASGI 3 applications (no framework) for tests/integration/test_asgi.py.

``app`` supports lifespan and routes on the path; ``failing_lifespan_app`` answers
``lifespan.startup.failed``; ``no_lifespan_app`` refuses any scope but ``http``, as many
small apps do.
"""

import asyncio
import json
from typing import Any

from eventlog import record

Scope = dict[str, Any]


async def text(send: Any, body: bytes, status: int = 200, headers: Any = ()) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Any) -> tuple[bytes, list[dict[str, Any]]]:
    body = b""
    messages = []
    while True:
        message = await receive()
        messages.append({k: v for k, v in message.items() if k != "body"})
        if message["type"] != "http.request":
            return body, messages
        body += message.get("body", b"")
        if message.get("body"):
            record(f"piece:{message['body'].decode()}")
        if not message.get("more_body", False):
            return body, messages


async def lifespan(scope: Scope, receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            scope["state"]["greeting"] = "hello from lifespan"
            record("startup")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            record("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    assert scope["type"] == "http"
    handler = ROUTES.get(scope["path"])
    if handler is None:
        await text(send, b"not found", 404)
        return
    await handler(scope, receive, send)


async def index(scope: Scope, receive: Any, send: Any) -> None:
    await text(send, b"raw asgi says hi", headers=[(b"x-method", scope["method"].encode())])


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    body, messages = await read_body(receive)
    payload = {"body": body.decode(), "messages": messages}
    await text(send, json.dumps(payload).encode())


async def scope_info(scope: Scope, receive: Any, send: Any) -> None:
    info = {
        "asgi": scope["asgi"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "root_path": scope["root_path"],
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "client": list(scope["client"]),
        "server": list(scope["server"]),
        "state": scope["state"],
    }
    await text(send, json.dumps(info).encode())


async def stream(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for i in range(3):
        await send(
            {"type": "http.response.body", "body": f"part {i}\n".encode(), "more_body": True}
        )
    await send({"type": "http.response.body", "body": b""})


async def stream_with_length(scope: Scope, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]}
    )
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await send({"type": "http.response.body", "body": b"def"})


async def one_body(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": [(b"x-one", b"1")]})
    await send({"type": "http.response.body", "body": b"exactly one message"})


async def no_content(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def wait_disconnect(scope: Scope, receive: Any, send: Any) -> None:
    """Start a response, then wait: ``http.disconnect`` must come once the client left."""
    await read_body(receive)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"waiting\n", "more_body": True})
    record("waiting")
    message = await receive()
    record(f"received:{message['type']}")


async def stream_forever(scope: Scope, receive: Any, send: Any) -> None:
    """Stream until ``send`` fails: ASGI 2.4 servers raise OSError once the client left."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    record("streaming")
    sent = 0
    try:
        while True:
            await send({"type": "http.response.body", "body": b"tick\n", "more_body": True})
            sent += 1
            await asyncio.sleep(0.01)
    except BaseException as exc:
        record(f"send-failed:{type(exc).__name__}:{isinstance(exc, OSError)}")
        raise


async def bad_header_value(scope: Scope, receive: Any, send: Any) -> None:
    await text(send, b"should not be sent", headers=[(b"x-evil", b"a\r\nInjected: yes")])


async def bad_header_name(scope: Scope, receive: Any, send: Any) -> None:
    await text(send, b"should not be sent", headers=[(b"x-evil\r\ninjected", b"yes")])


async def bad_header_lf(scope: Scope, receive: Any, send: Any) -> None:
    await text(send, b"should not be sent", headers=[(b"x-evil", b"a\nInjected: yes")])


async def raises(scope: Scope, receive: Any, send: Any) -> None:
    raise RuntimeError("raw asgi secret")


async def raises_after_start(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise RuntimeError("failed mid-stream")


async def no_response(scope: Scope, receive: Any, send: Any) -> None:
    return


async def start_only(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})


async def head_aware(scope: Scope, receive: Any, send: Any) -> None:
    await text(send, b"body for GET and HEAD alike")


ROUTES = {
    "/": index,
    "/echo": echo,
    "/scope": scope_info,
    "/stream": stream,
    "/stream-with-length": stream_with_length,
    "/one-body": one_body,
    "/no-content": no_content,
    "/wait-disconnect": wait_disconnect,
    "/stream-forever": stream_forever,
    "/bad-header-value": bad_header_value,
    "/bad-header-name": bad_header_name,
    "/bad-header-lf": bad_header_lf,
    "/raise": raises,
    "/raise-after-start": raises_after_start,
    "/no-response": no_response,
    "/start-only": start_only,
    "/head": head_aware,
}


async def failing_lifespan_app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await send(
            {
                "type": "lifespan.startup.failed",
                "message": "raw-asgi startup failed: no credentials for the queue",
            }
        )
        return
    await text(send, b"never served")


async def no_lifespan_app(scope: Scope, receive: Any, send: Any) -> None:
    assert scope["type"] == "http", "only http"
    await text(send, b"served without lifespan")
