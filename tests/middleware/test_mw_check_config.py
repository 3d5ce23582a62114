"""``covetd --check-config`` refuses a bad option of each of these middleware with one
line naming file:line and the key, and accepts them all configured together."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.process import REPO, TEST_APPS

HEADER = f"app: mw_basic:app\napp_dir: {TEST_APPS}\nmiddleware:\n"


def check(tmp_path: Path, middleware: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "bad.yaml").write_text(HEADER + textwrap.indent(textwrap.dedent(middleware), "  "))
    return subprocess.run(
        [sys.executable, "-m", "covetd", "-c", "bad.yaml", "--check-config"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("middleware", "expected"),
    [
        (
            """\
            - request_id: {}
            - proxy_headers:
                trusted: ["10.0.0.1/8"]
            """,
            'bad.yaml:5: middleware.proxy_headers.trusted: "10.0.0.1/8" has host bits set',
        ),
        (
            """\
            - trusted_host: {allowed_hosts: ["exa mple.com"]}
            """,
            "bad.yaml:4: middleware.trusted_host.allowed_hosts: expected a host name",
        ),
        (
            """\
            - gzip: {}
            - cors:
                allow_origins: "*"
                allow_credentials: true
            """,
            'bad.yaml:5: middleware.cors.allow_origins: allow_origins "*" with allow_credentials',
        ),
        (
            """\
            - security_headers: {hsts_preload: true}
            """,
            "bad.yaml:4: middleware.security_headers.hsts_preload: preload needs",
        ),
        (
            """\
            - request_id: {header: "X Request ID"}
            """,
            "bad.yaml:4: middleware.request_id.header: expected a header name",
        ),
        (
            """\
            - timeout:
                routes: {"slow/*": 30}
            """,
            'bad.yaml:4: middleware.timeout.routes: "slow/*": a path pattern starts with "/"',
        ),
    ],
    ids=["proxy_headers", "trusted_host", "cors", "security_headers", "request_id", "timeout"],
)
def test_a_bad_option_is_refused_with_file_and_line(
    tmp_path: Path, middleware: str, expected: str
) -> None:
    result = check(tmp_path, middleware)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("covetd: error: " + expected), lines[0]
    assert "Traceback" not in result.stderr


def test_all_six_configured_together_pass(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        """\
        - proxy_headers: {trusted: ["127.0.0.1", "10.0.0.0/8"], forwarded: false}
        - trusted_host: {allowed_hosts: ["example.com", "*.example.com"], www_redirect: false}
        - request_id: {trust_incoming: true, header: X-Correlation-ID}
        - security_headers: {hsts_max_age: 63072000, hsts_include_subdomains: true}
        - cors:
            allow_origins: ["https://app.example.com"]
            allow_origin_regex: 'https://[a-z]+\\.example\\.com'
            allow_methods: [GET, POST]
            allow_headers: [X-Token]
            allow_credentials: true
            expose_headers: [X-Correlation-ID]
            max_age: 10m
        - timeout: {timeout: 30, routes: {"/reports/*": 120, "/events": null}, retry_after: 5}
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "covetd: config OK (app mw_basic:app)\n"
