"""Value types: how one setting's YAML value is checked, resolved and printed back.

A ``ValueType`` turns the plain value the loader read (str, int, float, bool, None,
list, dict) into the resolved Python value the server uses (sizes -> int bytes,
durations -> float seconds, addresses -> ``BindAddress``), or raises ``InvalidValue``
with ``expected <description>, got <value>``. ``dump`` goes the other way, for
``--print-config``; ``parse(dump(x)) == x`` holds for every type.

``reads_text`` asks the loader for a scalar's text rather than its YAML type, so a
string setting gets ``user: 1000`` as ``"1000"`` and ``password: ${PW}`` keeps
``PW=0123`` as written instead of YAML 1.1's octal 83.

Booleans are only YAML booleans and integers are never booleans: ``workers: true`` is a
mistake worth reporting, not a 1.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Generic, NoReturn, TypeGuard, TypeVar

from covetd.config.bind import BIND_FORMS, BindAddress, parse_bind
from covetd.config.errors import InvalidValue, show
from covetd.config.importspec import parse_import_spec

T = TypeVar("T")


class ValueType(ABC, Generic[T]):
    """Checks and resolves one setting's value; ``description`` feeds errors and docs."""

    description: str = "a value"
    reads_text: bool = False

    @abstractmethod
    def parse(self, value: object) -> T:
        """Return the resolved value, or raise ``InvalidValue``."""

    def dump(self, value: T) -> object:
        """The resolved value as plain YAML data."""
        return value

    def doc_type(self) -> str:
        """The type column of the reference docs (shorter where the docs explain forms)."""
        return self.description

    def fail(self, value: object) -> NoReturn:
        raise InvalidValue(f"expected {self.description}, got {show(value)}")


def is_int(value: object) -> TypeGuard[int]:
    """An int that is not a bool (``True`` is an ``int`` in Python, never in a config)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    return is_int(value) or isinstance(value, float)


# --- scalars ---------------------------------------------------------------------------


class Boolean(ValueType[bool]):
    description = "true or false"

    def parse(self, value: object) -> bool:
        if not isinstance(value, bool):
            self.fail(value)
        return value


class Integer(ValueType[int]):
    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum
        self.description = _minimum_phrase(minimum, "integer")

    def parse(self, value: object) -> int:
        if not is_int(value) or value < self.minimum:
            self.fail(value)
        return value


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota
    (a container limited to 2 CPUs on a 64-core host gets 2 workers, not 64)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as limit:
            quota, period = limit.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


class Workers(ValueType[int]):
    """A worker count, or ``"auto"`` for one per CPU."""

    description = 'a positive integer or "auto"'
    AUTO = "auto"

    def parse(self, value: object) -> int:
        if isinstance(value, str) and value.strip().lower() == self.AUTO:
            return available_cpus()
        if not is_int(value) or value < 1:
            self.fail(value)
        return value


class Text(ValueType[str]):
    """Non-blank text; what it names is up to the description."""

    reads_text = True

    def __init__(self, description: str = "a string") -> None:
        self.description = description

    def parse(self, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(value)
        return value


class Choice(ValueType[str]):
    """One of fixed words, matched case-insensitively and stored as declared."""

    reads_text = True

    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.description = ("one of " if len(choices) > 2 else "") + _alternatives(choices)
        self._by_folded = {choice.casefold(): choice for choice in choices}

    def parse(self, value: object) -> str:
        choice = self._by_folded.get(value.strip().casefold()) if isinstance(value, str) else None
        if choice is None:
            self.fail(value)
        return choice


class Optional(ValueType[T | None]):
    """``null`` (None) or a value of ``inner``."""

    def __init__(self, inner: ValueType[T]) -> None:
        self.inner = inner
        self.description = f"{inner.description} or null"
        self.reads_text = inner.reads_text

    def parse(self, value: object) -> T | None:
        return None if value is None else self.inner.parse(value)

    def dump(self, value: T | None) -> object:
        return None if value is None else self.inner.dump(value)

    def doc_type(self) -> str:
        return f"{self.inner.doc_type()} or null"


# --- sizes and durations ---------------------------------------------------------------

_SIZE = re.compile(r"(?P<number>\d+)\s*(?P<unit>[a-z]*)", re.IGNORECASE)
_SIZE_UNITS: dict[str, int] = {"": 1, "b": 1}
for _power, _prefix in enumerate("kmgt", start=1):
    _SIZE_UNITS[_prefix] = 1024**_power
    _SIZE_UNITS[_prefix + "ib"] = 1024**_power
    _SIZE_UNITS[_prefix + "b"] = 1000**_power
_BINARY_UNITS = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


class Size(ValueType[int]):
    """Bytes: an int, or ``"64KiB"``/``"64K"`` (1024s) and ``"64KB"`` (1000s)."""

    def __init__(self, minimum: int = 0) -> None:
        self.minimum = minimum
        self.kind = "size" if minimum == 0 else "positive size"
        self.description = f'a {self.kind} in bytes (65536, "64KiB", "10MiB", "64KB", "64K")'

    def parse(self, value: object) -> int:
        size = self._bytes(value)
        if size is None or size < self.minimum:
            self.fail(value)
        return size

    def doc_type(self) -> str:
        return self.kind

    def dump(self, value: int) -> object:
        """The largest binary unit that is exact, so ``10485760`` prints as ``"10MiB"``."""
        for unit, factor in _BINARY_UNITS:
            if value and value % factor == 0:
                return f"{value // factor}{unit}"
        return value

    @staticmethod
    def _bytes(value: object) -> int | None:
        if is_int(value):
            return value
        if not isinstance(value, str):
            return None
        match = _SIZE.fullmatch(value.strip())
        factor = _SIZE_UNITS.get(match["unit"].lower()) if match else None
        return int(match["number"]) * factor if match and factor else None


_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)?", re.IGNORECASE)
_DURATION_UNITS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class Duration(ValueType[float]):
    """Seconds: a number, or ``"30s"``, ``"500ms"``, ``"5m"``, ``"1h"``."""

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive
        self.kind = "positive duration" if positive else "duration"
        self.description = f'a {self.kind} in seconds (30, 0.5, "500ms", "30s", "5m", "1h")'

    def parse(self, value: object) -> float:
        seconds = self._seconds(value)
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            self.fail(value)
        if self.positive and seconds == 0:
            self.fail(value)
        return seconds

    def doc_type(self) -> str:
        return self.kind

    def dump(self, value: float) -> object:
        return int(value) if value.is_integer() else value

    @staticmethod
    def _seconds(value: object) -> float | None:
        if is_number(value):
            return float(value)
        if not isinstance(value, str):
            return None
        match = _DURATION.fullmatch(value.strip())
        if not match:
            return None
        unit = match["unit"].lower() if match["unit"] else None
        return float(match["number"]) * _DURATION_UNITS[unit]


# --- structured text -------------------------------------------------------------------


class Bind(ValueType[BindAddress]):
    """One listening address (``tcp_only`` for the metrics endpoint)."""

    reads_text = True

    def __init__(self, *, tcp_only: bool = False) -> None:
        self.tcp_only = tcp_only
        self.description = '"host:port"' if tcp_only else f"an address: {BIND_FORMS}"

    def parse(self, value: object) -> BindAddress:
        if not isinstance(value, str):
            self.fail(value)
        return parse_bind(value, tcp_only=self.tcp_only)

    def dump(self, value: BindAddress) -> object:
        return str(value)


class ImportPath(ValueType[str]):
    """``module:attr`` (and ``module:factory()`` when ``allow_call``), checked for form only."""

    reads_text = True

    def __init__(self, *, allow_call: bool = False, what: str = "attr") -> None:
        self.allow_call = allow_call
        forms = f'"module:{what}"' + (' or "module:factory()"' if allow_call else "")
        self.description = forms

    def parse(self, value: object) -> str:
        if not isinstance(value, str):
            self.fail(value)
        try:
            return str(parse_import_spec(value.strip(), allow_call=self.allow_call))
        except ValueError as exc:
            raise InvalidValue(f"expected {self.description}, got {show(value)}: {exc}") from None


class OctalMode(ValueType[int]):
    """A permission mode: YAML ``0660`` (an octal int) or the string ``"0660"``."""

    description = 'a file mode such as "0660"'
    MAX = 0o777

    def parse(self, value: object) -> int:
        mode = self._mode(value)
        if mode is None or not 0 <= mode <= self.MAX:
            self.fail(value)
        return mode

    def dump(self, value: int) -> object:
        return f"{value:04o}"

    @staticmethod
    def _mode(value: object) -> int | None:
        if is_int(value):
            return value
        if isinstance(value, str) and re.fullmatch(r"(0o?)?[0-7]{1,4}", value.strip()):
            return int(value.strip().removeprefix("0o"), 8)
        return None


class Pattern(Text):
    """Text that must match a regular expression (``user[:group]``, a URL path, ...)."""

    def __init__(self, regex: str, description: str) -> None:
        super().__init__(description)
        self.regex = re.compile(regex)

    def parse(self, value: object) -> str:
        text = super().parse(value)
        if not self.regex.fullmatch(text):
            self.fail(value)
        return text


class Url(Pattern):
    """A URL whose scheme is one of ``schemes``."""

    def __init__(self, *schemes: str) -> None:
        forms = _alternatives([f"{scheme}://" for scheme in schemes], quote="")
        alternatives = "|".join(re.escape(scheme) for scheme in schemes)
        super().__init__(rf"(?i:{alternatives})://\S+", f"a URL starting with {forms}")


class HeaderValue(Pattern):
    """A header value we send ourselves: printable ASCII, so it cannot split the header."""

    def __init__(self) -> None:
        super().__init__(r"[\x20-\x7e]+", "printable ASCII text (no control characters)")


class ExistingFile(Text):
    """A path (relative to the working directory) that must name an existing file."""

    def __init__(self) -> None:
        super().__init__("a path to an existing file")

    def parse(self, value: object) -> str:
        path = super().parse(value)
        if not os.path.isfile(path):
            raise InvalidValue(f"file not found: {show(path)}")
        return path


class Network(Text):
    """An IP address or CIDR network, or ``"*"`` for any; kept as written."""

    ANY = "*"

    def __init__(self) -> None:
        super().__init__('an IP address, a CIDR network or "*"')

    def parse(self, value: object) -> str:
        text = super().parse(value).strip()
        if text == self.ANY:
            return text
        try:
            ipaddress.ip_network(text)
        except ValueError:
            self._explain(text)
        return text

    def _explain(self, text: str) -> NoReturn:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            self.fail(text)
        raise InvalidValue(f"{show(text)} has host bits set (did you mean {show(str(network))}?)")


# --- collections -----------------------------------------------------------------------


class ListOf(ValueType[tuple[T, ...]]):
    """A list of ``inner`` values, as a tuple; item errors carry their index.

    ``single_ok`` also takes one bare item (``bind: "0.0.0.0:80"``); ``unique`` rejects an
    item listed twice (two binds of one address would fail at startup, far from here).
    """

    def __init__(
        self,
        inner: ValueType[T],
        description: str,
        *,
        single_ok: bool = False,
        unique: bool = False,
        nonempty: bool = True,
    ) -> None:
        self.inner = inner
        self.description = description
        self.reads_text = inner.reads_text
        self.single_ok = single_ok
        self.unique = unique
        self.nonempty = nonempty

    def parse(self, value: object) -> tuple[T, ...]:
        if self.single_ok and not isinstance(value, list | tuple):
            return (self.inner.parse(value),)
        if not isinstance(value, list | tuple) or (self.nonempty and not value):
            self.fail(value)
        items = tuple(self._item(index, item) for index, item in enumerate(value))
        if self.unique:
            self._check_unique(items)
        return items

    def dump(self, value: tuple[T, ...]) -> object:
        return [self.inner.dump(item) for item in value]

    def _item(self, index: int, item: object) -> T:
        try:
            return self.inner.parse(item)
        except InvalidValue as exc:
            raise InvalidValue(exc.message, index=index) from None

    @staticmethod
    def _check_unique(items: Sequence[object]) -> None:
        for index, item in enumerate(items):
            if item in items[:index]:
                raise InvalidValue(f"{show(str(item))} is listed twice", index=index)


class PositiveNumber(ValueType[float]):
    description = "a positive number"

    def __init__(self, *, allow_zero: bool = False) -> None:
        self.allow_zero = allow_zero
        if allow_zero:
            self.description = "a number >= 0"

    def parse(self, value: object) -> float:
        if not is_number(value) or not value < math.inf:
            self.fail(value)
        if value < 0 or (value == 0 and not self.allow_zero):
            self.fail(value)
        return float(value)

    def dump(self, value: float) -> object:
        return value


class Increasing(ListOf[float]):
    """Histogram bucket bounds: positive, finite and strictly increasing."""

    def __init__(self) -> None:
        super().__init__(PositiveNumber(), "an increasing list of positive numbers")

    def parse(self, value: object) -> tuple[float, ...]:
        bounds = super().parse(value)
        for index in range(1, len(bounds)):
            if bounds[index] <= bounds[index - 1]:
                message = f"{bounds[index]:g} does not exceed {bounds[index - 1]:g}"
                raise InvalidValue(f"bounds must increase: {message}", index=index)
        return bounds


class TextMapping(ValueType[Mapping[str, str]]):
    """A read-only mapping of strings to strings (PostgreSQL ``server_settings``)."""

    description = "a mapping of names to strings"
    reads_text = True

    def parse(self, value: object) -> Mapping[str, str]:
        if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
            self.fail(value)
        return MappingProxyType(dict(value))

    def dump(self, value: Mapping[str, str]) -> object:
        return dict(value)


# --- helpers ---------------------------------------------------------------------------


def freeze(value: object) -> Any:
    """Deep read-only copy: dicts become mapping proxies and lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: object) -> Any:
    """Undo ``freeze``: plain dicts and lists again, for YAML output."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(item) for item in value]
    return value


def _alternatives(words: Sequence[str], quote: str = '"') -> str:
    """``"a"``, ``"a" or "b"``, ``"a", "b" or "c"``."""
    quoted = [f"{quote}{word}{quote}" for word in words]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)


def _minimum_phrase(minimum: int, noun: str) -> str:
    if minimum == 0:
        return f"a non-negative {noun}"
    if minimum == 1:
        return f"a positive {noun}"
    return f"an {noun} of at least {minimum}"
