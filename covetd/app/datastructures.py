"""Small containers used by requests and responses: headers, multi-dicts, URL, state."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

__all__ = [
    "URL",
    "Address",
    "FormData",
    "Headers",
    "ImmutableMultiDict",
    "MutableHeaders",
    "QueryParams",
    "State",
    "encode_header",
]

# RFC 9110 §5.6.2 token
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\r\n\x00]")
MAX_QUERY_FIELDS = 1000


def encode_header(name: str | bytes, value: str | bytes) -> tuple[bytes, bytes]:
    """Validate and encode one header; raises ``ValueError`` on CR, LF or NUL.

    This is the single gate against response splitting: every header a response
    carries goes through here.
    """
    raw_name = name if isinstance(name, bytes) else name.encode("latin-1")
    raw_value = value if isinstance(value, bytes) else value.encode("latin-1")
    if not _TOKEN.fullmatch(raw_name):
        raise ValueError(f"invalid header name {name!r}")
    if _FORBIDDEN_IN_VALUE.search(raw_value):
        raise ValueError(f"invalid character (CR, LF or NUL) in header {name!r}")
    return raw_name.lower(), raw_value.strip(b" \t")


class Address(NamedTuple):
    host: str
    port: int


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only view of raw ``(lowercase name, value)`` pairs.

    ``headers["x"]`` is the first value; ``getlist("x")`` gives all of them.
    """

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]] | None = None) -> None:
        self._raw = raw if raw is not None else []

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return self._raw

    def __getitem__(self, key: str) -> str:
        wanted = key.lower().encode("latin-1")
        for name, value in self._raw:
            if name == wanted:
                return value.decode("latin-1")
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        wanted = key.lower().encode("latin-1")
        return any(name == wanted for name, _ in self._raw)

    def getlist(self, key: str) -> list[str]:
        wanted = key.lower().encode("latin-1")
        return [value.decode("latin-1") for name, value in self._raw if name == wanted]

    def __iter__(self) -> Iterator[str]:
        seen: set[bytes] = set()
        for name, _ in self._raw:
            if name not in seen:
                seen.add(name)
                yield name.decode("latin-1")

    def __len__(self) -> int:
        return len({name for name, _ in self._raw})

    def multi_items(self) -> list[tuple[str, str]]:
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.multi_items()!r})"


class MutableHeaders(Headers):
    """Headers of a response; every value set is validated by ``encode_header``."""

    __slots__ = ()

    def __setitem__(self, key: str, value: str) -> None:
        name, raw_value = encode_header(key, value)
        self._raw[:] = [(n, v) for n, v in self._raw if n != name]
        self._raw.append((name, raw_value))

    def __delitem__(self, key: str) -> None:
        wanted = key.lower().encode("latin-1")
        if wanted not in {n for n, _ in self._raw}:
            raise KeyError(key)
        self._raw[:] = [(n, v) for n, v in self._raw if n != wanted]

    def append(self, key: str, value: str) -> None:
        self._raw.append(encode_header(key, value))

    def setdefault(self, key: str, value: str) -> str:
        if key in self:
            return self[key]
        self.append(key, value)
        return value

    def update(self, other: Mapping[str, str]) -> None:
        for key, value in other.items():
            self[key] = value


class ImmutableMultiDict(Mapping[str, Any]):
    """Ordered ``(key, value)`` pairs; ``d[key]`` is the last value, ``getlist`` all."""

    __slots__ = ("_dict", "_list")

    def __init__(self, items: Iterable[tuple[str, Any]] = ()) -> None:
        self._list = list(items)
        self._dict = dict(self._list)

    def __getitem__(self, key: str) -> Any:
        return self._dict[key]

    def getlist(self, key: str) -> list[Any]:
        return [v for k, v in self._list if k == key]

    def multi_items(self) -> list[tuple[str, Any]]:
        return list(self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._list!r})"


class QueryParams(ImmutableMultiDict):
    """The parsed query string (blank values kept; at most ``MAX_QUERY_FIELDS``)."""

    __slots__ = ()

    @classmethod
    def parse(cls, query_string: bytes | str) -> QueryParams:
        text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
        if not text:
            return cls()
        return cls(parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS))


class FormData(ImmutableMultiDict):
    """Fields of a submitted form."""

    __slots__ = ()


class URL(NamedTuple):
    """The request URL as the server reconstructs it."""

    scheme: str
    netloc: str
    path: str
    query: str

    def __str__(self) -> str:
        url = f"{self.scheme}://{self.netloc}{self.path}"
        return f"{url}?{self.query}" if self.query else url


class State:
    """An attribute bag (``app.state``, ``request.state``)."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self.__dict__.update(values or {})

    def __repr__(self) -> str:
        return f"State({self.__dict__!r})"
