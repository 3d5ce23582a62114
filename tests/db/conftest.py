"""Fixtures of the pool tests: a throwaway PostgreSQL for the session, which tests
may stop and start (they leave it running)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.pgcluster import PgCluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[PgCluster]:
    with PgCluster() as pg:
        yield pg
