"""The ``access_log`` middleware against real covetd processes: JSON lines, gunicorn
format atoms (headers included), secrets masked, file output reopened on USR1 after
rotation, Covet and Starlette apps, streams logged once they ended."""

from __future__ import annotations

import base64
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support.probe import fetch, request
from support.process import REPO, TEST_APPS, Covetd, wait_for
from support.rawhttp import RawConnection

from covetd.config.fields import Setting, field_specs
from covetd.middleware.access_log import AccessLogMiddleware

sys.path.insert(0, str(TEST_APPS))
from mw_access_app import parts_size

COVET = "mw_access_app:app"
STARLETTE = "mw_access_app:starlette_app"
JSON_FIELDS = {
    "ts", "pid", "request_id", "client", "method", "path", "query", "version", "status",
    "bytes", "duration_ms", "user_agent", "referer",
}  # fmt: skip
ATOM_NAMES = "h l u t r m U q H s B b f a T M D L p".split()  # noqa: SIM905
ALL_ATOMS = "|".join(
    [
        *(f"%({atom})s" for atom in ATOM_NAMES),
        "%({x-test}i)s",
        "%({X-Custom}o)s",
        "%({authorization}i)s",
        "%({cookie}i)s",
        "%({set-cookie}o)s",
        "%({proxy-authorization}i)s",
        "%({x-missing}i)s",
        "100%%",
    ]
)
PROBE = "/__probe__"  # what the covetd fixture requests until the server answers
BASIC = "Basic " + base64.b64encode(b"alice:hunter2").decode()

Start = Callable[..., Covetd]


def start(covetd: Start, app: str, options: dict[str, Any], *chain: Any, **config: Any) -> Covetd:
    """A server whose middleware is ``access_log`` with ``options``, then ``chain``."""
    return covetd(app, {"middleware": [{"access_log": options}, *chain], **config})


def lines(path: Path) -> list[str]:
    """The lines of ``path``, less those of the fixture's readiness probes."""
    text = path.read_text() if path.exists() else ""
    return [line for line in text.splitlines() if PROBE not in line]


def wait_lines(path: Path, count: int) -> list[str]:
    """Exactly ``count`` lines once they are all there (none written twice)."""
    found = wait_for(lambda: len(lines(path)) >= count and lines(path), what=f"{count} lines")
    assert len(found) == count, found
    return list(found)


def stdout_entries(server: Covetd) -> list[dict[str, Any]]:
    """The JSON access lines in the server's output (the error log there is text)."""
    output = server.log().splitlines()
    return [json.loads(line) for line in output if line.startswith("{") and PROBE not in line]


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


# -- JSON -------------------------------------------------------------------------------


def test_json_lines_on_stdout_carry_every_field(covetd: Start) -> None:
    server = start(covetd, COVET, {})
    before = time.time()
    headers = {"User-Agent": "probe/1.0", "Referer": "https://example.com/from"}
    response = httpx.get(server.url + "/hello?x=1&y=%20z", headers=headers)
    assert response.text == "hello"
    [entry] = wait_for(lambda: stdout_entries(server), what="an access line")
    assert set(entry) == JSON_FIELDS
    assert entry["method"] == "GET"
    assert entry["path"] == "/hello"
    assert entry["query"] == "x=1&y=%20z"
    assert entry["version"] == "1.1"
    assert (entry["status"], entry["bytes"]) == (200, 5)
    assert entry["client"] == "127.0.0.1"
    assert (entry["user_agent"], entry["referer"]) == ("probe/1.0", "https://example.com/from")
    assert entry["request_id"] is None
    assert isinstance(entry["duration_ms"], float) and 0 <= entry["duration_ms"] < 5000
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])
    logged = time.mktime(time.strptime(entry["ts"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert before - 1 <= logged <= time.time()
    assert entry["pid"] != server.proc.pid and parent_pid(entry["pid"]) == server.proc.pid


@pytest.mark.parametrize("app", [COVET, STARLETTE])
def test_logging_access_log_turns_it_on_without_a_middleware_entry(
    covetd: Start, tmp_path: Path, app: str
) -> None:
    # DESIGN section 4: logging.access_log (default true) needs no middleware entry.
    target = tmp_path / "access.log"
    logging = {"access_log": True, "access_log_file": str(target), "format": "json"}
    server = covetd(app, {"logging": logging})
    assert httpx.get(server.url + "/hello").status_code == 200
    [line] = wait_lines(target, 1)
    entry = json.loads(line)
    assert (entry["path"], entry["status"]) == ("/hello", 200)


def test_logging_access_log_text_format_is_combined(covetd: Start, tmp_path: Path) -> None:
    target = tmp_path / "access.log"
    logging = {"access_log": True, "access_log_file": str(target), "format": "text"}
    server = covetd(COVET, {"logging": logging})
    assert httpx.get(server.url + "/hello").status_code == 200
    [line] = wait_lines(target, 1)
    assert re.fullmatch(
        r'127\.0\.0\.1 - - \[.+\] "GET /hello HTTP/1\.1" 200 5 "-" "python-httpx/.+"', line
    )


def test_a_middleware_entry_wins_over_logging_access_log(covetd: Start, tmp_path: Path) -> None:
    mine, default = tmp_path / "mine.log", tmp_path / "default.log"
    logging = {"access_log": True, "access_log_file": str(default)}
    server = start(covetd, COVET, {"output": str(mine), "format": "common"}, logging=logging)
    assert httpx.get(server.url + "/hello").status_code == 200
    [line] = wait_lines(mine, 1)
    assert '"GET /hello HTTP/1.1" 200 5' in line
    assert not default.exists()


def test_one_line_per_request_whatever_the_response(covetd: Start, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, COVET, {"output": str(log)}, {"mw_access_app:Explode": {}})
    with httpx.Client(base_url=server.url) as client:  # one keep-alive connection
        assert client.get("/stream?n=4").text.startswith("part 0")
        assert client.head("/hello").status_code == 200
        assert client.head("/stream?n=4").status_code == 200
        assert client.get("/nowhere").status_code == 404
        assert client.get("/explode").status_code == 500
        assert client.get("/hello", headers={"User-Agent": ""}).text == "hello"
    entries = [json.loads(line) for line in wait_lines(log, 6)]
    summary = [(e["method"], e["path"], e["status"], e["bytes"]) for e in entries]
    assert summary == [
        ("GET", "/stream", 200, parts_size(4)),
        ("HEAD", "/hello", 200, 0),
        ("HEAD", "/stream", 200, 0),
        ("GET", "/nowhere", 404, entries[3]["bytes"]),
        ("GET", "/explode", 500, 0),
        ("GET", "/hello", 200, 5),
    ]
    assert entries[3]["bytes"] > 0
    assert entries[5]["user_agent"] == ""
    assert "exploded on purpose" in server.log()  # the engine's error log, not ours
    assert not stdout_entries(server)


@pytest.mark.parametrize("app", [COVET, STARLETTE])
def test_a_stream_is_logged_when_it_ended(covetd: Start, tmp_path: Path, app: str) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, app, {"output": str(log)})
    with RawConnection(server.host, server.port) as conn:
        conn.send(request("/stream?n=50"))
        response = conn.read_response()
    assert response.header("transfer-encoding") == "chunked"
    assert len(response.body) == parts_size(50)
    [line] = wait_lines(log, 1)
    entry = json.loads(line)
    assert (entry["path"], entry["status"], entry["bytes"]) == ("/stream", 200, parts_size(50))
    plain = httpx.get(server.url + "/hello")
    [_, line] = wait_lines(log, 2)
    assert json.loads(line)["bytes"] == len(plain.content)


@pytest.mark.parametrize("order", ["access_log first", "request_id first"])
def test_the_request_id_is_the_request_id_middlewares(
    covetd: Start, tmp_path: Path, order: str
) -> None:
    log = tmp_path / "access.log"
    chain: list[Any] = [{"access_log": {"output": str(log)}}, {"request_id": {}}]
    if order == "request_id first":
        chain.reverse()
    server = covetd(COVET, {"middleware": chain})
    ids = [httpx.get(server.url + "/hello").headers["x-request-id"] for _ in range(2)]
    assert ids[0] != ids[1]
    assert [json.loads(line)["request_id"] for line in wait_lines(log, 2)] == ids


def test_the_duration_covers_the_handler(covetd: Start, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, COVET, {"output": str(log), "format": "%(U)s %(T)s %(M)s %(D)s %(L)s"})
    assert httpx.get(server.url + "/sleep?s=0.05").text == "slept"
    path, seconds, millis, micros, decimal = wait_lines(log, 1)[0].split()
    assert path == "/sleep"
    assert seconds == "0"
    assert 50 <= int(millis) < 5000
    assert 50_000 <= int(micros) < 5_000_000
    assert re.fullmatch(r"0\.\d{6}", decimal) and int(micros) == int(decimal[2:])


# -- format strings ---------------------------------------------------------------------


@pytest.mark.parametrize("app", [COVET, STARLETTE])
def test_every_format_atom(covetd: Start, tmp_path: Path, app: str) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, app, {"output": str(log), "format": ALL_ATOMS})
    path = "/cookie/caf%C3%A9" if app == COVET else "/hello"
    headers = {
        "X-Test": "test-value",
        "Authorization": BASIC,
        "Proxy-Authorization": "Bearer proxy-token",
        "Cookie": "sid=client-secret",
        "Referer": "https://example.com/r",
        "User-Agent": "probe/2",
    }
    response = httpx.get(f"{server.url}{path}?a=1&b=2", headers=headers)
    assert response.status_code == 200
    [text] = wait_lines(log, 1)
    atoms = text.split("|")
    names = "h l u t r m U q H s B b f a T M D L p x-test X-Custom auth cookie set-cookie proxy"
    values = dict(zip([*names.split(), "missing", "percent"], atoms, strict=True))
    assert values["h"] == "127.0.0.1"
    assert (values["l"], values["u"]) == ("-", "alice")
    assert re.fullmatch(r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", values["t"])
    assert values["r"] == f"GET {path}?a=1&b=2 HTTP/1.1"
    assert (values["m"], values["q"], values["H"], values["s"]) == (
        "GET",
        "a=1&b=2",
        "HTTP/1.1",
        "200",
    )
    assert values["U"] == ("/cookie/café" if app == COVET else "/hello")
    assert values["B"] == values["b"] == str(len(response.content))
    assert (values["f"], values["a"]) == ("https://example.com/r", "probe/2")
    assert values["T"] == "0" and values["M"].isdigit() and values["D"].isdigit()
    assert re.fullmatch(r"\d+\.\d{6}", values["L"])
    assert values["p"].startswith("<") and values["p"].endswith(">")
    assert parent_pid(int(values["p"][1:-1])) == server.proc.pid
    assert values["x-test"] == "test-value"
    assert values["X-Custom"] == ("custom-value" if app == COVET else "-")
    assert values["auth"] == values["cookie"] == values["proxy"] == values["missing"] == "-"
    assert values["set-cookie"] == "-"
    assert values["percent"] == "100%"
    for secret in ("hunter2", "client-secret", "server-secret", "proxy-token", BASIC[6:]):
        assert secret not in text


@pytest.mark.parametrize(
    ("preset", "pattern"),
    [
        ("combined", r'127\.0\.0\.1 - - \[[^]]+\] "GET /hello\?q=1 HTTP/1\.1" 200 5 "-" "probe/3"'),
        ("common", r'127\.0\.0\.1 - - \[[^]]+\] "GET /hello\?q=1 HTTP/1\.1" 200 5'),
    ],
)  # fmt: skip
def test_gunicorn_presets(covetd: Start, tmp_path: Path, preset: str, pattern: str) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, COVET, {"output": str(log), "format": preset})
    assert httpx.get(server.url + "/hello?q=1", headers={"User-Agent": "probe/3"}).text == "hello"
    assert re.fullmatch(pattern, wait_lines(log, 1)[0])


def test_request_text_cannot_forge_a_line(covetd: Start, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, COVET, {"output": str(log), "format": "combined"})
    evil = 'x" 200 5 "-" "forged\tua\\'
    response = fetch(server, request("/hello", headers=f"User-Agent: {evil}\r\n"))
    assert response.status == 200
    [line] = wait_lines(log, 1)
    assert line.endswith(r'"x\" 200 5 \"-\" \"forged\x09ua\\"')


def test_secret_headers_are_configurable(covetd: Start, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    options = {
        "output": str(log),
        "format": "%(U)s|%({cookie}i)s|%({x-api-key}i)s|%({authorization}i)s|%({set-cookie}o)s",
        "unmask_headers": ["Cookie", "set-cookie"],
        "mask_headers": ["X-Api-Key"],
    }
    server = start(covetd, COVET, options)
    headers = {"Cookie": "sid=shown", "X-Api-Key": "hidden-key", "Authorization": "Bearer t0k"}
    assert httpx.get(server.url + "/cookie/a", headers=headers).status_code == 200
    path, cookie, key, authorization, set_cookie = wait_lines(log, 1)[0].split("|")
    assert path == "/cookie/a"
    assert (cookie, key, authorization) == ("sid=shown", "-", "-")
    assert set_cookie.startswith("session=server-secret")


# -- files and USR1 ---------------------------------------------------------------------


def pids(path: Path) -> set[int]:
    return {json.loads(line)["pid"] for line in lines(path)}


def test_usr1_reopens_the_file_after_rotation(covetd: Start, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, COVET, {"output": str(log)}, server={"workers": 2})
    sent = 0

    def hit() -> None:
        nonlocal sent
        assert httpx.get(server.url + "/hello", headers={"Connection": "close"}).text == "hello"
        sent += 1

    def all_workers_wrote(path: Path) -> Callable[[], bool]:
        def check() -> bool:
            hit()
            return len(pids(path)) == 2

        return check

    wait_for(all_workers_wrote(log), 20, what="lines from both workers")
    rotated = tmp_path / "access.log.1"
    log.rename(rotated)  # logrotate's move; the workers still write to the moved file
    hit()
    # A line is written at the end of the loop iteration that answered: just after.
    wait_for(lambda: len(lines(rotated)) == sent, 10, what="the last line in the moved file")
    assert not log.exists()
    server.signal(signal.SIGUSR1)
    wait_for(all_workers_wrote(log), 20, what="both workers writing the reopened file")
    assert pids(rotated) == pids(log)
    assert len(lines(rotated)) + len(lines(log)) == sent  # none lost, none twice
    assert all(line.startswith('{"ts": ') for line in lines(rotated) + lines(log))


def test_check_config_creates_no_file_and_rejects_bad_options(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    assert check_config(tmp_path, {"access_log": {"output": str(log)}}).returncode == 0
    assert not log.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "%(h)s %(nope)s"}, "format: unknown atom %(nope)s"),
        ({"format": "%(h)s 100%"}, "format: a lone % at offset 9"),
        ({"format": "%(s)d"}, "format: a lone % at offset 0"),
        ({"output": "/nonexistent-dir/a.log"}, 'output: directory not found: "/nonexistent-dir"'),
        ({"output": "/tmp"}, 'output: "/tmp" is a directory'),
        ({"mask_headers": "x-key"}, "mask_headers: expected a list of header names"),
    ],
)  # fmt: skip
def test_bad_options_are_reported_with_file_and_line(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    result = check_config(tmp_path, {"access_log": options})
    assert result.returncode == 1
    assert f"{tmp_path / 'covetd.yaml'}:" in result.stderr
    assert f"middleware.access_log.{message}" in result.stderr


def check_config(tmp_path: Path, entry: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "covetd.yaml"
    config.write_text(
        yaml.safe_dump({"app": COVET, "app_dir": str(TEST_APPS), "middleware": [entry]})
    )
    return subprocess.run(
        [sys.executable, "-m", "covetd", "-c", str(config), "--check-config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_every_option_is_documented_with_its_default() -> None:
    doc = (REPO / "docs/middleware/access_log.md").read_text()
    rows = {row.split("|")[1].strip(): row for row in doc.splitlines() if row.startswith("| `")}
    for name, spec in field_specs(AccessLogMiddleware.Options):
        assert isinstance(spec, Setting)
        default = spec.type.dump(spec.type.parse(spec.default))
        shown = "[]" if default == [] else default
        assert f"| `{shown}` |" in rows[f"`{name}`"], name
    for atom in ATOM_NAMES:
        assert f"| `%({atom})s` |" in doc, atom


def test_bytes_are_those_sent_after_compression(covetd: Start, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, COVET, {"output": str(log)}, {"compression": {}})
    response = fetch(server, request("/stream?n=40", headers="Accept-Encoding: gzip\r\n"))
    assert response.header("content-encoding") == "gzip"
    [line] = wait_lines(log, 1)
    assert json.loads(line)["bytes"] == len(response.body) < parts_size(40)


# -- requests the engine refuses ------------------------------------------------------


def test_requests_the_engine_refuses_are_logged_too(covetd: Start, tmp_path: Path) -> None:
    """A smuggling attempt (400), a body over the limit (413) and an oversize head (431)
    never reach the middleware chain, yet they are logged, as nginx logs its 400s."""
    log = tmp_path / "access.log"
    server = start(
        covetd, COVET, {"output": str(log)}, http={"max_headers": 10, "max_body_size": 100}
    )
    smuggling = (
        b"POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    too_large = b"PUT /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"
    too_many = b"GET /hello HTTP/1.1\r\nHost: a\r\n" + b"X-H: 1\r\n" * 20 + b"\r\n"
    for raw, status in ((smuggling, 400), (too_large, 413), (too_many, 431)):
        conn = RawConnection("127.0.0.1", server.port)
        conn.send(raw)
        assert conn.read_response().status == status
        conn.close()
    entries = [json.loads(line) for line in wait_lines(log, 3)]
    assert [entry["status"] for entry in entries] == [400, 413, 431]
    for entry in entries:
        assert set(entry) == JSON_FIELDS
        assert entry["client"] == "127.0.0.1" and entry["path"] == "-"
        assert entry["bytes"] == 0 and entry["duration_ms"] == 0
    # the method when the engine had read it (a head refused as a whole has none)
    assert [entry["method"] for entry in entries] == ["-", "PUT", "-"]


def test_refused_requests_in_a_text_format(covetd: Start, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = start(covetd, COVET, {"output": str(log), "format": "%(h)s %(r)s %(s)s %(b)s"})
    conn = RawConnection("127.0.0.1", server.port)
    conn.send(b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")  # two Host headers: 400
    assert conn.read_response().status == 400
    conn.close()
    assert wait_lines(log, 1) == ["127.0.0.1 - - HTTP/1.1 400 -"]  # method unknown here
