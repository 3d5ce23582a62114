"""Drive the sans-IO HTTP/1.1 parser with canned bytes and record what it reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from covetd.engine.h1.limits import Limits
from covetd.engine.h1.parser import RequestHead, RequestParser


def fields(head: RequestHead) -> list[tuple[bytes, bytes]]:
    """The head's header fields, in order (lowercased names, values as parsed).

    Transitional: the committed ``RequestHead`` calls them ``headers``; the engine
    refactor in progress renames them ``raw_headers``. Tests read them only through
    here; drop the fallback once the rename has landed.
    """
    raw = getattr(head, "raw_headers", None)
    return raw if raw is not None else head.headers


@dataclass
class Parsed:
    """One request as the listener heard it."""

    head: RequestHead
    body: bytes = b""
    complete: bool = False

    def describe(self) -> dict[str, Any]:
        """The corpus's JSON view of this request."""
        head = self.head
        return {
            "method": head.method,
            "raw_path": head.raw_path.decode("latin-1"),
            "query_string": head.query_string.decode("latin-1"),
            "http_version": head.http_version,
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in fields(head)],
            "body": self.body.decode("latin-1"),
            "keep_alive": head.keep_alive,
            "chunked": head.chunked,
        }


@dataclass
class Recorder:
    """A ``ParserListener`` that keeps every request and the order of the callbacks.

    A request without a body is complete with its head: the parser may or may not
    call ``on_request_complete`` for it (the engine needs no such call), so that
    call is accepted and not recorded. A request with a body must be completed by it.
    """

    requests: list[Parsed] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    def on_request(self, head: RequestHead) -> None:
        assert not self.requests or self.requests[-1].complete, "head before the last ended"
        self.requests.append(Parsed(head, complete=not head.has_body))
        self.events.append("head")

    def on_request_body(self, data: bytes) -> None:
        assert self.requests and not self.requests[-1].complete, "body outside a request"
        assert data, "empty body event"
        self.requests[-1].body += data
        if self.events[-1] != "body":
            self.events.append("body")

    def on_request_complete(self) -> None:
        assert self.requests, "complete before any head"
        last = self.requests[-1]
        if not last.head.has_body and last.complete and self.events[-1] == "head":
            return  # the optional completion of a body-less request
        assert not last.complete, "complete twice"
        last.complete = True
        self.events.append("complete")

    @property
    def heads(self) -> list[RequestHead]:
        return [parsed.head for parsed in self.requests]


def feed(
    pieces: Iterable[bytes], limits: Limits | None = None, recorder: Recorder | None = None
) -> Recorder:
    """Feed ``pieces`` in order, as the connection does (bytes returned after an upgrade
    request's head are fed back); ``ProtocolError`` propagates."""
    recorder = recorder if recorder is not None else Recorder()
    parser = RequestParser(recorder, limits or Limits())
    for piece in pieces:
        tail = parser.feed(piece)
        while tail:
            tail = parser.feed(tail)
    return recorder


def whole(data: bytes, limits: Limits | None = None) -> Recorder:
    return feed([data], limits)


def bytewise(data: bytes, limits: Limits | None = None) -> Recorder:
    return feed([data[i : i + 1] for i in range(len(data))], limits)


def split_at(data: bytes, index: int, limits: Limits | None = None) -> Recorder:
    return feed([data[:index], data[index:]], limits)
