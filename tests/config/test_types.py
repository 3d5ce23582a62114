"""Every value rule of covetd/config/types.py, good and bad values, and dump round trips."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest

from covetd.config.errors import InvalidValue, show
from covetd.config.types import (
    Boolean,
    Choice,
    Duration,
    ExistingFile,
    HeaderValue,
    ImportPath,
    Increasing,
    Integer,
    ListOf,
    Network,
    OctalMode,
    Optional,
    Pattern,
    Size,
    Text,
    TextMapping,
    Url,
    ValueType,
    Workers,
    available_cpus,
    freeze,
    thaw,
)

KIB, MIB, GIB, TIB = 1024, 1024**2, 1024**3, 1024**4


def rejects(value_type: ValueType[object], value: object) -> str:
    with pytest.raises(InvalidValue) as info:
        value_type.parse(value)
    return info.value.message


# --- sizes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (512, 512),
        ("512", 512),
        ("8B", 8),
        ("64KiB", 64 * KIB),
        ("64kib", 64 * KIB),
        ("64K", 64 * KIB),
        ("64k", 64 * KIB),
        ("64KB", 64_000),
        ("64kb", 64_000),
        ("10MiB", 10 * MIB),
        ("10M", 10 * MIB),
        ("10MB", 10_000_000),
        ("1GiB", GIB),
        ("1G", GIB),
        ("1GB", 10**9),
        ("2TiB", 2 * TIB),
        (" 1 MiB ", MIB),
    ],
)
def test_size_accepts(value: object, expected: int) -> None:
    assert Size().parse(value) == expected


@pytest.mark.parametrize(
    "value", [-1, True, False, 1.5, "1.5MiB", "64Ki", "64 kilobytes", "", "-5", "MiB", None, [1]]
)
def test_size_rejects(value: object) -> None:
    assert rejects(Size(), value).startswith('expected a size in bytes (65536, "64KiB"')
    assert rejects(Size(), value).endswith(f"got {show(value)}")


def test_positive_size_rejects_zero() -> None:
    assert Size(1).parse("1") == 1
    assert rejects(Size(1), 0).startswith("expected a positive size in bytes")


@pytest.mark.parametrize(
    ("size", "dumped"),
    [(0, 0), (1000, 1000), (64 * KIB, "64KiB"), (10 * MIB, "10MiB"), (GIB, "1GiB"), (1536, 1536)],
)
def test_size_dumps_in_the_largest_exact_binary_unit(size: int, dumped: object) -> None:
    assert Size().dump(size) == dumped
    assert Size().parse(dumped) == size


# --- durations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (30, 30.0),
        (0.5, 0.5),
        ("30", 30.0),
        ("30s", 30.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("2H", 7200.0),
        (" 10 s ", 10.0),
    ],
)
def test_duration_accepts(value: object, expected: float) -> None:
    parsed = Duration().parse(value)
    assert parsed == expected
    assert isinstance(parsed, float)


@pytest.mark.parametrize(
    "value", [-1, -0.5, True, "5 minutes", "1d", "", "-3s", None, math.inf, math.nan, "s"]
)
def test_duration_rejects(value: object) -> None:
    message = rejects(Duration(), value)
    assert message.startswith('expected a duration in seconds (30, 0.5, "500ms"')


def test_positive_duration_rejects_zero() -> None:
    assert rejects(Duration(positive=True), "0s").startswith("expected a positive duration")


@pytest.mark.parametrize(("seconds", "dumped"), [(30.0, 30), (0.5, 0.5), (0.0, 0)])
def test_duration_dumps_as_a_number(seconds: float, dumped: object) -> None:
    assert Duration().dump(seconds) == dumped
    assert type(Duration().dump(seconds)) is type(dumped)


# --- integers, booleans, workers -------------------------------------------------------


def test_integer_rules() -> None:
    assert Integer(0).parse(0) == 0
    assert Integer(1).parse(2048) == 2048
    assert rejects(Integer(1), 0) == "expected a positive integer, got 0"
    assert rejects(Integer(0), -1) == "expected a non-negative integer, got -1"
    assert rejects(Integer(5), 4) == "expected an integer of at least 5, got 4"


@pytest.mark.parametrize("value", [True, False, 1.0, "5", None, [5]])
def test_integer_rejects_non_integers_and_booleans(value: object) -> None:
    rejects(Integer(0), value)


def test_boolean_takes_only_booleans() -> None:
    assert Boolean().parse(True) is True
    assert Boolean().parse(False) is False
    for value in (1, 0, "true", "yes", None):
        assert rejects(Boolean(), value) == f"expected true or false, got {show(value)}"


def test_workers() -> None:
    assert Workers().parse("auto") == available_cpus() >= 1
    assert Workers().parse(" AUTO ") == available_cpus()
    assert Workers().parse(4) == 4


def test_auto_workers_follow_the_cpu_affinity() -> None:
    # A process allowed on one CPU (taskset, a cpuset, a container) gets one worker.
    code = "from covetd.config.types import available_cpus; print(available_cpus())"
    pinned = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert pinned.stdout.strip() == "1"


@pytest.mark.parametrize(
    ("value", "shown"), [(0, "0"), (-2, "-2"), (True, "true"), ("many", '"many"'), (1.5, "1.5")]
)
def test_workers_rejects(value: object, shown: str) -> None:
    assert rejects(Workers(), value) == f'expected a positive integer or "auto", got {shown}'


# --- text, choices, optional ------------------------------------------------------------


def test_text_rejects_blank_and_non_strings() -> None:
    assert Text().parse("x") == "x"
    for value in ("", "   ", 5, None):
        assert rejects(Text(), value) == f"expected a string, got {show(value)}"


def test_choice_matches_case_insensitively_and_keeps_declared_spelling() -> None:
    choice = Choice("TLSv1.2", "TLSv1.3")
    assert choice.parse("tlsv1.3") == "TLSv1.3"
    assert rejects(choice, "TLSv1.1") == 'expected "TLSv1.2" or "TLSv1.3", got "TLSv1.1"'
    three = Choice("a", "b", "c")
    assert rejects(three, 1) == 'expected one of "a", "b" or "c", got 1'


def test_optional() -> None:
    maybe = Optional(Integer(1))
    assert maybe.parse(None) is None
    assert maybe.parse(3) == 3
    assert maybe.description == "a positive integer or null"
    assert Optional(Size()).doc_type() == "size or null"
    assert Optional(Text()).reads_text


# --- structured text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mode"), [(0o660, 0o660), ("0660", 0o660), ("660", 0o660), ("0o600", 0o600), (0, 0)]
)
def test_octal_mode_accepts(value: object, mode: int) -> None:
    assert OctalMode().parse(value) == mode


@pytest.mark.parametrize("value", [660, "0999", "rw-rw----", True, -1, "07777", None])
def test_octal_mode_rejects(value: object) -> None:
    assert rejects(OctalMode(), value).startswith('expected a file mode such as "0660"')


def test_octal_mode_dumps_as_a_string() -> None:
    assert OctalMode().dump(0o660) == "0660"
    assert OctalMode().dump(0o7) == "0007"


@pytest.mark.parametrize("spec", ["app:app", "a.b.c:obj.attr", " pkg:x "])
def test_import_path_accepts(spec: str) -> None:
    assert ImportPath().parse(spec) == spec.strip()


def test_import_path_factory_only_where_allowed() -> None:
    assert ImportPath(allow_call=True).parse("m:create_app()") == "m:create_app()"
    assert "not an attribute name" in rejects(ImportPath(), "m:create_app()")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("nocolon", "missing ':'"),
        ("m:", '"" is not an attribute name'),
        (":a", '"" is not a module path'),
        ("1m:a", '"1m" is not a module path'),
        ("my-app:a", '"my-app" is not a module path'),
        ("m:a-b", '"a-b" is not an attribute name'),
    ],
)
def test_import_path_rejects(spec: str, problem: str) -> None:
    message = rejects(ImportPath(what="callable"), spec)
    assert message.startswith(f'expected "module:callable", got "{spec}": ')
    assert problem in message


def test_pattern() -> None:
    owner = Pattern(r"[^:\s]+(:[^:\s]+)?", '"user" or "user:group"')
    assert owner.parse("www:www") == "www:www"
    assert rejects(owner, "a:b:c") == 'expected "user" or "user:group", got "a:b:c"'


def test_url() -> None:
    url = Url("postgres", "postgresql")
    assert url.parse("postgresql://u@h/db") == "postgresql://u@h/db"
    assert url.parse("POSTGRES://h") == "POSTGRES://h"
    for bad in ("mysql://h/db", "postgres://", "", "h/db"):
        message = rejects(url, bad)
        assert message.startswith("expected a URL starting with postgres:// or postgresql://")


def test_header_value_rejects_control_and_non_ascii_characters() -> None:
    header = HeaderValue()
    assert header.parse("covetd/1.0 (+https://x)") == "covetd/1.0 (+https://x)"
    for bad in ("a\r\nX-Evil: 1", "a\x00", "tab\there", "é", ""):
        assert rejects(header, bad).startswith("expected printable ASCII text")


def test_existing_file(tmp_path: Path) -> None:
    present = tmp_path / "cert.pem"
    present.write_text("x")
    assert ExistingFile().parse(str(present)) == str(present)
    assert rejects(ExistingFile(), str(tmp_path / "nope.pem")).startswith("file not found: ")
    assert rejects(ExistingFile(), str(tmp_path)).startswith("file not found: ")


@pytest.mark.parametrize("value", ["127.0.0.1", "10.0.0.0/8", "::1", "2001:db8::/32", "*"])
def test_network_accepts(value: str) -> None:
    assert Network().parse(value) == value


def test_network_rejects() -> None:
    assert (
        rejects(Network(), "10.0.0.1/8")
        == '"10.0.0.1/8" has host bits set (did you mean "10.0.0.0/8"?)'
    )
    for bad in ("nonsense", "999.1.1.1", "10.0.0.0/33", ""):
        assert rejects(Network(), bad).startswith('expected an IP address, a CIDR network or "*"')


# --- collections -----------------------------------------------------------------------


def test_list_of_takes_a_single_item_when_allowed() -> None:
    names = ListOf(Text(), "a list of names", single_ok=True)
    assert names.parse("a") == ("a",)
    assert names.parse(["a", "b"]) == ("a", "b")
    assert ListOf(Text(), "a list of names").parse(["a"]) == ("a",)
    assert rejects(ListOf(Text(), "a list of names"), "a") == 'expected a list of names, got "a"'


def test_list_of_errors_carry_the_item_index() -> None:
    with pytest.raises(InvalidValue) as info:
        ListOf(Integer(1), "a list").parse([1, 2, 0])
    assert (info.value.index, info.value.message) == (2, "expected a positive integer, got 0")


def test_list_of_rejects_empty_and_duplicates() -> None:
    assert rejects(ListOf(Text(), "a list"), []) == "expected a list, got a list"
    unique = ListOf(Text(), "a list", unique=True)
    with pytest.raises(InvalidValue) as info:
        unique.parse(["a", "b", "a"])
    assert (info.value.index, info.value.message) == (2, '"a" is listed twice')


def test_increasing_buckets() -> None:
    assert Increasing().parse([0.5, 1, 2.5]) == (0.5, 1.0, 2.5)
    with pytest.raises(InvalidValue) as info:
        Increasing().parse([1, 2, 2])
    assert (info.value.index, info.value.message) == (
        2,
        "bounds must increase: 2 does not exceed 2",
    )
    for bad in ([0], [-1], [], ["a"], [math.inf], [True], 5):
        rejects(Increasing(), bad)


def test_text_mapping_is_read_only() -> None:
    parsed = TextMapping().parse({"jit": "off"})
    assert parsed == {"jit": "off"}
    assert isinstance(parsed, MappingProxyType)
    assert TextMapping().dump(parsed) == {"jit": "off"}
    for bad in ({"jit": None}, {"a": {"b": "c"}}, ["a"]):
        rejects(TextMapping(), bad)


def test_freeze_and_thaw() -> None:
    plain = {"a": [1, {"b": [2]}], "c": None}
    frozen = freeze(plain)
    assert isinstance(frozen, MappingProxyType)
    assert frozen["a"] == (1, MappingProxyType({"b": (2,)}))
    assert thaw(frozen) == plain


# --- show ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.5, "2.5"),
        ("many", '"many"'),
        ("a\nb", '"a\\nb"'),
        ([1], "a list"),
        ({"a": 1}, "a mapping"),
    ],
)
def test_show(value: object, shown: str) -> None:
    assert show(value) == shown


def test_show_bounds_long_values() -> None:
    shown = show("x" * 500)
    assert len(shown) == 60
    assert shown.endswith('..."')
