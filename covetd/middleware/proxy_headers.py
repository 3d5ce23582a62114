"""Proxy headers: the client address, scheme and Host as the edge proxy saw them.

Behind a reverse proxy the peer of every connection is the proxy; the client it serves
is told in ``Forwarded`` (RFC 7239) or ``X-Forwarded-For``/``-Proto``/``-Host``. Those
headers are believed only when the peer is ``trusted``, and then walked like nginx's
realip module with ``real_ip_recursive on``: from the right (the hop nearest to us),
skipping trusted proxies; the first untrusted address is the client. The scheme and
Host come from the same hop, so a client cannot forge them past the edge proxy.

Malformed headers are ignored whole: the request keeps its own peer, scheme and Host.
A hop that names no address (``unknown``, an obfuscated ``_node``) ends the walk without
changing the client. The middleware sets ``request.client`` (port 0 when the header has
none), ``request.scheme`` and the ``Host`` request header, which the rest of the chain
and the app (Covet or ASGI) then see.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ..app.datastructures import Address, Headers
from ..app.requests import Request
from ..app.responses import Response
from ..config.fields import setting
from ..config.types import Boolean, ListOf, Network
from .base import Handler, Middleware

__all__ = ["ProxyHeadersMiddleware"]

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network

_SCHEMES = frozenset({"http", "https"})
MAX_PEERS = 1024
# RFC 7239 §4: forwarded-pair = token "=" value; value = token / quoted-string.
# Unquoted values also take ":[]" (common, if not strictly allowed, for ports and IPv6).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_VALUE = r"[!#$%&'*+.^_`|~0-9A-Za-z:\[\]-]+"
_PAIR = re.compile(rf"""[ \t]*({_TOKEN})=("(?:[^"\\]|\\.)*"|{_VALUE})[ \t]*""")
_UNESCAPE = re.compile(r"\\(.)")
# RFC 7239 §6.3: obfnode = "_" 1*( ALPHA / DIGIT / "." / "_" / "-")
_OBFUSCATED = re.compile(r"_[A-Za-z0-9._-]+")
# nodename [":" node-port]; a bare IPv6 address does not match and is read whole.
_NODE = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:\[\]]+))(?::(?P<port>\d{1,5}|_[A-Za-z0-9._-]+))?"
)
# What a Host may be: reg-name or IP literal, and an optional port.
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::\d{1,5})?")


class _Malformed(ValueError):
    """A forwarding header that cannot be read: it is ignored whole."""


@dataclass(frozen=True, slots=True)
class Hop:
    """What one proxy said about the request it received."""

    node: Address | None  # the sender's address; None: unknown or obfuscated
    proto: str | None = None
    host: str | None = None


class TrustedPeers:
    """IP addresses and networks, or everything for ``"*"``."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.everyone = "*" in entries
        networks = [ipaddress.ip_network(entry) for entry in entries if entry != "*"]
        self.networks: tuple[Net, ...] = tuple(networks)
        self._peers: dict[str, bool] = {}  # socket peers seen: a few proxies, repeatedly

    def trusts_peer(self, host: str) -> bool:
        """``trusts`` for the socket's peer, remembered (bounded: at most ``MAX_PEERS``)."""
        trusted = self._peers.get(host)
        if trusted is None:
            trusted = self.trusts(Address(host, 0))
            if len(self._peers) < MAX_PEERS:
                self._peers[host] = trusted
        return trusted

    def __contains__(self, address: IP) -> bool:
        if self.everyone:
            return True
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def trusts(self, node: Address | None) -> bool:
        """Whether ``node`` (an address from the socket or a header) is a trusted proxy."""
        if node is None:
            return False
        try:
            return ipaddress.ip_address(node.host) in self
        except ValueError:
            return False


class ProxyHeadersMiddleware(Middleware):
    """Set the client address, scheme and Host from trusted forwarding headers."""

    name = "proxy_headers"

    @dataclass(frozen=True)
    class Options:
        trusted: tuple[str, ...] = setting(
            ListOf(Network(), 'a list of IP addresses, CIDR networks or "*"', single_ok=True),
            ["127.0.0.1", "::1"],
            'Peers (and proxies in the chain) whose forwarding headers are believed; "*": any.',
        )
        forwarded: bool = setting(
            Boolean(), True, "Read the RFC 7239 Forwarded header (it wins when both are sent)."
        )
        x_forwarded: bool = setting(
            Boolean(), True, "Read X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host."
        )
        trust_unix_socket: bool = setting(
            Boolean(), True, "Trust peers on a Unix socket (they have no address to check)."
        )

    options: Options

    def __init__(self, app: Handler, options: Options | None = None) -> None:
        super().__init__(app, options)
        self.trusted = TrustedPeers(self.options.trusted)
        # The headers this middleware reads with its options: a request with none of
        # them (nearly all, at an edge or behind a proxy that was told nothing) has no
        # hop to apply, which one pass over the raw names tells without parsing.
        watched = {b"forwarded"} if self.options.forwarded else set()
        if self.options.x_forwarded:
            watched |= {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"}
        self.watched = frozenset(watched)

    async def __call__(self, request: Request) -> Response:
        if self._peer_trusted(request.client):
            watched = self.watched
            for name, _ in request.raw_headers:
                if name in watched:
                    hop = self._client_hop(request)
                    if hop is not None:
                        apply_hop(request, hop)
                    break
        return await self.app(request)

    def _peer_trusted(self, peer: Address | None) -> bool:
        if peer is None:
            return self.options.trust_unix_socket or self.trusted.everyone
        return self.trusted.trusts_peer(peer.host)

    def _client_hop(self, request: Request) -> Hop | None:
        """The hop the client made, or None when no usable header was sent."""
        headers = request.headers
        if self.options.forwarded and "forwarded" in headers:
            try:
                return self.walk(parse_forwarded(", ".join(headers.getlist("forwarded"))))
            except _Malformed:
                return None
        if self.options.x_forwarded:
            try:
                return self.walk(parse_x_forwarded(headers))
            except _Malformed:
                return None
        return None

    def walk(self, hops: list[Hop]) -> Hop | None:
        """Right to left, past trusted proxies: the first untrusted hop (or the leftmost)."""
        for hop in reversed(hops):
            if not self.trusted.trusts(hop.node):
                return hop
        return hops[0] if hops else None


def apply_hop(request: Request, hop: Hop) -> None:
    if hop.node is not None:
        request.client = hop.node
    if hop.proto is not None:
        request.scheme = hop.proto
    if hop.host is not None:
        replace_host(request.raw_headers, hop.host.encode("ascii"))


def replace_host(raw_headers: list[tuple[bytes, bytes]], host: bytes) -> None:
    """Set the one ``host`` header in place (the request's header views share the list)."""
    raw_headers[:] = [(name, value) for name, value in raw_headers if name != b"host"]
    raw_headers.append((b"host", host))


# -- RFC 7239 Forwarded ------------------------------------------------------------------


def parse_forwarded(text: str) -> list[Hop]:
    """``for=a;proto=https, for="[2001:db8::1]:80"`` → hops, left to right."""
    elements: list[dict[str, str]] = [{}]
    position, end = 0, len(text)
    while position < end:
        position = _skip_blanks(text, position)
        if position < end and text[position] not in ",;":
            match = _PAIR.match(text, position)
            if match is None:
                raise _Malformed("not a forwarded-pair")
            name = match[1].lower()
            if name in elements[-1]:
                raise _Malformed(f"{name} twice in one element")  # RFC 7239 §4
            elements[-1][name] = _unquote(match[2])
            position = match.end()
        if position < end:
            separator = text[position]
            if separator == ",":
                elements.append({})
            elif separator != ";":
                raise _Malformed("expected ',' or ';'")
            position += 1
    return [_forwarded_hop(element) for element in elements if element]


def _skip_blanks(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t":
        position += 1
    return position


def _unquote(value: str) -> str:
    if value.startswith('"'):
        return _UNESCAPE.sub(r"\1", value[1:-1])
    return value


def _forwarded_hop(element: dict[str, str]) -> Hop:
    node = element.get("for")  # optional: a hop without one is from an unknown sender
    return Hop(
        None if node is None else parse_node(node),
        _scheme(element.get("proto")),
        _host(element.get("host")),
    )


# -- X-Forwarded-* -----------------------------------------------------------------------


def parse_x_forwarded(headers: Headers) -> list[Hop]:
    """``X-Forwarded-For`` entries as hops; ``-Proto``/``-Host`` lists are aligned to
    them from the right (a single value, the usual case, belongs to every hop)."""
    fors = _list(headers, "x-forwarded-for")
    protos = _list(headers, "x-forwarded-proto")
    hosts = _list(headers, "x-forwarded-host")
    if not fors:
        if not protos and not hosts:
            return []
        return [Hop(None, _scheme(_aligned(protos, 0, 1)), _host(_aligned(hosts, 0, 1)))]
    count = len(fors)
    return [
        Hop(
            parse_node(node),
            _scheme(_aligned(protos, index, count)),
            _host(_aligned(hosts, index, count)),
        )
        for index, node in enumerate(fors)
    ]


def _list(headers: Headers, name: str) -> list[str]:
    values = headers.getlist(name)
    if not values:
        return []
    items = [item.strip() for item in ",".join(values).split(",")]
    if not all(items):
        raise _Malformed(f"an empty item in {name}")
    return items


def _aligned(values: list[str], index: int, count: int) -> str | None:
    """The value for hop ``index`` of ``count``, counting both lists from the right."""
    if not values:
        return None
    return values[max(len(values) - (count - index), 0)]


# -- values ------------------------------------------------------------------------------


def parse_node(text: str) -> Address | None:
    """RFC 7239 §6 node: an address (``1.2.3.4``, ``1.2.3.4:80``, ``2001:db8::1``,
    ``[2001:db8::1]:80``), or None for ``unknown`` and obfuscated names (``_proxy1``);
    anything else is malformed."""
    host, port = text, ""
    if match := _NODE.fullmatch(text):
        host, port = match["v6"] or match["name"], match["port"] or ""
    if host.lower() == "unknown" or _OBFUSCATED.fullmatch(host):
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise _Malformed(f"not an address: {text!r}") from None
    number = int(port) if port.isdigit() else 0  # an obfuscated port tells nothing
    if number > 65535:
        raise _Malformed(f"bad port in {text!r}")
    return Address(str(address), number)


def _scheme(value: str | None) -> str | None:
    if value is None:
        return None
    scheme = value.strip().lower()
    return scheme if scheme in _SCHEMES else None


def _host(value: str | None) -> str | None:
    if value is None or not _HOST.fullmatch(value):
        return None
    return value.lower()
