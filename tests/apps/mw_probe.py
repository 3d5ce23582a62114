"""A middleware for the middleware tests: stamps ``x-worker-pid`` on every response,
including those other middleware answer by themselves (429, 403...)."""

import os

from covetd import Request, Response
from covetd.middleware import Middleware


class WorkerPid(Middleware):
    async def __call__(self, request: Request) -> Response:
        response = await self.app(request)
        response.headers["x-worker-pid"] = str(os.getpid())
        return response
