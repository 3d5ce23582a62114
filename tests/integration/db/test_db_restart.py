"""PostgreSQL restarted under load (issue 6): requests fail fast with 503 during the
outage and succeed again afterwards, without restarting covetd; each worker's log says
"down" once and "up again" once, however many requests failed in between.

The database is a throwaway server of this test (support/pgcluster.py), stopped with
a fast shutdown (sessions ended, as in a restart) and started again on its port.
"""

from __future__ import annotations

import re

from support.load import Load
from support.pgcluster import PgCluster
from support.pgquery import sessions
from support.process import wait_for
from support.workers import worker_pids

WORKERS = 2
DOWN = re.compile(r"^\[[^]]+\] \[(\d+)\] \[ERROR\] database pool 'default' is down: ", re.M)
UP = re.compile(r"^\[[^]]+\] \[(\d+)\] \[WARNING\] database pool 'default' is up again$", re.M)


def test_requests_fail_fast_during_a_restart_and_recover_without_covetd_restarting(
    covetd,
) -> None:
    with PgCluster() as pg:
        database = {"default": {"dsn": pg.dsn, "min_size": 2, "max_size": 4, "acquire_timeout": 2}}
        server = covetd("db_covet:app", {"server": {"workers": WORKERS}, "database": database})
        workers = wait_for(
            lambda: len(w := worker_pids(server.proc.pid)) == WORKERS and w, what="workers"
        )
        # Every worker booted (its eager pool is open) before the outage begins.
        wait_for(
            lambda: all(sessions(pg.dsn, f"covetd worker {pid}") == 2 for pid in workers),
            what="each worker's pool open",
        )
        # Clients time out after 1.5 s: a request that hung through the outage (instead
        # of failing fast) counts as a "timeout" failure.
        with Load(server.port, clients=8, path="/value", timeout=1.5) as load:
            load.wait_for_requests(200)
            assert load.result.failed == 0, load.result
            pg.stop()
            wait_for(
                lambda: load.result.failures["status:503"] >= 100,
                20,
                what="503s during the outage",
            )
            ok_during_outage = load.result.ok
            wait_for(
                lambda: {int(p) for p in DOWN.findall(server.log())} == workers,
                20,
                what="every worker to log the outage",
            )
            pg.start()
            load.wait_for_requests(300)
        result = load.result
        assert result.ok > ok_during_outage + 300
        assert set(result.failures) == {"status:503"}, result.failures
        wait_for(
            lambda: {int(p) for p in UP.findall(server.log())} == workers,
            20,
            what="every worker to log the recovery",
        )
        log = server.log()
        assert server.proc.poll() is None, log
        assert worker_pids(server.proc.pid) == workers, "a worker was restarted"
        for pid in workers:
            assert DOWN.findall(log).count(str(pid)) == 1, log
            assert UP.findall(log).count(str(pid)) == 1, log
        assert "Traceback" not in log, log
