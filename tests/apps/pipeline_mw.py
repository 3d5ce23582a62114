"""Middleware used by the pipeline tests: they mark requests and responses."""

from dataclasses import dataclass

from covetd import Request, Response
from covetd.config.fields import setting
from covetd.config.types import Text
from covetd.middleware import Middleware


class Tag(Middleware):
    """Appends its tag to ``x-chain`` on the way out: the header lists the chain's
    order from the innermost outwards."""

    @dataclass(frozen=True)
    class Options:
        tag: str = setting(Text(), "tag", "The tag to append.")

    async def __call__(self, request: Request) -> Response:
        response = await self.app(request)
        seen = response.headers.get("x-chain")
        response.headers["x-chain"] = f"{seen},{self.options.tag}" if seen else self.options.tag
        return response
