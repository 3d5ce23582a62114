"""TTIN / TTOU under load (issue 3: "TTIN/TTOU under load: 0 failed requests, worker
count follows").

The worker count is read from /proc (live children of the master). With per-slot
SO_REUSEPORT sockets, TTOU must hand the retired slot's socket to a remaining worker
and TTIN must take it back (or bind a new one): fresh-connection probes land on every
listening socket of the port, so a socket nobody accepts on shows up as timeouts.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from support.churn import Churn
from support.load import Load, report
from support.master import Master, probe_connections
from support.process import wait_for

CLIENTS = 32
PROBES = 40  # new connections: each socket of the port gets some (all but 2**-39 sure)


def assert_all_serve(server: Master, workers: set[int]) -> None:
    """Fresh connections are all answered, by every one of ``workers`` and only them."""
    probe = probe_connections(server.port, PROBES)
    assert not probe.failures, f"{probe}\n{server.log_tail()}"
    assert set(map(int, probe.pids)) == workers, (probe.pids, workers)


def test_ttou_down_to_one_then_ttin_back_under_load(master: Callable[..., Master]) -> None:
    server = master({"server": {"workers": 2}})
    with (
        Load(server.port, clients=CLIENTS) as load,
        Churn(server.port, requests_per_connection=10) as churn,
    ):
        load.wait_for_requests(200)
        server.signal(signal.SIGTTOU)
        only = server.wait_workers(1)
        assert_all_serve(server, only)

        server.signal(signal.SIGTTIN)
        two = server.wait_workers(2)
        assert only < two
        assert_all_serve(server, two)

        server.signal(signal.SIGTTIN)
        three = server.wait_workers(3)
        assert two < three
        assert_all_serve(server, three)

        server.signal(signal.SIGTTOU)
        back = server.wait_workers(2)
        assert back < three
        assert_all_serve(server, back)
        load.wait_for_requests(200)
    report("TTOU/TTIN under load", load.result, churn.result)
    assert load.result.failed == 0, f"{load.result}\n{server.log_tail()}"
    assert churn.result.failed == 0, f"{churn.result}\n{server.log_tail()}"
    log = server.log()
    assert "TTOU: 1 workers" in log and "TTIN: 3 workers" in log
    assert "Traceback" not in log
    assert "graceful timeout" not in log, "a draining worker had to cut requests"
    server.stop()


def test_ttin_and_ttou_together_leave_every_socket_served(
    master: Callable[..., Master],
) -> None:
    """After a TTOU, slot 0's worker holds two sockets; TTIN then TTOU in one go makes
    the master send it ``release`` and then ``adopt`` (with the descriptor) for the
    same socket, back to back. Sent in this order, the signals are handled in this
    order (TTIN is also the lower number), so one worker remains, on every socket."""
    server = master({"server": {"workers": 2}})
    with Load(server.port, clients=CLIENTS) as load:
        load.wait_for_requests(200)
        server.signal(signal.SIGTTOU)
        only = server.wait_workers(1)
        server.signal(signal.SIGTTIN)
        server.signal(signal.SIGTTOU)
        wait_for(lambda: server.log().count("TTOU: 1 workers") == 2, 10, 0.02, "both handled")
        assert server.wait_workers(1) == only
        load.wait_for_requests(200)
        assert_all_serve(server, only)
    report("TTIN+TTOU together", load.result)
    assert load.result.failed == 0, f"{load.result}\n{server.log_tail()}"
    assert "Traceback" not in server.log(), server.log_tail()
    server.stop()
