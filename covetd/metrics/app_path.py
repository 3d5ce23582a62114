"""``metrics.path``: the master's ``/metrics`` also on the app's port.

For platforms that scrape the app's own port. The totals live in the master (it folds
the counts of workers that exited), so a worker does not compute them: it relays the
request to the master's exporter on ``metrics.bind`` over loopback and answers with
what the master said. Only ``GET``/``HEAD`` of exactly that path are taken; every
other request goes to the app untouched.
"""

from __future__ import annotations

import asyncio
import logging

from ..app.requests import Request
from ..app.responses import PlainTextResponse, Response
from ..config import BindAddress
from ..middleware.base import Handler

__all__ = ["MetricsPath"]

error_log = logging.getLogger("covetd.error")

RELAY_TIMEOUT = 10.0
MAX_REPLY = 64 * 1024 * 1024
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class MetricsPath:
    """Wraps the app's handler; answers ``path`` from the master's exporter."""

    def __init__(self, app: Handler, path: str, bind: BindAddress) -> None:
        self.app = app
        self.path = path
        host = bind.host or ""
        self.host = _WILDCARDS.get(host, host)
        self.port = bind.port or 0

    async def __call__(self, request: Request) -> Response:
        if request.path != self.path or request.method not in ("GET", "HEAD"):
            return await self.app(request)
        accept = request.headers.get("accept", "")
        try:
            return await asyncio.wait_for(self._relay(accept), RELAY_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            error_log.warning("metrics.path: the master's exporter did not answer: %s", exc)
            return PlainTextResponse("metrics unavailable\n", 503)

    async def _relay(self, accept: str) -> Response:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            safe_accept = accept.replace("\r", "").replace("\n", "")
            writer.write(
                b"GET /metrics HTTP/1.1\r\nHost: covetd\r\nConnection: close\r\n"
                + f"Accept: {safe_accept}\r\n\r\n".encode("latin-1", "replace")
            )
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.read(MAX_REPLY)
        finally:
            writer.close()
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        content_type = "text/plain; charset=utf-8"
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.lower() == "content-type":
                content_type = value.strip()
        return Response(body, status, media_type=content_type)
