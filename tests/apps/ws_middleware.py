"""A custom middleware for tests/integration/websocket/test_ws_middleware.py: it sees
WebSocket upgrade requests like any other and refuses those without a ticket."""

from dataclasses import dataclass

from covetd import PlainTextResponse, Request, Response
from covetd.config.fields import setting
from covetd.config.types import Text
from covetd.middleware import Middleware


class TicketGate(Middleware):
    """Upgrades need ``?ticket=<ticket>``: 403 otherwise, before the app runs. Plain
    HTTP requests pass. Every upgrade it let through is counted in ``x-gate-seen``
    of ``GET /gate-count``."""

    seen = 0

    @dataclass(frozen=True)
    class Options:
        ticket: str = setting(Text(), "open-sesame", "The ticket an upgrade must carry.")

    async def __call__(self, request: Request) -> Response:
        if request.path == "/gate-count":
            return PlainTextResponse(str(TicketGate.seen))
        if request.headers.get("upgrade", "").lower() != "websocket":
            return await self.app(request)
        if request.query_params.get("ticket") != self.options.ticket:
            return PlainTextResponse("ticket required\n", 403, headers={"x-gate": "refused"})
        TicketGate.seen += 1
        return await self.app(request)
