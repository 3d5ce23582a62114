"""Fixtures of the database scenarios: the test PostgreSQL (DESIGN §7)."""

from __future__ import annotations

import pytest
from support.services import postgres_dsn


@pytest.fixture(scope="module")
def dsn() -> str:
    return postgres_dsn()
