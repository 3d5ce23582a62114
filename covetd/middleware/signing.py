"""HMAC-SHA256 signatures over short text, with key rotation and an optional timestamp.

``Signer(secret_keys, purpose)`` signs with the first key and accepts a signature made
with any of them, so rotating a key is: put the new key first, keep the old one until
every value it signed has expired, then drop it. Each key is first derived for its
``purpose`` (``HMAC(secret, "covetd.signing." + purpose)``), so a value signed for one
use (a session cookie) is never valid for another (a session id).

Signed text is ``value.signature`` or, timestamped, ``value.timestamp.signature``:
URL- and cookie-safe when ``value`` is (base64url, digits and ``.``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence

__all__ = ["BadSignature", "Expired", "Signer", "b64decode", "b64encode"]


class BadSignature(ValueError):
    """The text was not signed by any of our keys (tampered, forged or truncated)."""


class Expired(BadSignature):
    """The signature is good but older than the allowed age."""


def b64encode(data: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """Inverse of ``b64encode``; raises ``ValueError`` on anything else."""
    data = text.encode("ascii")
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class Signer:
    """Signs and verifies text for one ``purpose`` (see the module docstring)."""

    def __init__(self, secret_keys: Sequence[str], purpose: str) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        label = b"covetd.signing." + purpose.encode("ascii")
        self._keys = [
            hmac.new(secret.encode("utf-8"), label, hashlib.sha256).digest()
            for secret in secret_keys
        ]

    def signature(self, text: str, key_index: int = 0) -> str:
        return b64encode(hmac.new(self._keys[key_index], text.encode(), hashlib.sha256).digest())

    def sign(self, value: str) -> str:
        return f"{value}.{self.signature(value)}"

    def sign_timestamped(self, value: str, timestamp: int | None = None) -> str:
        stamped = f"{value}.{int(time.time()) if timestamp is None else timestamp}"
        return self.sign(stamped)

    def unsign(self, signed: str) -> str:
        """The value, if any of our keys signed it; else ``BadSignature``."""
        value, dot, signature = signed.rpartition(".")
        if not dot:
            raise BadSignature("no signature")
        given = signature.encode("ascii", "replace")
        for index in range(len(self._keys)):
            if hmac.compare_digest(self.signature(value, index).encode(), given):
                return value
        raise BadSignature("signature mismatch")

    def unsign_timestamped(self, signed: str, max_age: float | None) -> tuple[str, int]:
        """``(value, timestamp)``; ``Expired`` when older than ``max_age`` seconds."""
        value, dot, stamp = self.unsign(signed).rpartition(".")
        if not dot or not stamp.isdigit():
            raise BadSignature("no timestamp")
        timestamp = int(stamp)
        if max_age is not None and time.time() - timestamp > max_age:
            raise Expired(f"signed {time.time() - timestamp:.0f}s ago, max_age is {max_age:g}s")
        return value, timestamp
