"""HUP reload under load (issue 3, scenarios "HUP 10 times" and "HUP after deploying
app code that fails at import; broken YAML on HUP").

A reload starts a new generation of workers and drains the old one only once every
new worker reported ready: no request fails, and the master never has fewer than N
ready workers. What the master reports over sd_notify is checked against that, and
which processes answer requests shows that each generation really took over.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from support.churn import Churn
from support.load import Load, report
from support.master import Master, served_pids, write_module
from support.process import wait_for
from support.slots import get

WORKERS = 2
RELOADS = 10
# Many keep-alive clients, and new connections all the time (Churn): at each reload,
# connections are accepted while old workers begin to drain, the race in which a
# worker can take in a connection after it has started draining.
CLIENTS = 32

APP = """\
import os

from covetd import Covet, Response

app = Covet()
VERSION = {version!r}


@app.get("/")
async def index() -> Response:
    headers = {{"x-worker-pid": str(os.getpid()), "x-app-version": VERSION}}
    return Response(VERSION, headers=headers, media_type="text/plain")
"""
BROKEN_APP = 'raise RuntimeError("this deploy is broken")\n'


def assert_never_below(master: Master, ready: int) -> None:
    """Every STATUS since the first READY=1 shows at least ``ready`` ready workers."""
    messages = [m for m in master.notify.messages() if m.sender == master.pid]
    first_ready = next(i for i, m in enumerate(messages) if "READY" in m.fields)
    for message in messages[first_ready:]:
        status = message.status()
        assert status is None or status[0] >= ready, (
            f"{message.fields} after READY=1; all: {master.notify.describe()}"
        )


def wait_drained(master: Master, old: set[int], timeout: float = 10.0) -> None:
    """The workers in ``old`` have all exited."""
    wait_for(lambda: not (master.workers() & old), timeout, 0.02, f"workers {old} to exit")


def test_ten_reloads_under_keep_alive_load_fail_no_request(
    master: Callable[..., Master],
) -> None:
    server = master({"server": {"workers": WORKERS}})
    served_by: list[set[int]] = []
    with (
        Load(server.port, clients=CLIENTS) as load,
        Churn(server.port, requests_per_connection=10) as churn,
    ):
        load.wait_for_requests(200)
        for generation in range(2, RELOADS + 2):
            old = server.workers()
            server.signal(signal.SIGHUP)
            server.wait_ready(generation)
            wait_drained(server, old)
            new = server.workers()
            assert len(new) == WORKERS and not new & old, (old, new)
            load.wait_for_requests(100)
            served_by.append(served_pids(load) & new)
        churn.wait_for_requests(10)
    report("10 HUPs under load", load.result, churn.result)
    assert load.result.failed == 0, f"{load.result}\n{server.log_tail()}"
    assert churn.result.failed == 0, f"{churn.result}\n{server.log_tail()}"
    assert all(served_by), f"a generation served nothing: {served_by}"
    assert_never_below(server, WORKERS)
    assert server.notify.count("RELOADING", server.pid) == RELOADS
    assert server.notify.statuses(server.pid)[-1] == (WORKERS, WORKERS, RELOADS + 1)
    assert "graceful timeout" not in server.log(), "a draining worker had to cut requests"
    server.stop()


def app_version(server: Master) -> str | None:
    return get(server.port, "/").header("x-app-version")


def test_reload_of_app_code_that_fails_at_import_is_aborted_then_a_fix_deploys(
    master: Callable[..., Master], tmp_path: Path
) -> None:
    write_module(tmp_path, "deployed_app", APP.format(version="v1"))
    server = master({"server": {"workers": WORKERS}}, app="deployed_app:app", app_dir=tmp_path)
    first = server.workers()
    with Load(server.port, clients=CLIENTS) as load:
        load.wait_for_requests(100)
        write_module(tmp_path, "deployed_app", BROKEN_APP)
        server.signal(signal.SIGHUP)
        server.wait_log("reload aborted")
        server.notify.wait_for(
            lambda messages: any("reload aborted" in m.fields.get("STATUS", "") for m in messages),
            what="STATUS naming the aborted reload",
        )
        assert server.wait_workers(WORKERS) == first
        load.wait_for_requests(200)
        assert served_pids(load) <= first
        assert app_version(server) == "v1"

        write_module(tmp_path, "deployed_app", APP.format(version="v2"))
        server.signal(signal.SIGHUP)
        server.wait_ready(generation=2)
        wait_drained(server, first)
        load.wait_for_requests(200)
        assert app_version(server) == "v2"
    result = load.result
    report("HUP of code failing at import", result)
    assert result.failed == 0, result
    assert "error while importing 'deployed_app': RuntimeError: this deploy is broken" in (
        server.log()
    )
    assert_never_below(server, WORKERS)
    server.stop()


def test_broken_yaml_on_reload_keeps_the_running_config_then_a_valid_change_applies(
    master: Callable[..., Master],
) -> None:
    server = master({"server": {"workers": WORKERS}, "http": {"server_header": "covetd-one"}})
    first = server.workers()
    valid = server.config_path.read_text()
    with Load(server.port, clients=CLIENTS) as load:
        load.wait_for_requests(100)
        server.config_path.write_text(valid + "http: {server_header: [unclosed\n")
        server.signal(signal.SIGHUP)
        refused = f"reload refused, keeping the running configuration: {server.config_path}:"
        server.wait_log(refused)
        assert "invalid YAML" in server.log().partition(refused)[2].splitlines()[0]
        load.wait_for_requests(100)
        assert get(server.port, "/").header("server") == "covetd-one"
        assert server.workers() == first
        server.notify.wait_for(
            lambda messages: any("reload refused" in m.fields.get("STATUS", "") for m in messages),
            what="STATUS naming the refused reload",
        )
        assert server.notify.statuses(server.pid)[-1][2] == 1, "no new generation"

        server.config_path.write_text(valid)
        server.write_config(lambda settings: settings["http"].update(server_header="covetd-two"))
        server.signal(signal.SIGHUP)
        server.wait_ready(generation=2)
        wait_drained(server, first)
        load.wait_for_requests(100)
        assert get(server.port, "/").header("server") == "covetd-two"
    result = load.result
    report("HUP of broken YAML", result)
    assert result.failed == 0, result
    assert_never_below(server, WORKERS)
    server.stop()
