"""Hide secrets when the effective config is printed (``covetd --print-config``).

The printout is meant to be pasted into tickets and CI logs, so anything that looks like
a credential is replaced by ``***``: the password of a URL or DSN, a ``password=``
parameter, and any middleware option whose name says it is a secret.
"""

from __future__ import annotations

import re

MASK = "***"

_SECRET_WORDS = frozenset({"secret", "secrets", "password", "passwd", "pwd", "token", "apikey"})
_KEY_QUALIFIERS = frozenset({"secret", "private", "api", "signing", "encryption"})
_PASSWORD_PARAM = re.compile(r"(?P<name>\bpassword=)[^&;\s]+", re.IGNORECASE)


def mask_all(_value: str) -> str:
    """The whole value is a secret (``tls.password``)."""
    return MASK


def mask_url(url: str) -> str:
    """``postgres://user:pw@host/db?password=x`` -> ``postgres://user:***@host/db?password=***``."""
    return _PASSWORD_PARAM.sub(rf"\g<name>{MASK}", _mask_userinfo(url))


def is_secret_option(name: str) -> bool:
    """True for option names such as ``secret_key``, ``password``, ``api_token``.

    The last word decides, so ``token_name`` or ``allow_credentials`` (not secrets)
    print as they are; ``key`` counts only after ``secret``, ``api``, ``private``...
    """
    words = re.split(r"[^a-z0-9]+", name.lower())
    last, before = words[-1], words[-2] if len(words) > 1 else ""
    return last in _SECRET_WORDS or (last in ("key", "keys") and before in _KEY_QUALIFIERS)


def _mask_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if not at or not colon or not password:
        return url
    return f"{scheme}://{user}:{MASK}@{hostport}{tail}"
