"""A worker whose database is down is alive but not ready: the master's /readyz says
so while PostgreSQL is stopped, and turns 200 again when it is back; the pools' metrics
(connections by state, acquire waits, errors) appear on /metrics."""

from __future__ import annotations

import os
import signal

from support.metrics_server import http_get, start_metrics_server
from support.pgcluster import PgCluster
from support.process import wait_for

ACQUIRE_COUNT = "covetd_db_pool_acquire_seconds_count"


def test_readyz_follows_the_database_and_pool_metrics_are_exported() -> None:
    with PgCluster() as pg:
        database = {"default": {"dsn": pg.dsn, "min_size": 2, "max_size": 4, "acquire_timeout": 2}}
        server = start_metrics_server({"database": database}, app="db_covet:app")
        try:
            for _ in range(20):
                assert http_get(server.port, "/value").status == 200
            scrape = server.wait_value(
                lambda s: s.total(ACQUIRE_COUNT, pool="default"), 20, "20 acquires"
            )
            assert scrape.total("covetd_db_pool_connections", pool="default", state="max") == 8
            opened = scrape.total("covetd_db_pool_connections", pool="default", state="idle")
            assert 4 <= opened <= 8  # min_size 2 on each of the 2 workers, all idle now
            assert scrape.total("covetd_db_pool_errors_total", pool="default") == 0

            pg.stop()
            # Requests fail fast (503) and each worker reports its pool down.
            wait_for(
                lambda: (
                    http_get(server.port, "/value").status == 503
                    and server.endpoint("/readyz").status == 503
                ),
                20,
                what="/readyz to report the database down",
            )
            reason = server.endpoint("/readyz").body.decode()
            assert "database unavailable" in reason, reason
            assert server.endpoint("/healthz").status == 200  # alive all the same
            errors = server.scrape().total("covetd_db_pool_errors_total", pool="default")
            assert errors >= 1

            pg.start()
            wait_for(
                lambda: server.endpoint("/readyz").status == 200,
                30,
                what="/readyz to recover with the database",
            )
            assert http_get(server.port, "/value").status == 200
        finally:
            server.stop()


def test_a_respawn_that_cannot_reach_the_database_is_retried_not_fatal() -> None:
    # At first start a worker that cannot boot stops covetd (a broken deploy must be
    # loud); once serving, a respawn that meets a database outage is retried with
    # backoff while the other workers serve.
    with PgCluster() as pg:
        database = {"default": {"dsn": pg.dsn, "min_size": 1, "max_size": 2}}
        server = start_metrics_server({"database": database}, app="db_covet:app")
        try:
            victim = min(server.workers())
            pg.stop()
            os.kill(victim, signal.SIGKILL)
            wait_for(
                lambda: "while booting; retrying with backoff" in server.log(),
                30,
                what="the failed respawn to be retried",
            )
            assert server.server.proc is not None and server.server.proc.poll() is None
            assert server.endpoint("/healthz").status == 200
            pg.start()
            server.wait_ready(timeout=60)
            assert len(server.workers()) == 2
            assert http_get(server.port, "/value").status == 200
        finally:
            server.stop()
