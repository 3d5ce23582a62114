"""Ask PostgreSQL something from a (synchronous) test: sessions, rows, settings.

Each call opens its own short connection (application_name ``covetd-tests``, so it
never counts as one of covetd's sessions) and closes it before returning.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

TEST_APPLICATION_NAME = "covetd-tests"


def query(dsn: str, sql: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(
            dsn, server_settings={"application_name": TEST_APPLICATION_NAME}, timeout=10
        )
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def sessions(dsn: str, application_name: str) -> int:
    """Server-side sessions whose ``application_name`` is exactly this one."""
    rows = query(
        dsn, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", application_name
    )
    return int(rows[0][0])


def sessions_like(dsn: str, pattern: str) -> dict[str, int]:
    """Sessions by ``application_name``, for names matching a LIKE ``pattern``."""
    rows = query(
        dsn,
        "SELECT application_name, count(*) FROM pg_stat_activity"
        " WHERE application_name LIKE $1 GROUP BY 1",
        pattern,
    )
    return {name: int(count) for name, count in rows}


def unique_name(prefix: str = "covetd-test") -> str:
    """An application_name no other test (or test run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
