"""Exceptions a handler raises (``HTTPException``) or meets (``ClientDisconnect``)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

__all__ = ["ClientDisconnect", "HTTPException"]


class HTTPException(Exception):
    """Stop handling and answer ``status_code``; ``detail`` becomes the JSON body.

    Register a handler with ``app.exception_handler(HTTPException)`` (or a status
    code) to render these differently.
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:
                detail = "Error"
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status_code={self.status_code!r}, detail={self.detail!r})"


class ClientDisconnect(Exception):
    """The client went away before the request body was complete."""
