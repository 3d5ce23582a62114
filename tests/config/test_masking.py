"""Secrets in ``--print-config`` output."""

from __future__ import annotations

import pytest

from covetd.config.masking import is_secret_option, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgres://app:s3cret@db:5432/app", "postgres://app:***@db:5432/app"),
        ("postgres://app:p@ss@db/app", "postgres://app:***@db/app"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgres://app@db/app", "postgres://app@db/app"),
        ("postgres://app:@db/app?password=", "postgres://app:@db/app?password="),
        ("postgres://db/app", "postgres://db/app"),
        ("postgres://db/app?user=a&password=s3cret", "postgres://db/app?user=a&password=***"),
        ("postgres://u:x@db/app?sslmode=require", "postgres://u:***@db/app?sslmode=require"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("secret_key", True),
        ("password", True),
        ("db_passwd", True),
        ("api_token", True),
        ("apikey", True),
        ("private_key", True),
        ("client_secret", True),
        ("signing_keys", True),
        ("SECRET_KEY", True),
        ("allow_credentials", False),
        ("token_name", False),
        ("allow_origins", False),
        ("minimum_size", False),
        ("key_prefix", False),
    ],
)
def test_is_secret_option(name: str, secret: bool) -> None:
    assert is_secret_option(name) is secret
