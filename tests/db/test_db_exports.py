"""The public surface of covetd.db is exactly its ``__all__`` (pinned here)."""

import covetd.db
from covetd.app.exceptions import HTTPException


def test_public_names() -> None:
    assert sorted(covetd.db.__all__) == [
        "DatabaseConnectError",
        "DatabaseUnavailable",
        "Databases",
        "Pool",
        "PoolObserver",
        "PoolStats",
        "unavailable_handler",
    ]
    for name in covetd.db.__all__:
        assert getattr(covetd.db, name).__module__.startswith("covetd.db.")


def test_database_unavailable_is_an_http_503_with_retry_after() -> None:
    error = covetd.db.DatabaseUnavailable("replica", "exhausted")
    assert isinstance(error, HTTPException)
    assert (error.status_code, error.headers) == (503, {"Retry-After": "1"})
    assert (error.pool, error.reason) == ("replica", "exhausted")
    assert error.detail == "database 'replica' is unavailable (exhausted)"
