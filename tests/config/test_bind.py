"""Listening addresses: every form, canonical spelling, and what is rejected (and why)."""

from __future__ import annotations

import pytest

from covetd.config.bind import BindAddress, parse_bind
from covetd.config.errors import InvalidValue


@pytest.mark.parametrize(
    ("text", "address", "canonical"),
    [
        ("127.0.0.1:8000", BindAddress("tcp", host="127.0.0.1", port=8000), "127.0.0.1:8000"),
        ("0.0.0.0:0", BindAddress("tcp", host="0.0.0.0", port=0), "0.0.0.0:0"),
        ("localhost:80", BindAddress("tcp", host="localhost", port=80), "localhost:80"),
        ("api.example.com:443", BindAddress("tcp", host="api.example.com", port=443), None),
        ("[::1]:8000", BindAddress("tcp", host="::1", port=8000), "[::1]:8000"),
        ("[::]:80", BindAddress("tcp", host="::", port=80), "[::]:80"),
        ("[0:0::1]:80", BindAddress("tcp", host="::1", port=80), "[::1]:80"),
        (" 127.0.0.1:1 ", BindAddress("tcp", host="127.0.0.1", port=1), "127.0.0.1:1"),
        ("unix:/run/covetd.sock", BindAddress("unix", path="/run/covetd.sock"), None),
        ("fd://3", BindAddress("fd", fd=3), "fd://3"),
    ],
)
def test_parse_and_canonical_form(text: str, address: BindAddress, canonical: str | None) -> None:
    parsed = parse_bind(text)
    assert parsed == address
    assert str(parsed) == (canonical or text)
    assert parse_bind(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8000", 'expected "host:port", "[v6]:port", "unix:/abs/path" or "fd://N", got "8000"'),
        (":8000", 'expected "host:port", "[v6]:port", "unix:/abs/path" or "fd://N", got ":8000"'),
        ("::1:8000", 'an IPv6 address needs brackets, as in "[::1]:8000": "::1:8000"'),
        ("[::1]", "expected a port number after the last ':', got \"[::1]\""),
        ("host:http", "expected a port number after the last ':', got \"host:http\""),
        ("host:65536", 'port 65536 is out of range (0-65535) in "host:65536"'),
        ("999.0.0.1:80", '"999.0.0.1" is not an IPv4 address in "999.0.0.1:80"'),
        ("bad_host!:80", '"bad_host!" is not a host name or IP address in "bad_host!:80"'),
        ("-dash.example:80", '"-dash.example" is not a host name or IP address'),
        ("[nothere]:80", '"nothere" is not an IPv6 address in "[nothere]:80"'),
        ("unix:run/covetd.sock", 'unix socket path must be absolute, got "unix:run/covetd.sock"'),
        ("fd://x", 'expected a descriptor number as in "fd://3", got "fd://x"'),
        ("fd://-1", 'expected a descriptor number as in "fd://3", got "fd://-1"'),
    ],
)
def test_rejects_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidValue) as info:
        parse_bind(text)
    assert info.value.message.startswith(message)


def test_unix_path_length_is_checked_against_sun_path() -> None:
    assert parse_bind("unix:/" + "a" * 106).path == "/" + "a" * 106
    with pytest.raises(InvalidValue, match="108 bytes long, the limit is 107"):
        parse_bind("unix:/" + "a" * 107)


@pytest.mark.parametrize("text", ["unix:/run/x.sock", "fd://3"])
def test_tcp_only(text: str) -> None:
    assert parse_bind("127.0.0.1:9101", tcp_only=True).port == 9101
    with pytest.raises(InvalidValue, match=r'expected "host:port" \(TCP only here\)'):
        parse_bind(text, tcp_only=True)
