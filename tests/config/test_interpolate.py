"""``${VAR}``, ``${VAR:-default}`` and ``$$`` on their own (see test_loader for files)."""

from __future__ import annotations

import pytest

from covetd.config.errors import InvalidValue
from covetd.config.interpolate import interpolate

ENV = {"HOST": "db", "PORT": "5432", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${HOST}", "db"),
        ("postgres://${HOST}:${PORT}/app", "postgres://db:5432/app"),
        ("${MISSING:-fallback}", "fallback"),
        ("${HOST:-fallback}", "db"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY}", ""),
        ("${MISSING:-}", ""),
        ("${MISSING:-a:b/c}", "a:b/c"),
        ("$$", "$"),
        ("$${HOST}", "${HOST}"),
        ("price: $$5", "price: $5"),
        ("pa$word", "pa$word"),
        ("$", "$"),
        ("no references", "no references"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, ENV) == expected


def test_missing_variable_without_default() -> None:
    with pytest.raises(InvalidValue) as info:
        interpolate("postgres://${DATABASE_URL}", ENV)
    assert info.value.message == (
        "environment variable DATABASE_URL is not set "
        "(write ${DATABASE_URL:-...} to give a default)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${HOST", '"${" is not closed by "}" (write "$$" for a literal "$")'),
        ("${1HOST}", 'cannot read "${1HOST}": write ${NAME} or ${NAME:-default}'),
        ("${}", 'cannot read "${}": write ${NAME} or ${NAME:-default}'),
        ("${HOST:?required}", 'cannot read "${HOST:?required}"'),
        ("${A:-${B}}", 'cannot read "${A:-${B}"'),
    ],
)
def test_malformed_references(text: str, message: str) -> None:
    with pytest.raises(InvalidValue) as info:
        interpolate(text, ENV)
    assert info.value.message.startswith(message)
