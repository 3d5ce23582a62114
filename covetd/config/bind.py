"""Listening addresses: ``host:port``, ``[v6]:port``, ``unix:/abs/path``, ``fd://N``.

A ``BindAddress`` is parsed once here and handed to the master as a value; its
``str()`` is the canonical spelling, which parses back to an equal address (so
``--print-config`` output loads back unchanged).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

from covetd.config.errors import InvalidValue, show

BindKind = Literal["tcp", "unix", "fd"]

BIND_FORMS = '"host:port", "[v6]:port", "unix:/abs/path" or "fd://N"'
UNIX_PREFIX = "unix:"
FD_PREFIX = "fd://"
MAX_PORT = 65535
# sun_path is 108 bytes on Linux, and the kernel wants room for the terminating NUL.
MAX_UNIX_PATH_BYTES = 107

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


@dataclass(frozen=True, slots=True)
class BindAddress:
    """One listening address; only the fields of its ``kind`` are set."""

    kind: BindKind
    host: str | None = None
    port: int | None = None
    path: str | None = None
    fd: int | None = None

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"{UNIX_PREFIX}{self.path}"
        if self.kind == "fd":
            return f"{FD_PREFIX}{self.fd}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_bind(text: str, *, tcp_only: bool = False) -> BindAddress:
    """Parse one address; raises ``InvalidValue`` naming what is wrong with it."""
    text = text.strip()
    if tcp_only and text.startswith((UNIX_PREFIX, FD_PREFIX)):
        raise InvalidValue(f'expected "host:port" (TCP only here), got {show(text)}')
    if text.startswith(UNIX_PREFIX):
        return _parse_unix(text)
    if text.startswith(FD_PREFIX):
        return _parse_fd(text)
    return _parse_tcp(text, '"host:port"' if tcp_only else BIND_FORMS)


def _parse_unix(text: str) -> BindAddress:
    path = text.removeprefix(UNIX_PREFIX)
    if not path.startswith("/"):
        raise InvalidValue(f"unix socket path must be absolute, got {show(text)}")
    size = len(path.encode())
    if size > MAX_UNIX_PATH_BYTES:
        raise InvalidValue(
            f"unix socket path is {size} bytes long, the limit is {MAX_UNIX_PATH_BYTES}"
        )
    return BindAddress("unix", path=path)


def _parse_fd(text: str) -> BindAddress:
    number = text.removeprefix(FD_PREFIX)
    if not number.isdigit():
        raise InvalidValue(f'expected a descriptor number as in "fd://3", got {show(text)}')
    return BindAddress("fd", fd=int(number))


def _parse_tcp(text: str, forms: str) -> BindAddress:
    host_part, colon, port_part = text.rpartition(":")
    if not colon or not host_part:
        raise InvalidValue(f"expected {forms}, got {show(text)}")
    port = _parse_port(port_part, text)
    if host_part.startswith("[") and host_part.endswith("]"):
        return BindAddress("tcp", host=_parse_ipv6(host_part[1:-1], text), port=port)
    if ":" in host_part:
        raise InvalidValue(f'an IPv6 address needs brackets, as in "[::1]:8000": {show(text)}')
    return BindAddress("tcp", host=_parse_host(host_part, text), port=port)


def _parse_port(port_text: str, text: str) -> int:
    if not port_text.isdigit():
        raise InvalidValue(f"expected a port number after the last ':', got {show(text)}")
    port = int(port_text)
    if port > MAX_PORT:
        raise InvalidValue(f"port {port} is out of range (0-{MAX_PORT}) in {show(text)}")
    return port


def _parse_ipv6(host: str, text: str) -> str:
    try:
        return str(ipaddress.IPv6Address(host))
    except ValueError:
        raise InvalidValue(f"{show(host)} is not an IPv6 address in {show(text)}") from None


def _parse_host(host: str, text: str) -> str:
    if host.replace(".", "").isdigit():
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            message = f"{show(host)} is not an IPv4 address in {show(text)}"
            raise InvalidValue(message) from None
    if not all(_HOST_LABEL.fullmatch(label) for label in host.split(".")):
        raise InvalidValue(f"{show(host)} is not a host name or IP address in {show(text)}")
    return host
