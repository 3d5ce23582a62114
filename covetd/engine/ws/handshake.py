"""The opening handshake, server side (RFC 6455 §4.2): check the request, build the 101.

``parse_upgrade_request`` takes what covetd's HTTP/1.1 parser produced (method,
version, raw headers with lowercased names) and either returns an ``UpgradeRequest``
or raises ``HandshakeError`` carrying the HTTP answer:

    GET, HTTP/1.1 ............................................. else 400
    Upgrade lists "websocket", Connection lists "upgrade"
      (both case-insensitive token lists, RFC 9110 §7.6.1, §7.8) ...... else 426
    Sec-WebSocket-Version: 13, exactly once ..................... else 426 (§4.4)
    Sec-WebSocket-Key: base64 of exactly 16 bytes, exactly once ... else 400
    Sec-WebSocket-Protocol: 1#token ............................... else 400
    Sec-WebSocket-Extensions: see headers.py ...................... else 400
    Origin: at most once .......................................... else 400

A 426 names what the server speaks (``Upgrade: websocket``,
``Sec-WebSocket-Version: 13``). ``Host`` is the HTTP/1.1 parser's business (it
refuses a request without exactly one).

``accept_response`` builds the ``101 Switching Protocols`` head. Invariant: every
byte of it is either fixed here or was checked here (tokens for names; no CR, LF or
NUL in values), so nothing an application passes can start a new header line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import HandshakeError, UpgradeRequired
from .headers import ExtensionOffer, is_token, parse_extensions, parse_token_list

__all__ = ["UpgradeRequest", "accept_key", "accept_response", "parse_upgrade_request"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
# Set by the handshake itself: an application may not add or override them.
_RESERVED = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-accept",
        b"sec-websocket-protocol",
        b"sec-websocket-extensions",
        b"content-length",
        b"transfer-encoding",
    }
)
_WANTED = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-protocol",
        b"sec-websocket-extensions",
        b"origin",
    }
)

HeaderValue = bytes | str


@dataclass(frozen=True, slots=True)
class UpgradeRequest:
    """A valid WebSocket upgrade request: what the application may look at to decide.

    ``subprotocols`` and ``extensions`` are in the client's order of preference;
    ``origin`` is the ``Origin`` header (browsers send it; other clients may not).
    """

    key: bytes
    subprotocols: tuple[str, ...] = ()
    extensions: tuple[ExtensionOffer, ...] = ()
    origin: str | None = None


def parse_upgrade_request(
    method: str, http_version: str, headers: Sequence[tuple[bytes, bytes]]
) -> UpgradeRequest:
    """Check an upgrade request's head; raise ``HandshakeError`` with the answer if bad."""
    if method != "GET":
        raise HandshakeError(f"a WebSocket handshake must be a GET, not {method}")
    if http_version != "1.1":
        raise HandshakeError(f"a WebSocket handshake needs HTTP/1.1, not HTTP/{http_version}")
    fields: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        if name in _WANTED:
            fields.setdefault(name, []).append(value)
    _check_upgrade(fields)
    _check_version(fields.get(b"sec-websocket-version", []))
    key = _check_key(fields.get(b"sec-websocket-key", []))
    try:
        offered = parse_token_list(fields.get(b"sec-websocket-protocol", []))
        subprotocols = tuple(dict.fromkeys(offered))  # in order, without repeats
        extensions = tuple(parse_extensions(fields.get(b"sec-websocket-extensions", [])))
    except ValueError as exc:
        raise HandshakeError(f"malformed WebSocket header: {exc}") from None
    origins = fields.get(b"origin", [])
    if len(origins) > 1:
        raise HandshakeError("more than one Origin header")
    origin = origins[0].decode("latin-1") if origins else None
    return UpgradeRequest(key, subprotocols, extensions, origin)


def _check_upgrade(fields: dict[bytes, list[bytes]]) -> None:
    if b"websocket" not in _elements(fields.get(b"upgrade", []), lower=True):
        raise UpgradeRequired("the request does not ask to upgrade to websocket")
    if b"upgrade" not in _elements(fields.get(b"connection", []), lower=True):
        raise UpgradeRequired("the request's Connection header does not list upgrade")


def _check_version(values: list[bytes]) -> None:
    versions = _elements(values)
    if b"13" not in versions:
        raise UpgradeRequired("unsupported or missing Sec-WebSocket-Version (13 is spoken)")
    if len(versions) != 1:
        raise HandshakeError("Sec-WebSocket-Version must appear exactly once")


def _elements(lines: list[bytes], lower: bool = False) -> list[bytes]:
    """The non-empty elements of a comma-separated field, over all its lines."""
    elements = [e.strip(b" \t") for line in lines for e in line.split(b",")]
    return [e.lower() if lower else e for e in elements if e]


def _check_key(values: list[bytes]) -> bytes:
    if len(values) != 1:
        raise HandshakeError(
            "missing Sec-WebSocket-Key" if not values else "more than one Sec-WebSocket-Key"
        )
    key = values[0].strip(b" \t")
    try:
        raw = base64.b64decode(key, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) != 16:
        raise HandshakeError("Sec-WebSocket-Key is not the base64 of 16 bytes")
    return key


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2 item 5.4)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def accept_response(
    request: UpgradeRequest,
    *,
    subprotocol: str | None = None,
    extensions: Sequence[bytes] = (),
    extra_headers: Sequence[tuple[HeaderValue, HeaderValue]] = (),
    preamble: bytes = b"",
) -> bytes:
    """The ``101 Switching Protocols`` head accepting ``request``, blank line included.

    ``subprotocol`` must be one the client offered (RFC 6455 §4.2.2 item 5.5);
    ``extensions`` are the negotiated ``Sec-WebSocket-Extensions`` values (e.g.
    ``PerMessageDeflate.response_header``); ``extra_headers`` come from the application
    (str values are Latin-1) and may not set the handshake's own fields; ``preamble``
    is the engine's ``server``/``date`` lines (``h1.writer.Preamble.value``).
    Raises ``ValueError`` for a subprotocol not offered or a header that is not safe.
    """
    parts = [_SWITCHING, preamble, b"sec-websocket-accept: ", accept_key(request.key), b"\r\n"]
    if subprotocol is not None:
        if subprotocol not in request.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        parts.append(b"sec-websocket-protocol: %s\r\n" % subprotocol.encode("ascii"))
    for extension in extensions:
        parts.append(b"sec-websocket-extensions: %s\r\n" % _safe_value(extension))
    for name, value in extra_headers:
        parts.append(b"%s: %s\r\n" % (_safe_name(name), _safe_value(value)))
    parts.append(b"\r\n")
    return b"".join(parts)


def _safe_name(name: HeaderValue) -> bytes:
    text = name if isinstance(name, str) else name.decode("latin-1")
    if not is_token(text):
        raise ValueError(f"invalid header name {text!r}")
    raw = text.lower().encode("ascii")
    if raw in _RESERVED:
        raise ValueError(f"header {text!r} is set by the WebSocket handshake itself")
    return raw


def _safe_value(value: HeaderValue) -> bytes:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    if b"\r" in raw or b"\n" in raw or b"\0" in raw:
        raise ValueError(f"header value contains CR, LF or NUL: {raw!r}")
    return raw
