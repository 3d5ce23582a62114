"""The list syntax of the handshake's header fields (RFC 9110 §5.6, RFC 6455 §9.1).

    #element       = [ element ] *( OWS "," OWS [ element ] )   ; empty elements ignored
    token          = 1*tchar
    tchar          = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
                     "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
    quoted-string  = DQUOTE *( qdtext / quoted-pair ) DQUOTE
    qdtext         = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
    quoted-pair    = "\\" ( HTAB / SP / VCHAR / obs-text )

    Sec-WebSocket-Extensions = 1#extension
    extension       = extension-token *( ";" extension-param )
    extension-param = token [ "=" ( token / quoted-string ) ]
        ; When using the quoted-string syntax variant, the value after quoted-string
        ; unescaping MUST conform to the 'token' ABNF.

(RFC 6455 writes no whitespace around ";" and "="; RFC 7230's BWS is accepted there,
as every client library does.) Names are case-insensitive and returned lowercased;
values are returned as sent. Every parser raises ``ValueError`` on a syntax error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["ExtensionOffer", "is_token", "parse_extensions", "parse_token_list"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*)"')
_QUOTED_PAIR = re.compile(r"\\(.)")

ExtensionParams = tuple[tuple[str, str | None], ...]


class ExtensionOffer(NamedTuple):
    """One element of ``Sec-WebSocket-Extensions``: a name and its ``(name, value)``
    parameters in order; ``value`` is ``None`` for a parameter without one."""

    name: str
    params: ExtensionParams


def is_token(value: str) -> bool:
    return _TOKEN.fullmatch(value) is not None


def parse_token_list(values: Iterable[bytes]) -> list[str]:
    """``1#token`` over every line of a field (RFC 9110 §5.3 combines them), in order."""
    tokens: list[str] = []
    for value in values:
        for element in value.decode("latin-1").split(","):
            element = element.strip(" \t")
            if not element:
                continue
            if not _TOKEN.fullmatch(element):
                raise ValueError(f"not a token: {element!r}")
            tokens.append(element)
    return tokens


def parse_extensions(values: Iterable[bytes]) -> list[ExtensionOffer]:
    """Every ``Sec-WebSocket-Extensions`` element, in the order offered."""
    offers: list[ExtensionOffer] = []
    for value in values:
        _parse_extension_line(value.decode("latin-1"), offers)
    return offers


def _parse_extension_line(text: str, offers: list[ExtensionOffer]) -> None:
    pos = _skip(text, 0)
    while pos < len(text):
        if text[pos] == ",":  # an empty list element
            pos = _skip(text, pos + 1)
            continue
        name, pos = _token(text, pos)
        params: list[tuple[str, str | None]] = []
        pos = _skip(text, pos)
        while pos < len(text) and text[pos] == ";":
            param, pos = _param(text, _skip(text, pos + 1))
            params.append(param)
            pos = _skip(text, pos)
        offers.append(ExtensionOffer(name.lower(), tuple(params)))
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError(f"expected ',' at {pos} in {text!r}")
            pos = _skip(text, pos + 1)


def _param(text: str, pos: int) -> tuple[tuple[str, str | None], int]:
    name, pos = _token(text, pos)
    after = _skip(text, pos)
    if after >= len(text) or text[after] != "=":
        return (name.lower(), None), pos
    pos = _skip(text, after + 1)
    quoted = _QUOTED.match(text, pos)
    if quoted is None:
        value, pos = _token(text, pos)
        return (name.lower(), value), pos
    value = _QUOTED_PAIR.sub(r"\1", quoted.group(1))
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"quoted parameter value is not a token: {value!r}")
    return (name.lower(), value), quoted.end()


def _token(text: str, pos: int) -> tuple[str, int]:
    match = _TOKEN.match(text, pos)
    if match is None:
        raise ValueError(f"expected a token at {pos} in {text!r}")
    return match.group(), match.end()


def _skip(text: str, pos: int) -> int:
    """The position after the optional whitespace (OWS) at ``pos``."""
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos
