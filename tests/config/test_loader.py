"""Reading files: YAML errors, keys, lines, ``${ENV}`` in files, defaults, merge keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from covetd.config import BindAddress, Config, ConfigError, load_config

Loader = Callable[..., Config]  # the ``load`` fixture of conftest.py
ErrorOf = Callable[..., str]  # the ``error_of`` fixture

# --- defaults and files ----------------------------------------------------------------


def test_no_file_means_defaults() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.source is None
    assert config.app is None
    assert config.server.bind == (BindAddress("tcp", host="127.0.0.1", port=8000),)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", "~\n"])
def test_empty_file_means_defaults(load: Loader, text: str) -> None:
    config = load(text)
    assert config == Config()
    assert config.source == "c.yaml"


def test_null_sections_mean_defaults(load: Loader) -> None:
    config = load("server:\nhttp:\nmiddleware:\ndatabase:\n")
    assert config == Config()


def test_source_is_the_path_as_given(load: Loader) -> None:
    assert load("app: main:app\n").source == "c.yaml"


def test_missing_file(in_tmp: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("nope.yaml")
    assert str(info.value) == "nope.yaml: cannot read the config file: No such file or directory"


def test_file_that_is_not_utf8(in_tmp: Path) -> None:
    Path("c.yaml").write_bytes(b"app: main:app\nserver:\n  user: \xff\n")
    with pytest.raises(ConfigError) as info:
        load_config("c.yaml")
    assert str(info.value) == "c.yaml:3: the file is not UTF-8 text"


def test_environ_defaults_to_os_environ(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVETD_TEST_WORKERS", "7")
    Path("c.yaml").write_text("server: {workers: '${COVETD_TEST_WORKERS}'}\n")
    with pytest.raises(ConfigError, match='got "7"'):
        load_config("c.yaml")
    Path("c.yaml").write_text("server:\n  workers: ${COVETD_TEST_WORKERS}\n")
    assert load_config("c.yaml").server.workers == 7


# --- YAML syntax -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "app: x\nserver:\n  workers: 2\n bind: y\n",
            "c.yaml:4: invalid YAML: while parsing a block mapping, expected <block end>, "
            "but found '<block mapping start>'",
        ),
        ("app: x\nserver:\n  workers 2\n  bind: y\n", "c.yaml:4: invalid YAML: mapping values"),
        ("app: x\nserver:\n\tworkers: 2\n", "c.yaml:3: invalid YAML: while scanning for the next"),
        ("app: x\nserver: {workers: 2\nhttp: {}\n", "c.yaml:3: invalid YAML: while parsing a flow"),
        ('app: "x\nserver: 1\n', "c.yaml:3: invalid YAML: while scanning a quoted scalar"),
        (
            "app: x\n---\napp: y\n",
            "c.yaml:2: invalid YAML: expected a single document in the stream, "
            "but found another document",
        ),
        (
            "app: x\nserver: \x07\n",
            "c.yaml:2: invalid YAML: unacceptable character #x0007: special characters",
        ),
        # an unquoted ${...} cannot sit inside a {flow mapping}: YAML reads "{" there
        ("app: x\nmiddleware:\n  - cors: {a: ${X}}\n", "c.yaml:3: invalid YAML:"),
    ],
)
def test_yaml_syntax_errors_carry_their_line(error_of: ErrorOf, text: str, expected: str) -> None:
    assert error_of(text).startswith(expected)


def test_top_level_must_be_a_mapping(error_of: ErrorOf) -> None:
    assert error_of("- app\n") == "c.yaml:1: expected a mapping at the top level, got a list"
    assert error_of("just text\n") == "c.yaml:1: expected a mapping at the top level, got a scalar"


def test_sections_must_be_mappings(error_of: ErrorOf) -> None:
    assert (
        error_of("app: main:app\nserver: 5\n")
        == "c.yaml:2: server: expected a mapping, got a scalar"
    )
    assert (
        error_of("http:\n  proxy_headers: [1]\n")
        == "c.yaml:2: http.proxy_headers: expected a mapping, got a list"
    )


def test_unknown_yaml_tag(error_of: ErrorOf) -> None:
    message = error_of("server:\n  workers: !custom 3\n")
    assert message.startswith(
        "c.yaml:2: server.workers: cannot read this value: could not determine"
    )
    assert error_of("app: !custom main:app\n").startswith("c.yaml:1: app: cannot read this value")


# --- keys ------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_a_near_spelling(error_of: ErrorOf) -> None:
    assert (
        error_of("app: main:app\nsrever: {}\n")
        == 'c.yaml:2: srever: unknown key (did you mean "server"?)'
    )


def test_unknown_nested_key_suggests_a_near_spelling(error_of: ErrorOf) -> None:
    text = """\
        app: main:app
        server:
          wokers: 4
        """
    assert error_of(text) == 'c.yaml:3: server.wokers: unknown key (did you mean "workers"?)'


def test_unknown_key_three_levels_down(error_of: ErrorOf) -> None:
    text = """\
        http:
          proxy_headers:
            trustd: ["10.0.0.0/8"]
        """
    assert error_of(text) == (
        'c.yaml:3: http.proxy_headers.trustd: unknown key (did you mean "trusted"?)'
    )


def test_unknown_key_in_a_database_pool(error_of: ErrorOf) -> None:
    text = """\
        database:
          default:
            dsn: postgres://db/app
            max_sise: 3
        """
    assert error_of(text) == (
        'c.yaml:4: database.default.max_sise: unknown key (did you mean "max_size"?)'
    )


def test_unknown_key_that_belongs_to_another_section(error_of: ErrorOf) -> None:
    assert (
        error_of("workers: 4\n")
        == 'c.yaml:1: workers: unknown key (did you mean "server.workers"?)'
    )
    assert error_of("http:\n  trusted: ['*']\n") == (
        'c.yaml:2: http.trusted: unknown key (did you mean "http.proxy_headers.trusted"?)'
    )
    assert (
        error_of("server:\n  tls: {}\n")
        == 'c.yaml:2: server.tls: unknown key (did you mean "tls"?)'
    )


def test_unknown_key_without_a_likely_meaning_lists_the_keys(error_of: ErrorOf) -> None:
    assert error_of("hooks:\n  zzz: 1\n") == (
        "c.yaml:2: hooks.zzz: unknown key (expected one of: "
        "on_starting, on_reload, worker_started, worker_exited)"
    )


def test_duplicate_keys(error_of: ErrorOf) -> None:
    assert error_of("app: a:b\nserver: {}\napp: c:d\n") == (
        "c.yaml:3: app: duplicate key (first set on line 1)"
    )
    text = """\
        server:
          workers: 2
          backlog: 10
          workers: 3
        """
    assert error_of(text) == "c.yaml:4: server.workers: duplicate key (first set on line 2)"


def test_duplicate_keys_in_middleware_options(error_of: ErrorOf) -> None:
    text = """\
        middleware:
          - cors:
              allow_origins: []
              allow_origins: []
        """
    assert error_of(text) == (
        "c.yaml:4: middleware[0].cors.allow_origins: duplicate key (first set on line 3)"
    )


def test_keys_must_be_strings(error_of: ErrorOf) -> None:
    assert error_of("1: x\n") == "c.yaml:1: keys must be strings"
    assert error_of("server:\n  true: 1\n") == "c.yaml:2: server: keys must be strings"


# --- values and their lines ------------------------------------------------------------


def test_wrong_type(error_of: ErrorOf) -> None:
    text = """\
        app: main:app
        server:
          bind: 127.0.0.1:8000
          workers: many
        """
    assert error_of(text) == (
        'c.yaml:4: server.workers: expected a positive integer or "auto", got "many"'
    )


def test_bad_list_item_is_reported_at_its_own_line(error_of: ErrorOf) -> None:
    text = """\
        server:
          bind:
            - 127.0.0.1:8000
            - nowhere
        """
    assert error_of(text).startswith('c.yaml:4: server.bind[1]: expected "host:port"')


def test_value_on_the_line_after_its_key(error_of: ErrorOf) -> None:
    text = """\
        server:
          backlog:
            0
        """
    assert error_of(text) == "c.yaml:3: server.backlog: expected a positive integer, got 0"


# --- ${ENV} in files -------------------------------------------------------------------


def test_env_in_an_unquoted_value_is_typed_like_yaml(load: Loader) -> None:
    text = """\
        server:
          workers: ${WORKERS:-2}
          preload: ${PRELOAD:-false}
          pidfile: ${PIDFILE:-}
          graceful_timeout: ${GRACE:-1.5}
        """
    config = load(text)
    assert (config.server.workers, config.server.preload) == (2, False)
    assert (config.server.pidfile, config.server.graceful_timeout) == (None, 1.5)
    config = load(text, env={"WORKERS": "8", "PRELOAD": "true", "PIDFILE": "/run/c.pid"})
    assert (config.server.workers, config.server.preload) == (8, True)
    assert config.server.pidfile == "/run/c.pid"


def test_env_in_a_quoted_value_stays_a_string(error_of: ErrorOf, load: Loader) -> None:
    assert error_of('server:\n  workers: "${WORKERS:-2}"\n') == (
        'c.yaml:2: server.workers: expected a positive integer or "auto", got "2"'
    )
    assert load('http: {max_body_size: "${LIMIT:-1MiB}"}\n').http.max_body_size == 1024**2


def test_text_settings_keep_the_text_of_env_values(load: Loader) -> None:
    text = """\
        server:
          user: ${RUN_AS}
          group: 1000
        tls:
          password: ${KEY_PASSWORD}
        """
    config = load(text, env={"RUN_AS": "1000", "KEY_PASSWORD": "0123"})
    assert (config.server.user, config.server.group) == ("1000", "1000")
    assert config.tls.password == "0123"  # not YAML 1.1's octal 83


def test_dollar_dollar_is_a_literal_dollar(load: Loader) -> None:
    config = load('http: {server_header: "price $$5"}\ntls: {password: pa$word}\n')
    assert config.http.server_header == "price $5"
    assert config.tls.password == "pa$word"


def test_env_inside_a_string_and_with_a_default(load: Loader) -> None:
    text = """\
        database:
          default:
            dsn: postgres://${DB_USER:-app}@${DB_HOST}/app
        """
    pool = load(text, env={"DB_HOST": "db.internal"}).database["default"]
    assert pool.dsn == "postgres://app@db.internal/app"


def test_missing_env_var_names_file_line_and_key(error_of: ErrorOf) -> None:
    text = """\
        app: main:app
        server:
          workers: ${WORKERS:-2}
        database:
          default:
            min_size: 1
            dsn: ${DATABASE_URL}
        """
    assert error_of(text) == (
        "c.yaml:7: database.default.dsn: environment variable DATABASE_URL is not set "
        "(write ${DATABASE_URL:-...} to give a default)"
    )


def test_missing_env_var_in_a_list_item_and_in_middleware_options(error_of: ErrorOf) -> None:
    assert error_of("server:\n  bind:\n    - 127.0.0.1:1\n    - ${BIND2}\n").startswith(
        "c.yaml:4: server.bind[1]: environment variable BIND2 is not set"
    )
    text = """\
        middleware:
          - sessions:
              secret_key: ${SESSION_SECRET}
        """
    assert error_of(text).startswith(
        "c.yaml:3: middleware[0].sessions.secret_key: environment variable SESSION_SECRET"
    )


def test_malformed_reference(error_of: ErrorOf) -> None:
    assert error_of("tls:\n  password: ${oops\n") == (
        'c.yaml:2: tls.password: "${" is not closed by "}" (write "$$" for a literal "$")'
    )


def test_env_values_are_not_parsed_as_yaml_structure(load: Loader) -> None:
    config = load("tls:\n  password: ${PW}\n", env={"PW": "[a, b]: {c"})
    assert config.tls.password == "[a, b]: {c"


# --- anchors and merge keys ------------------------------------------------------------


def test_merge_keys_share_settings_and_own_keys_win(load: Loader) -> None:
    text = """\
        database:
          default: &pool
            dsn: postgres://primary/app
            max_size: 20
            command_timeout: 5
          replica:
            <<: *pool
            dsn: postgres://replica/app
        """
    pools = load(text).database
    assert pools["replica"].dsn == "postgres://replica/app"
    assert (pools["replica"].max_size, pools["replica"].command_timeout) == (20, 5.0)


def test_merge_of_a_list_of_mappings_prefers_the_first(load: Loader) -> None:
    config = load("server:\n  <<: [{workers: 3}, {workers: 4, backlog: 5}]\n")
    assert (config.server.workers, config.server.backlog) == (3, 5)


def test_merge_of_a_scalar_is_an_error(error_of: ErrorOf) -> None:
    assert error_of("server:\n  <<: 5\n") == (
        "c.yaml:2: server: << must merge a mapping or a list of mappings"
    )


def test_self_including_merge_is_an_error(error_of: ErrorOf) -> None:
    assert error_of("server: &s\n  <<: *s\n  workers: 2\n") == (
        "c.yaml:1: server: a YAML merge (<<) includes itself"
    )


def test_self_referencing_alias_is_an_error(error_of: ErrorOf) -> None:
    message = error_of("middleware:\n  - cors: &o {nested: *o}\n")
    assert message == "c.yaml:2: middleware[0].cors.nested: a YAML alias refers to itself"


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({"origin": "c.yaml", "line": 3, "key": "a.b"}, "c.yaml:3: a.b: oops"),
        ({"origin": "c.yaml", "line": 3}, "c.yaml:3: oops"),
        ({"origin": "c.yaml"}, "c.yaml: oops"),
        ({"origin": "-w/--workers"}, "-w/--workers: oops"),
        ({"key": "a.b"}, "a.b: oops"),
        ({}, "oops"),
    ],
)
def test_config_error_is_one_line(kwargs: dict[str, object], text: str) -> None:
    error = ConfigError("oops", **kwargs)  # type: ignore[arg-type]
    assert str(error) == text
    assert error.message == "oops"


def test_config_error_message_is_flattened_to_one_line() -> None:
    assert str(ConfigError("two\nlines", origin="c.yaml", line=1)) == "c.yaml:1: two lines"
