"""The covetd command line, run for real (``python -m covetd``) from a temp directory.

Every failure must exit 1 with exactly one line on stderr, ``covetd: error: ...``, and
no traceback unless ``--log-level debug``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from covetd import cli
from covetd._version import __version__
from covetd.config import load_config

REPO = Path(__file__).resolve().parents[1]

GOOD_CONFIG = """\
app: hello:app
server:
  bind: ["127.0.0.1:8000"]
  workers: 2
database:
  default: {dsn: "postgres://app:s3cret@db/app"}
"""
HELLO_APP = """\
async def app(scope, receive, send):
    pass


def create_app():
    return app
"""


def covetd(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m covetd ARGS`` in ``cwd`` with a clean, known environment."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "PYTHONPATH") and not key.startswith("COVETD")
    }
    environment["PYTHONPATH"] = str(REPO)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "covetd", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"covetd: error: {message}\n"
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# --- version and usage -----------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = covetd(tmp_path, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"covetd {__version__}\n", "")


def test_help_lists_the_setting_flags(tmp_path: Path) -> None:
    result = covetd(tmp_path, "--help")
    assert result.returncode == 0
    for flag in ("-c FILE", "-b ADDR", "-w N", "--log-level LEVEL", "--app-dir DIR", "APP"):
        assert flag in result.stdout
    assert "--check-config" in result.stdout
    assert "--print-config" in result.stdout


def test_unknown_flag(tmp_path: Path) -> None:
    assert_one_line_error(covetd(tmp_path, "--bogus"), "unrecognized arguments: --bogus")


def test_flag_without_its_value(tmp_path: Path) -> None:
    assert_one_line_error(covetd(tmp_path, "-w"), "argument -w/--workers: expected one argument")


def test_check_and_print_exclude_each_other(tmp_path: Path) -> None:
    result = covetd(tmp_path, "--check-config", "--print-config", "hello:app")
    assert_one_line_error(
        result, "argument --print-config: not allowed with argument --check-config"
    )


# --- config errors ---------------------------------------------------------------------


def test_unknown_key(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "app: main:app\nserver:\n  wokers: 4\n")
    assert_one_line_error(
        covetd(tmp_path, "-c", "bad.yaml"),
        'bad.yaml:3: server.wokers: unknown key (did you mean "workers"?)',
    )


def test_wrong_type(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "app: main:app\nserver:\n  bind: 127.0.0.1:8000\n  workers: many\n")
    assert_one_line_error(
        covetd(tmp_path, "-c", "bad.yaml", "--check-config"),
        'bad.yaml:4: server.workers: expected a positive integer or "auto", got "many"',
    )


def test_missing_environment_variable(tmp_path: Path) -> None:
    text = """\
        app: main:app
        server:
          workers: ${WORKERS:-2}
        database:
          default:
            min_size: 1
            dsn: ${DATABASE_URL}
        """
    write(tmp_path, "bad.yaml", text)
    assert_one_line_error(
        covetd(tmp_path, "-c", "bad.yaml"),
        "bad.yaml:7: database.default.dsn: environment variable DATABASE_URL is not set "
        "(write ${DATABASE_URL:-...} to give a default)",
    )


def test_yaml_syntax_error(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "app: main:app\nserver:\n  workers 2\n  bind: x\n")
    result = covetd(tmp_path, "-c", "bad.yaml")
    assert result.returncode == 1
    assert result.stderr.startswith("covetd: error: bad.yaml:4: invalid YAML: ")
    assert result.stderr.count("\n") == 1


def test_missing_config_file(tmp_path: Path) -> None:
    assert_one_line_error(
        covetd(tmp_path, "-c", "nope.yaml"),
        "nope.yaml: cannot read the config file: No such file or directory",
    )


def test_bad_flag_value_names_the_flag(tmp_path: Path) -> None:
    assert_one_line_error(
        covetd(tmp_path, "-w", "many", "hello:app"),
        '-w/--workers: expected a positive integer or "auto", got "many"',
    )
    assert_one_line_error(
        covetd(tmp_path, "-b", "8000", "hello:app", "--print-config"),
        '-b/--bind: expected "host:port", "[v6]:port", "unix:/abs/path" or "fd://N", got "8000"',
    )


def test_no_app_anywhere(tmp_path: Path) -> None:
    write(tmp_path, "noapp.yaml", "server: {workers: 2}\n")
    assert_one_line_error(
        covetd(tmp_path, "-c", "noapp.yaml", "--check-config"),
        'no application given: pass APP ("module:attr") or set app: in the config file',
    )


# --- --print-config --------------------------------------------------------------------


def test_print_config_shows_overrides(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD_CONFIG)
    result = covetd(
        tmp_path,
        "-c", "good.yaml",
        "-b", "0.0.0.0:9000",
        "-b", "unix:/tmp/covetd-test.sock",
        "-w", "5",
        "--log-level", "WARNING",
        "--print-config",
        "other:create_app()",
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")
    printed = yaml.safe_load(result.stdout)
    assert printed["app"] == "other:create_app()"
    assert printed["server"]["bind"] == ["0.0.0.0:9000", "unix:/tmp/covetd-test.sock"]
    assert printed["server"]["workers"] == 5
    assert printed["logging"]["level"] == "warning"
    assert printed["database"]["default"]["dsn"] == "postgres://app:***@db/app"
    assert "s3cret" not in result.stdout


def test_print_config_output_loads_back_equal(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD_CONFIG.replace("app:s3cret@", "app@"))
    result = covetd(tmp_path, "-c", "good.yaml", "--print-config")
    assert result.returncode == 0
    write(tmp_path, "printed.yaml", result.stdout)
    original = load_config(str(tmp_path / "good.yaml"))
    assert load_config(str(tmp_path / "printed.yaml")) == original


def test_print_config_applies_the_environment(tmp_path: Path) -> None:
    write(tmp_path, "env.yaml", "app: hello:app\nserver:\n  workers: ${WORKERS:-2}\n")
    result = covetd(tmp_path, "-c", "env.yaml", "--print-config", env={"WORKERS": "9"})
    assert yaml.safe_load(result.stdout)["server"]["workers"] == 9


# --- --check-config --------------------------------------------------------------------


def test_check_config_imports_the_app(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD_CONFIG)
    write(tmp_path, "hello.py", HELLO_APP)
    result = covetd(tmp_path, "-c", "good.yaml", "--check-config")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "covetd: config OK (app hello:app)\n"


def test_check_config_with_a_factory_and_app_dir(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    write(tmp_path / "src", "hello.py", HELLO_APP)
    result = covetd(tmp_path, "--app-dir", "src", "--check-config", "hello:create_app()")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "covetd: config OK (app hello:create_app())\n"


def test_check_config_app_that_fails_to_import(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD_CONFIG.replace("hello:app", "broken:app"))
    write(tmp_path, "broken.py", "import missing_dependency_xyz\napp = 1\n")
    assert_one_line_error(
        covetd(tmp_path, "-c", "good.yaml", "--check-config"),
        "error while importing 'broken': "
        "ModuleNotFoundError: No module named 'missing_dependency_xyz'",
    )


def test_check_config_app_module_missing(tmp_path: Path) -> None:
    assert_one_line_error(
        covetd(tmp_path, "--check-config", "nothere:app"), "no module named 'nothere'"
    )


def test_debug_log_level_shows_the_traceback(tmp_path: Path) -> None:
    write(tmp_path, "broken.py", "def helper():\n    raise RuntimeError('boom')\n\nhelper()\n")
    result = covetd(tmp_path, "--check-config", "--log-level", "debug", "broken:app")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert 'broken.py", line 2, in helper' in result.stderr
    assert result.stderr.endswith(
        "covetd: error: error while importing 'broken': RuntimeError: boom\n"
    )


def test_debug_level_from_the_config_file_also_shows_tracebacks(tmp_path: Path) -> None:
    write(tmp_path, "debug.yaml", "app: broken:app\nlogging: {level: debug}\n")
    write(tmp_path, "broken.py", "raise RuntimeError('boom')\n")
    result = covetd(tmp_path, "-c", "debug.yaml", "--check-config")
    assert result.returncode == 1
    assert "Traceback" in result.stderr


# --- handing over to the server (in process) -------------------------------------------


def test_main_returns_zero_for_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"covetd {__version__}\n"
