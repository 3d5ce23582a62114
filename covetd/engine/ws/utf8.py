"""Incremental UTF-8 decoding that fails at the first byte no text can continue.

RFC 6455 §8.1: a text message that is not UTF-8 fails the connection with 1007, and
an endpoint may do so as soon as the bytes received so far cannot start valid UTF-8
(Autobahn's 6.4.* grade "fail fast" as OK and "fail at the end" as NON-STRICT).

CPython's incremental decoder already raises at the first invalid byte, with one
exception: it holds ``ED A0..BF`` (the start of an encoded surrogate, never valid
UTF-8) waiting for a third byte before it raises. ``Utf8Decoder`` checks that prefix.
"""

from __future__ import annotations

import codecs

from .errors import InvalidPayload

__all__ = ["Utf8Decoder"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")


class Utf8Decoder:
    """Decode one text message's bytes as they arrive; raise ``InvalidPayload`` early."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = _IncrementalDecoder("strict")

    def decode(self, data: bytes, final: bool = False) -> str:
        """The text ``data`` completes; with ``final``, a trailing partial character fails."""
        try:
            text: str = self._decoder.decode(data, final)
        except UnicodeDecodeError:
            raise InvalidPayload("invalid UTF-8 in a text message") from None
        if not final:
            pending = self._decoder.getstate()[0]
            if len(pending) > 1 and pending[0] == 0xED and pending[1] >= 0xA0:
                raise InvalidPayload("invalid UTF-8 in a text message (surrogate)")
        return text
