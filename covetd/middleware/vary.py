"""``Vary``: name a request header a response depends on, once (``cors``: Origin,
``compression``: Accept-Encoding)."""

from __future__ import annotations

__all__ = ["add_vary"]


def add_vary(headers: list[tuple[bytes, bytes]], token: bytes) -> None:
    """Make ``Vary`` cover ``token``: added to the first ``Vary`` field unless one
    already names it (or ``*``), else a new field. ``headers`` is a response's raw
    list (its header views share it)."""
    wanted = token.lower()
    first = -1
    for index, (name, value) in enumerate(headers):
        if name == b"vary":
            tokens = {item.strip().lower() for item in value.split(b",")}
            if b"*" in tokens or wanted in tokens:
                return
            if first < 0:
                first = index
    if first < 0:
        headers.append((b"vary", token))
    else:
        value = headers[first][1]
        headers[first] = (b"vary", value + b", " + token if value.strip() else token)
