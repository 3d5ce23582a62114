"""Render ``docs/configuration.md`` from the schema: ``python -m covetd.config.docs``.

The reference is generated, never edited, so it cannot drift from what the loader
accepts; a test compares the committed file with this output (``make docs`` rewrites it).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

from covetd.config.fields import (
    MiddlewareList,
    Section,
    SectionMap,
    Setting,
    field_specs,
    join_key,
)
from covetd.config.schema import Config

TITLE = "# Configuration reference"
GENERATED_NOTE = (
    "<!-- Generated from covetd/config/schema.py by `python -m covetd.config.docs`"
    " (`make docs`). Do not edit: a test checks that this file is in sync. -->"
)
INTRODUCTION = """\
covetd reads one YAML file, `covetd -c FILE`. Every key is optional except `app`, which
`APP` on the command line can give instead. A key covetd does not know is an error (with
a "did you mean"), as is a duplicate key. `covetd -c FILE --check-config` validates the
file and imports the app; `covetd -c FILE --print-config` prints the effective
configuration (defaults, environment and flags applied, secrets masked) as YAML.

Every error is one line, `FILE:LINE: key.path: message`, for example
`covetd.yaml:3: server.wokers: unknown key (did you mean "workers"?)`.

## Values

- **Sizes** are bytes: an integer, or a string with a unit, case-insensitive: `"64KiB"`,
  `"10MiB"`, `"1GiB"` and `"64K"`, `"10M"` count in 1024s; `"64KB"`, `"10MB"` in 1000s.
- **Durations** are seconds: an integer or a float, or a string `"30"`, `"30s"`,
  `"500ms"`, `"5m"`, `"1h"`.
- **Booleans** are YAML booleans (`true`, `false`); integers are never booleans.
- **Addresses** are `"host:port"`, `"[v6]:port"`, `"unix:/abs/path"` or `"fd://N"`
  (an inherited socket, e.g. from systemd).
- **Environment**: `${VAR}` in a string is replaced by the variable, and
  `${VAR:-default}` by the default when VAR is unset or empty; `$$` is a literal `$`.
  A variable that is not set and has no default is an error. In an unquoted value the
  result is typed as YAML would type it (`workers: ${WORKERS:-2}` is the integer 2);
  quote it to keep a string. Inside a `{flow: mapping}` a `${...}` must be quoted.
- **Command line**: the flags below override the file and are checked by the same rules;
  `-b` may repeat and replaces the whole `server.bind` list.
- Relative paths are relative to the directory covetd is started in.
"""
TABLE_HEAD = "| key | type | default | flag | description |\n|---|---|---|---|---|"


def render() -> str:
    """The whole reference, ending with one newline."""
    return "\n\n".join([TITLE, GENERATED_NOTE, INTRODUCTION.rstrip(), *_sections()]) + "\n"


def _sections() -> Iterator[str]:
    yield "## Top level\n\n" + _table(
        (name, spec) for name, spec in field_specs(Config) if isinstance(spec, Setting)
    )
    for name, spec in field_specs(Config):
        if isinstance(spec, Section):
            yield from _section(name, spec.cls, spec.doc)
        elif isinstance(spec, SectionMap):
            yield from _section_map(name, spec)
        elif isinstance(spec, MiddlewareList):
            yield _middleware(name, spec)


def _section(path: str, cls: type[Any], doc: str) -> Iterator[str]:
    specs = field_specs(cls)
    rows = [(join_key(path, name), spec) for name, spec in specs if isinstance(spec, Setting)]
    yield f"## `{path}`\n\n{doc}\n\n" + _table(rows)
    for name, spec in specs:
        if isinstance(spec, Section):
            yield from _section(join_key(path, name), spec.cls, spec.doc)


def _section_map(path: str, spec: SectionMap) -> Iterator[str]:
    heading = f"{path}.<name>"
    intro = f"{spec.doc} `<name>` is the {spec.name_doc}, an identifier. {_class_doc(spec.cls)}"
    rows = [
        (f"{heading}.{name}", item)
        for name, item in field_specs(spec.cls)
        if isinstance(item, Setting)
    ]
    yield f"## `{heading}`\n\n{intro}\n\n" + _table(rows)


def _middleware(path: str, spec: MiddlewareList) -> str:
    names = ", ".join(f"`{name}`" for name in spec.builtins)
    example = (
        "```yaml\nmiddleware:\n  - proxy_headers: {}\n"
        '  - cors: {allow_origins: ["https://example.com"]}\n'
        "  - gzip: {minimum_size: 500}\n"
        "  - myproject.middleware:Timing: {option: 1}\n```"
    )
    return f"## `{path}`\n\n{spec.doc}\n\nBuilt-in names: {names}.\n\n{example}"


def _table(rows: Iterator[tuple[str, Setting]] | list[tuple[str, Setting]]) -> str:
    lines = [TABLE_HEAD]
    for key, spec in rows:
        flag = f"`{spec.flag}`" if spec.flag else ""
        cells = [f"`{key}`", spec.type.doc_type(), _default(spec), flag, spec.doc]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines)


def _default(spec: Setting) -> str:
    if spec.default_doc is not None:
        return spec.default_doc
    if spec.required:
        return "required"
    return f"`{json.dumps(spec.default)}`"


def _class_doc(cls: type[Any]) -> str:
    return " ".join((cls.__doc__ or "").split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
