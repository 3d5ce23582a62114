"""Sans-IO HTTP/1.1 request parsing on top of ``httptools.HttpRequestParser`` (llhttp).

llhttp does the byte-level grammar of RFC 9112 in strict mode (no obs-fold, no bare LF,
no duplicate or non-numeric Content-Length, no Content-Length next to
Transfer-Encoding, valid chunk sizes). This module adds what llhttp leaves to the
server and turns every failure into a ``ProtocolError`` that carries its status:

- ``Host``: exactly one in HTTP/1.1, at most one in HTTP/1.0 (RFC 9112 §3.2);
- ``Transfer-Encoding``: only a lone ``chunked``, never in HTTP/1.0 (RFC 9112 §6.1);
- versions: 1.0 and 1.1 only (0.9 → 400, others → 505);
- request targets: origin-form, absolute-form, and ``*`` for OPTIONS (RFC 9112 §3.2);
- limits: request line → 414, header block or count → 431, body → 413, the latter as
  soon as it is known (Content-Length at the end of the head, or when a chunked body
  crosses it);
- ``Expect``: ``100-continue`` is noted, anything else → 417 (RFC 9110 §10.1.1).

Invariants: a head reaches the listener only after it passed every rule above; after
a ``ProtocolError`` the parser must not be fed again (the caller answers and closes);
an incomplete head never makes the parser hold more than about
``max_request_line + max_header_size`` bytes plus one read.
"""

from __future__ import annotations

import re
from typing import Any, Final, Protocol

import httptools

from ...app.head import RequestHead
from .errors import (
    BadRequest,
    BodyTooLarge,
    ExpectationFailed,
    HeadersTooLarge,
    ProtocolError,
    RequestLineTooLong,
    VersionNotSupported,
)
from .limits import Limits

__all__ = ["ParserListener", "RequestHead", "RequestParser"]

# Interned method names: no decode per request for the common ones.
_METHODS: Final = {
    m.encode(): m
    for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
}
# RFC 9110 §7.2 / RFC 3986 §3.2.2: uri-host [ ":" port ] (empty allowed, §7.2).
_HOST: Final = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?")
# Headers that change how a request is framed or answered; any other header is just
# stored. (Host is counted separately: every HTTP/1.1 request has one.)
_FRAMING: Final = frozenset(
    {b"content-length", b"transfer-encoding", b"expect", b"connection", b"upgrade"}
)


class ParserListener(Protocol):
    """Receives a connection's requests in order; each body belongs to the last head."""

    def on_request(self, head: RequestHead) -> None: ...

    def on_request_body(self, data: bytes) -> None: ...

    def on_request_complete(self) -> None: ...


class RequestParser:
    """Feed bytes of one connection; the listener hears validated requests.

    ``feed`` raises ``ProtocolError`` on anything that breaks HTTP/1.1 or a limit.
    It returns ``None``, or, when the listener set ``switching`` on an upgrade
    request's head, the bytes that followed that head (for the new protocol). An
    upgrade that is not taken is an ordinary request: its body is framed by its
    Content-Length like any other (llhttp stops at such a head; this class goes on).
    """

    #: True between the first byte of a request's target and the end of its head.
    in_head: bool

    __slots__ = (
        "_began",
        "_body_size",
        "_completed",
        "_framing",
        "_head_class",
        "_head_raw",
        "_header_bytes",
        "_headers",
        "_host",
        "_hosts",
        "_limits",
        "_listener",
        "_max_body",
        "_max_header_size",
        "_max_headers",
        "_max_line",
        "_parser",
        "_raw_body_left",
        "_upgrade_head",
        "_url",
        "_with_body",
        "in_head",
    )

    def __init__(
        self, listener: ParserListener, limits: Limits, head_class: type[RequestHead] = RequestHead
    ) -> None:
        self._listener = listener
        self._head_class = head_class
        self._limits = limits
        self._max_line = limits.max_request_line
        self._max_header_size = limits.max_header_size
        self._max_headers = limits.max_headers
        self._max_body = limits.max_body_size
        self._parser = httptools.HttpRequestParser(self)
        self.in_head = False
        self._began = False
        self._completed = 0
        self._head_raw = 0
        self._body_size = 0
        self._with_body = False
        self._raw_body_left = 0
        self._upgrade_head: RequestHead | None = None
        self._reset()

    # -- feeding ---------------------------------------------------------------

    def feed(self, data: bytes) -> bytes | None:
        if self._raw_body_left:
            data = self._take_raw_body(data)
            if not data:
                return None
        was_in_head = self.in_head
        self._began = False
        self._completed = 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            return self._after_upgrade(data[exc.args[0] :])
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, ProtocolError):
                raise exc.__context__ from None
            raise
        except httptools.HttpParserInvalidMethodError as exc:
            raise ProtocolError(f"invalid method: {exc}", 501) from None
        except httptools.HttpParserError as exc:
            raise _translate(exc) from None
        if self.in_head:
            self._check_partial_head(data, was_in_head)
        return None

    def _check_partial_head(self, data: bytes, was_in_head: bool) -> None:
        # httptools buffers a header line internally until it is complete; bound that
        # by the raw bytes fed into an unfinished head (slowloris, giant lines). When
        # the head began in this read and nothing else ended in it, all of the read
        # is head; otherwise the earlier requests' share is unknown and not counted.
        if was_in_head and not self._began:
            self._head_raw += len(data)
        else:
            self._head_raw = len(data) if not self._completed else 0
        if self._head_raw > self._max_line + self._max_header_size:
            raise HeadersTooLarge("request header block too large")

    def _after_upgrade(self, tail: bytes) -> bytes | None:
        head = self._upgrade_head
        self._upgrade_head = None
        if head is None or head.switching:
            return tail
        # Not switching: an ordinary request whose body llhttp did not read.
        if head.chunked:
            raise BadRequest("a chunked body on an Upgrade request is not supported")
        self._raw_body_left = head.content_length or 0
        if self._raw_body_left:
            tail = self._take_raw_body(tail)
        return self.feed(tail) if tail else None

    def _take_raw_body(self, data: bytes) -> bytes:
        size = self._raw_body_left
        body, rest = data[:size], data[size:]
        self._raw_body_left -= len(body)
        if body:
            self.on_body(body)
        if not self._raw_body_left:
            self._with_body = False
            self._listener.on_request_complete()
        return rest

    # -- httptools callbacks ---------------------------------------------------

    # (No on_message_begin: every call costs. A head starts with its first URL byte,
    # which llhttp reports through on_url as soon as it sees it.)

    def _reset(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._hosts = 0
        self._host = b""
        self._framing: dict[bytes, bytes] | None = None

    def on_url(self, url: bytes) -> None:
        if self._url:
            url = self._url + url
        else:
            self.in_head = self._began = True
            self._head_raw = 0
        if len(url) > self._max_line:
            raise RequestLineTooLong("request line too long")
        self._url = url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_head:
            return  # a trailer field of a chunked body: never merged into the head
        size = self._header_bytes + len(name) + len(value) + 4
        headers = self._headers
        if size > self._max_header_size or len(headers) >= self._max_headers:
            raise HeadersTooLarge(
                "too many request headers"
                if len(headers) >= self._max_headers
                else "request header block too large"
            )
        self._header_bytes = size
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp drops leading whitespace, not trailing
        if name == b"host":
            self._hosts += 1
            self._host = value
        elif name in _FRAMING:
            framing = self._framing
            if framing is None:
                self._framing = {name: value}
            elif name in framing:
                framing[name] += b"," + value  # repeated fields combine (RFC 9110 §5.3)
            else:
                framing[name] = value
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.in_head = False
        head = self._build_head()
        self._reset()
        self._listener.on_request(head)

    def on_body(self, data: bytes) -> None:
        self._body_size += len(data)
        if self._body_size > self._max_body:
            raise BodyTooLarge("request body too large")
        self._listener.on_request_body(data)

    def on_message_complete(self) -> None:
        self._completed += 1
        # A request without a body has nothing to complete; nor does an upgrade
        # request whose body llhttp leaves to us (see _after_upgrade).
        if self._with_body and self._upgrade_head is None:
            self._with_body = False
            self._listener.on_request_complete()

    # -- validation ------------------------------------------------------------

    def _build_head(self) -> RequestHead:
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        framing = self._framing
        if keep_alive and framing is None:
            # llhttp accepts HTTP/0.9, 1.0, 1.1 and 2.0 heads; without a Connection
            # header only 1.1 keeps the connection alive. get_http_version formats a
            # string each call, so the common case skips it.
            version = "1.1"
        else:
            version = parser.get_http_version()
            if version != "1.1" and version != "1.0":
                if version == "0.9":
                    raise BadRequest("HTTP/0.9 is not supported")
                raise VersionNotSupported(f"HTTP/{version} is not supported")
        if self._hosts != 1 and (self._hosts or version == "1.1"):
            raise BadRequest("more than one Host" if self._hosts else "missing Host header")
        if self._hosts and self._host not in _valid_hosts:
            _check_host(self._host)
        raw_method = parser.get_method()
        url = self._url
        if len(raw_method) + len(url) + 10 > self._max_line:  # METHOD SP target SP HTTP/x.y
            raise RequestLineTooLong("request line too long")
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        headers = self._headers
        if url[:1] == b"/":
            raw_path, _, query = url.partition(b"?")
        else:
            raw_path, query, authority = _split_other_target(url, method)
            if authority is not None:  # RFC 9112 §3.2.2: the target's authority wins
                headers = [h for h in headers if h[0] != b"host"] + [(b"host", authority)]
        head = self._head_class(method, raw_path, query, version, headers, keep_alive)
        if framing is not None:
            try:
                self._apply_framing(head, framing)
            except ProtocolError as exc:
                exc.method = method
                raise
        return head

    def _apply_framing(self, head: RequestHead, framing: dict[bytes, bytes]) -> None:
        version = head.http_version
        transfer_encoding = framing.get(b"transfer-encoding")
        content_length = framing.get(b"content-length")
        if transfer_encoding is not None:
            head.chunked = head.has_body = _check_transfer_encoding(transfer_encoding, version)
            self._body_size = 0
            self._with_body = True
        elif content_length is not None:
            length = int(content_length)  # llhttp already checked the digits
            if length > self._max_body:
                raise BodyTooLarge("request body too large")
            head.content_length = length
            head.has_body = self._with_body = length > 0
            self._body_size = 0
        expect = framing.get(b"expect")
        if expect is not None and version == "1.1":
            head.expect_continue = _check_expect(expect)
        upgrade = framing.get(b"upgrade")
        connection = framing.get(b"connection")
        if upgrade is not None and connection is not None and b"upgrade" in connection.lower():
            if self._parser.should_upgrade():
                self._upgrade_head = head  # llhttp stops after this head; see feed
            if version == "1.1":  # RFC 9110 §7.8: Upgrade in HTTP/1.0 is ignored
                head.upgrade = upgrade.strip().lower()


_valid_hosts: Final[set[bytes]] = set()  # Host values seen valid (a server sees a few, repeatedly)
_MAX_VALID_HOSTS: Final = 1024


def _check_host(value: bytes) -> None:
    if not _HOST.fullmatch(value):
        raise BadRequest("invalid Host header")
    if len(_valid_hosts) < _MAX_VALID_HOSTS:
        _valid_hosts.add(value)


def _split_other_target(target: bytes, method: str) -> tuple[bytes, bytes, bytes | None]:
    """Absolute-form or asterisk-form → (path, query, authority); origin-form is
    handled inline by the caller."""
    if target == b"*" and method == "OPTIONS":
        return b"*", b"", None
    lowered = target[:8].lower()
    if lowered.startswith((b"http://", b"https://")):
        try:
            # Any: httptools' stubs say bytes/int, but absent parts are None (and mypyc
            # would check the stub types).
            url: Any = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            raise BadRequest("invalid request target") from None
        if not url.host or url.userinfo:
            raise BadRequest("invalid request target authority")
        host = b"[" + url.host + b"]" if b":" in url.host else url.host  # IPv6 literal
        authority = host if url.port is None else b"%s:%d" % (host, url.port)
        if not _HOST.fullmatch(authority):
            raise BadRequest("invalid request target authority")
        return url.path or b"/", url.query or b"", authority
    raise BadRequest("unsupported request target form")


def _check_transfer_encoding(value: bytes, version: str) -> bool:
    if version == "1.0":
        raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
    if value.strip().lower() != b"chunked":
        raise BadRequest("unsupported Transfer-Encoding (only a lone 'chunked' is accepted)")
    return True


def _check_expect(value: bytes) -> bool:
    if value.strip().lower() != b"100-continue":
        raise ExpectationFailed("unsupported expectation")
    return True


def _translate(exc: Exception) -> ProtocolError:
    message = str(exc)
    if "HTTP version" in message:
        return VersionNotSupported(message)
    return BadRequest(message or "malformed request")
