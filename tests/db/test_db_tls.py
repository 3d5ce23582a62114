"""``ssl:`` modes reach the connection: against a throwaway server with TLS on
(a self-signed certificate) and the plain test server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import uvloop
from support.pgcluster import PgCluster

from covetd.config import DatabaseConfig
from covetd.db import DatabaseConnectError, Pool

ENCRYPTED = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@pytest.fixture(scope="module")
def tls_cluster() -> Iterator[PgCluster]:
    with PgCluster(ssl=True) as pg:
        yield pg


def encrypted(dsn: str, ssl: str | None) -> Any:
    async def run() -> Any:
        pool = Pool("default", DatabaseConfig(dsn=dsn, ssl=ssl, max_size=1))
        await pool.open()
        try:
            return await pool.fetchval(ENCRYPTED)
        finally:
            await pool.close()

    return uvloop.run(run())


def test_require_encrypts(tls_cluster: PgCluster) -> None:
    assert encrypted(tls_cluster.dsn, "require") is True


def test_disable_does_not(tls_cluster: PgCluster) -> None:
    assert encrypted(tls_cluster.dsn, "disable") is False


def test_verify_full_refuses_an_untrusted_certificate(tls_cluster: PgCluster) -> None:
    with pytest.raises(DatabaseConnectError, match="database pool 'default' cannot connect"):
        encrypted(tls_cluster.dsn, "verify-full")


def test_require_against_a_server_without_tls_fails_the_boot(cluster: PgCluster) -> None:
    assert encrypted(cluster.dsn, "prefer") is False  # this one has no TLS
    with pytest.raises(DatabaseConnectError, match="database pool 'default' cannot connect"):
        encrypted(cluster.dsn, "require")
