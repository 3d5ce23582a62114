"""``covetd`` command line: argv -> ``Config`` -> the server (or a check, or a printout).

Options that override settings are not listed here: each is declared with its setting
in ``covetd/config/schema.py`` (``flag=...``) and added to the parser from there, so the
flag, the config key and the docs cannot disagree. Bad input of any kind ends with exit
status 1 and one line on stderr, ``covetd: error: ...``; the traceback is shown only
with ``--log-level debug``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import NoReturn

import yaml

from covetd._version import __version__
from covetd.config import Config, ConfigError, load_config
from covetd.config.fields import Setting, iter_settings
from covetd.master.hooks import HookError
from covetd.worker.appload import AppLoadError, load_app

PROG = "covetd"
EXIT_OK = 0
EXIT_FAILURE = 1
DEBUG_LEVEL = "debug"
LOG_LEVEL_KEY = "logging.level"


class UsageError(Exception):
    """Bad command-line input, reported like any other error (one line, exit 1)."""


class _ParserExit(Exception):
    """argparse finished on its own (``--help``, ``--version``) with this status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and calling sys.exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _ParserExit(status)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    try:
        args = build_parser().parse_args(argv)
    except _ParserExit as done:
        return done.status
    except UsageError as exc:
        return report(exc, debug=False)
    debug = _override_of(args, LOG_LEVEL_KEY, "").lower() == DEBUG_LEVEL
    try:
        config = load_config(args.config, overrides_from(args))
        debug = debug or config.logging.level == DEBUG_LEVEL
        return _act(args, config)
    except (ConfigError, AppLoadError, UsageError, HookError) as exc:
        return report(exc, debug=debug)


def build_parser() -> argparse.ArgumentParser:
    """The parser: covetd's own options, then one option per setting that has a flag."""
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,
        description="covetd: a production HTTP/1.1 + WebSocket server for Python apps.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-c", "--config", metavar="FILE", help="YAML configuration file.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check-config",
        action="store_true",
        help="Validate the configuration and import the app, then exit.",
    )
    mode.add_argument(
        "--print-config",
        action="store_true",
        help="Print the effective configuration as YAML (secrets masked), then exit.",
    )
    for key, setting in flagged_settings():
        _add_setting_flag(parser, key, setting)
    return parser


def flagged_settings() -> list[tuple[str, Setting]]:
    """The settings that can be given on the command line, in schema order."""
    return [(key, setting) for key, setting in iter_settings(Config) if setting.flag]


def overrides_from(args: argparse.Namespace) -> dict[str, object]:
    """The settings given on the command line, as ``load_config`` overrides."""
    given = {key: getattr(args, key, None) for key, _ in flagged_settings()}
    return {key: value for key, value in given.items() if value is not None}


def report(exc: Exception, *, debug: bool) -> int:
    """Print the error (after its traceback in debug mode); return the exit status."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(f"{PROG}: error: {exc}\n")
    return EXIT_FAILURE


def _add_setting_flag(parser: argparse.ArgumentParser, key: str, setting: Setting) -> None:
    flag = setting.flag
    assert flag is not None
    if flag.positional:
        parser.add_argument(key, nargs="?", metavar=flag.metavar, help=setting.doc)
        return
    action = "append" if flag.repeat else "store"
    parser.add_argument(
        *flag.names, dest=key, metavar=flag.metavar, action=action, help=setting.doc
    )


def _override_of(args: argparse.Namespace, key: str, default: str) -> str:
    value = getattr(args, key, None)
    return value if isinstance(value, str) else default


def _act(args: argparse.Namespace, config: Config) -> int:
    app = _require_app(config)
    if args.print_config:
        return _print_config(config)
    if args.check_config:
        return _check_config(config, app)
    from covetd.master import run  # imported late: the server is not needed above

    overrides = overrides_from(args)
    return run(config, reload=lambda: load_config(args.config, overrides))


def _require_app(config: Config) -> str:
    if config.app is None:
        raise UsageError(
            'no application given: pass APP ("module:attr") or set app: in the config file'
        )
    return config.app


def _print_config(config: Config) -> int:
    sys.stdout.write(yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
    return EXIT_OK


def _check_config(config: Config, app: str) -> int:
    """Everything a worker would refuse at start: the app, the middleware options, hooks."""
    from covetd.master.hooks import Hooks
    from covetd.middleware.pipeline import build_chain, config_defaults, configured_entries

    load_app(app, config.app_dir)
    build_chain(configured_entries(config), _never_called, config_defaults(config))
    Hooks.load(config.hooks, config.app_dir)
    sys.stdout.write(f"{PROG}: config OK (app {app})\n")
    return EXIT_OK


async def _never_called(request: object) -> NoReturn:
    raise AssertionError("the --check-config chain never serves")
