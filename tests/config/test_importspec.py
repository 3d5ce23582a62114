"""The ``module:attr`` grammar shared by the config and the app loader."""

from __future__ import annotations

import pytest

from covetd.config.importspec import ImportSpec, parse_import_spec


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("main:app", ImportSpec("main", "app")),
        ("pkg.mod:obj.app", ImportSpec("pkg.mod", "obj.app")),
        ("main:create_app()", ImportSpec("main", "create_app", call=True)),
    ],
)
def test_parse_and_str(text: str, spec: ImportSpec) -> None:
    assert parse_import_spec(text, allow_call=True) == spec
    assert str(spec) == text


@pytest.mark.parametrize("text", ["main", "main:", ":app", "ma in:app", "main:app()x", "main:a..b"])
def test_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_import_spec(text, allow_call=True)


def test_call_suffix_only_where_allowed() -> None:
    with pytest.raises(ValueError, match="not an attribute name"):
        parse_import_spec("main:create_app()", allow_call=False)
