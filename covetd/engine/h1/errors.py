"""Errors of the HTTP/1.1 layer, each carrying its answer on the wire.

One place (the connection) turns a ``ProtocolError`` into a response and closes the
connection: after a framing error nothing else on that connection can be trusted.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer broke HTTP/1.1; answer ``status`` and close the connection."""

    status: int = 400
    method: str | None = None  # when the head got that far (for metrics)

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status


class BadRequest(ProtocolError):
    status = 400


class RequestTimeout(ProtocolError):
    status = 408


class BodyTooLarge(ProtocolError):
    status = 413


class RequestLineTooLong(ProtocolError):
    status = 414


class ExpectationFailed(ProtocolError):
    status = 417


class HeadersTooLarge(ProtocolError):
    status = 431


class VersionNotSupported(ProtocolError):
    status = 505
