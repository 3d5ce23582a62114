"""Command-line overrides: read like unquoted YAML, checked like the file, named by flag."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from covetd.config import BindAddress, Config, ConfigError, load_config
from covetd.config.types import available_cpus

Loader = Callable[..., Config]  # the ``load`` fixture of conftest.py


def override_error(overrides: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    return str(info.value)


def test_each_command_line_setting() -> None:
    config = load_config(
        None,
        {
            "app": "main:app",
            "app_dir": "src",
            "server.bind": ["0.0.0.0:80", "unix:/run/c.sock"],
            "server.workers": "4",
            "logging.level": "DEBUG",
        },
    )
    assert (config.app, config.app_dir) == ("main:app", "src")
    assert config.server.bind == (
        BindAddress("tcp", host="0.0.0.0", port=80),
        BindAddress("unix", path="/run/c.sock"),
    )
    assert (config.server.workers, config.logging.level) == (4, "debug")
    assert load_config(None, {"server.workers": "auto"}).server.workers == available_cpus()


def test_overrides_win_over_the_file(load: Loader) -> None:
    text = """\
        app: from.file:app
        server:
          bind: ["127.0.0.1:1", "127.0.0.1:2"]
          workers: 8
          backlog: 99
        """
    config = load(text, overrides={"app": "from.cli:app", "server.bind": ["127.0.0.1:3"]})
    assert config.app == "from.cli:app"
    assert [address.port for address in config.server.bind] == [3]
    assert (config.server.workers, config.server.backlog) == (8, 99)


def test_typed_values_are_accepted_too() -> None:
    assert load_config(None, {"server.workers": 3}).server.workers == 3
    assert load_config(None, {"http.max_body_size": "1MiB"}).http.max_body_size == 1024**2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"server.workers": "many"},
            '-w/--workers: expected a positive integer or "auto", got "many"',
        ),
        ({"server.workers": "0"}, '-w/--workers: expected a positive integer or "auto", got 0'),
        (
            {"server.bind": ["127.0.0.1:1", "nowhere"]},
            '-b/--bind: expected "host:port", "[v6]:port"',
        ),
        (
            {"server.bind": ["127.0.0.1:1", "127.0.0.1:1"]},
            '-b/--bind: "127.0.0.1:1" is listed twice',
        ),
        ({"logging.level": "loud"}, '--log-level: expected one of "debug", "info", "warning"'),
        ({"app": "main"}, 'APP: expected "module:attr" or "module:factory()", got "main"'),
        ({"http.max_body_size": "huge"}, "http.max_body_size: expected a positive size in bytes"),
    ],
)
def test_bad_overrides_name_the_flag(overrides: dict[str, object], message: str) -> None:
    assert override_error(overrides).startswith(message)


def test_an_override_can_break_an_invariant() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, {"websocket.broadcast.backend": "redis"})
    assert str(info.value) == "websocket.broadcast.backend: the redis backend needs a url"


def test_unknown_override_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"no setting 'server\.wokers' to override"):
        load_config(None, {"server.wokers": "2"})
    with pytest.raises(ValueError, match="no setting 'server' to override"):
        load_config(None, {"server": {}})
