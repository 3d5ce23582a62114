"""The ``compression`` and ``gzip`` middleware against real covetd processes: bodies
decoded with real decoders (zlib/gzip, brotli, httpx), q-value negotiation, what is
never compressed, HEAD, Vary, and streams flushed chunk by chunk."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
import yaml
from support.probe import fetch, read_response, request
from support.process import REPO, TEST_APPS, Covetd
from support.rawhttp import RawConnection, RawResponse

from covetd.config.fields import Setting, field_specs
from covetd.middleware.compression import CompressionMiddleware, GZipMiddleware

sys.path.insert(0, str(TEST_APPS))
from mw_compress_app import FILE, chunk, text

COVET = "mw_compress_app:app"
STARLETTE = "mw_compress_app:starlette_app"
DEFAULT = [{"compression": {}}]

Serve = Callable[..., Covetd]


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    """``serve(app, middleware)``: one server per distinct configuration in this module."""
    started: dict[str, Covetd] = {}

    def get(app: str, middleware: list[dict[str, Any]] = DEFAULT) -> Covetd:
        key = json.dumps([app, middleware], sort_keys=True)
        if key not in started:
            started[key] = Covetd(app, {"middleware": middleware}).start()
        return started[key]

    yield get
    for server in started.values():
        server.stop()


def get(server: Covetd, path: str, accept: str | None = "gzip", method: str = "GET") -> RawResponse:
    """One raw response (body de-chunked, still encoded); ``accept=None``: no header."""
    headers = f"Accept-Encoding: {accept}\r\n" if accept is not None else ""
    return fetch(server, request(path, method, headers=headers + "Connection: close\r\n"))


def decode(response: RawResponse) -> bytes:
    coding = response.header("content-encoding")
    if coding == "gzip":
        return gzip.decompress(response.body)
    if coding == "br":
        return bytes(brotli.decompress(response.body))
    assert coding is None, coding
    return response.body


def vary_tokens(response: RawResponse) -> list[str]:
    values = [value for name, value in response.headers if name == "vary"]
    return [token.strip().lower() for value in values for token in value.split(",")]


# -- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize("app", [COVET, STARLETTE])
@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_a_body_round_trips_through_a_real_decoder(serve: Serve, app: str, coding: str) -> None:
    response = get(serve(app), "/text?size=5000", coding)
    assert response.status == 200
    assert response.header("content-encoding") == coding
    assert response.header("content-length") == str(len(response.body))
    assert len(response.body) < 1000
    assert decode(response) == text(5000).encode()
    assert vary_tokens(response) == ["accept-encoding"]


@pytest.mark.parametrize("app", [COVET, STARLETTE])
@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_httpx_decodes_what_it_asked_for(serve: Serve, app: str, coding: str) -> None:
    server = serve(app)
    response = httpx.get(server.url + "/text?size=3000", headers={"Accept-Encoding": coding})
    assert response.headers["content-encoding"] == coding
    assert response.text == text(3000)
    streamed = httpx.get(server.url + "/stream?n=4", headers={"Accept-Encoding": coding})
    assert streamed.headers["content-encoding"] == coding
    assert streamed.text == "".join(chunk(i) for i in range(4))


def test_levels_and_qualities_are_the_configured_ones(serve: Serve) -> None:
    options = {"compress_level": 1, "brotli_quality": 11}
    server = serve(COVET, [{"compression": options}])
    body = text(20000).encode()
    assert get(server, "/text?size=20000", "gzip").body == zlib.compress(body, 1, 31)
    assert get(server, "/text?size=20000", "br").body == brotli.compress(body, quality=11)
    default = serve(COVET)
    assert get(default, "/text?size=20000", "gzip").body == zlib.compress(body, 6, 31)
    assert get(default, "/text?size=20000", "br").body == brotli.compress(body, quality=4)


# -- negotiation ------------------------------------------------------------------------

NEGOTIATION = [
    (None, None),
    ("", None),
    ("gzip", "gzip"),
    ("br", "br"),
    ("gzip, br", "br"),  # equal q: the server's preference (br first)
    ("br;q=0.5, gzip", "gzip"),
    ("gzip;q=0.2, br;q=0.8", "br"),
    ("br;q=0.9, gzip;q=0.9", "br"),
    ("gzip;q=0, br;q=0", None),
    ("br;q=0, gzip", "gzip"),
    ("br;q=0, *", "gzip"),
    ("*", "br"),
    ("*;q=0", None),
    ("*;q=0, gzip", "gzip"),
    ("identity", None),
    ("gzip;q=0.5, identity", None),  # identity ranked above every coding
    ("gzip, identity;q=0.5", "gzip"),
    ("deflate, compress", None),
    ("GZIP", "gzip"),
    ("x-gzip", "gzip"),
    ("gzip;q=0.001", "gzip"),
    ("gzip ; Q = 0.5 , br ; q=0.4", "gzip"),
    ("gzip;q=abc, br;q=2", None),  # malformed weights: the entries are ignored
    ("gzip;level=9;q=0.3, br;q=0.2", "gzip"),
]


@pytest.mark.parametrize(("accept", "expected"), NEGOTIATION)
def test_negotiation_with_q_values(serve: Serve, accept: str | None, expected: str | None) -> None:
    response = get(serve(COVET), "/text?size=1000", accept)
    assert response.header("content-encoding") == expected
    assert decode(response) == text(1000).encode()
    assert vary_tokens(response) == ["accept-encoding"]  # the answer varies either way


def test_several_accept_encoding_fields_are_one_list(serve: Serve) -> None:
    data = request("/text", headers="Accept-Encoding: br;q=0\r\nAccept-Encoding: gzip\r\n")
    assert fetch(serve(COVET), data).header("content-encoding") == "gzip"


@pytest.mark.parametrize(
    ("accept", "expected"), [("br", None), ("br, gzip", "gzip"), ("*", "gzip"), ("gzip", "gzip")]
)
def test_gzip_offers_gzip_only(serve: Serve, accept: str, expected: str | None) -> None:
    response = get(serve(COVET, [{"gzip": {}}]), "/text", accept)
    assert response.header("content-encoding") == expected
    assert decode(response) == text(2000).encode()


@pytest.mark.parametrize(
    ("accept", "expected"), [("br, gzip", "gzip"), ("br;q=1, gzip;q=0.5", "br")]
)
def test_the_preference_order_breaks_ties_only(serve: Serve, accept: str, expected: str) -> None:
    server = serve(COVET, [{"compression": {"encodings": ["gzip", "br"]}}])
    assert get(server, "/text", accept).header("content-encoding") == expected


# -- what is not compressed -------------------------------------------------------------


def test_bodies_below_minimum_size_are_sent_as_they_are(serve: Serve) -> None:
    server = serve(COVET)
    small = get(server, "/text?size=499")
    assert small.header("content-encoding") is None
    assert small.body == text(499).encode()
    assert small.header("content-length") == "499"
    assert vary_tokens(small) == []
    assert get(server, "/text?size=500").header("content-encoding") == "gzip"


def test_minimum_size_is_configurable(serve: Serve) -> None:
    server = serve(COVET, [{"gzip": {"minimum_size": "1KiB"}}])
    assert get(server, "/text?size=1023").header("content-encoding") is None
    assert decode(get(server, "/text?size=1024")) == text(1024).encode()


@pytest.mark.parametrize(
    "media_type",
    ["image/png", "image/jpeg", "video/mp4", "audio/ogg", "font/woff2", "application/zip",
     "application/gzip", "IMAGE/WEBP; q=1"],
)  # fmt: skip
def test_compressed_media_types_are_skipped(serve: Serve, media_type: str) -> None:
    response = get(serve(COVET), f"/typed?type={media_type.replace(' ', '%20')}")
    assert response.header("content-encoding") is None
    assert response.body == text(2000).encode()
    assert vary_tokens(response) == []


@pytest.mark.parametrize("media_type", ["image/svg+xml", "application/json", "text/csv"])
def test_text_like_media_types_are_compressed(serve: Serve, media_type: str) -> None:
    response = get(serve(COVET), f"/typed?type={media_type}")
    assert response.header("content-encoding") == "gzip"
    assert decode(response) == text(2000).encode()


def test_skip_types_replaces_the_list(serve: Serve) -> None:
    server = serve(COVET, [{"compression": {"skip_types": ["text/*", "application/x-thing"]}}])
    assert get(server, "/text").header("content-encoding") is None
    assert get(server, "/typed?type=application/x-thing").header("content-encoding") is None
    assert get(server, "/typed?type=image/png").header("content-encoding") == "gzip"


def test_a_response_already_encoded_is_left_alone(serve: Serve) -> None:
    response = get(serve(COVET), "/encoded", "gzip, br")
    assert [v for n, v in response.headers if n == "content-encoding"] == ["gzip"]
    assert gzip.decompress(response.body) == text(2000).encode()  # encoded once, not twice


def test_a_range_response_is_never_compressed(serve: Serve) -> None:
    response = get(serve(COVET), "/partial")
    assert response.status == 206
    assert response.header("content-encoding") is None
    assert response.body == text(3000)[1000:2000].encode()


def test_a_starlette_file_range_is_never_compressed(serve: Serve) -> None:
    server = serve(STARLETTE)
    data = request("/file", headers="Accept-Encoding: gzip, br\r\nRange: bytes=100-599\r\n")
    response = fetch(server, data)
    assert response.status == 206
    assert response.header("content-range") == f"bytes 100-599/{FILE.stat().st_size}"
    assert response.header("content-encoding") is None
    assert response.body == FILE.read_bytes()[100:600]
    whole = get(server, "/file", "br")
    assert whole.status == 200
    assert decode(whole) == FILE.read_bytes()
    assert whole.header("accept-ranges") is None  # ranges address the uncompressed bytes
    assert (whole.header("etag") or "").startswith('W/"')
    identity = get(server, "/file", None)
    assert identity.header("accept-ranges") == "bytes"
    assert identity.header("etag") == (whole.header("etag") or "")[2:]


def test_no_transform_and_no_content_are_left_alone(serve: Serve) -> None:
    server = serve(COVET)
    kept = get(server, "/headers?Cache-Control=public,%20No-Transform")
    assert kept.header("content-encoding") is None
    assert kept.body == text(2000).encode()
    empty = get(server, "/no-content")
    assert empty.status == 204
    assert (empty.header("content-encoding"), vary_tokens(empty)) == (None, [])


def test_the_apps_response_object_is_never_changed(serve: Serve) -> None:
    server = serve(COVET)
    assert get(server, "/shared", "br").header("content-encoding") == "br"
    plain = get(server, "/shared", None)
    assert plain.header("content-encoding") is None
    assert plain.body == text(2000).encode()
    assert vary_tokens(plain) == ["accept-encoding"]


# -- headers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ("Origin", ["origin", "accept-encoding"]),
        ("Origin, Accept-Language", ["origin", "accept-language", "accept-encoding"]),
        ("accept-encoding", ["accept-encoding"]),
        ("Cookie, Accept-Encoding", ["cookie", "accept-encoding"]),
        ("*", ["*"]),
    ],
)
def test_vary_is_merged(serve: Serve, existing: str, expected: list[str]) -> None:
    server = serve(COVET)
    for accept in ("gzip", None):
        response = get(server, f"/headers?Vary={existing.replace(' ', '%20')}", accept)
        assert vary_tokens(response) == expected
        assert len([n for n, _ in response.headers if n == "vary"]) == 1


def test_a_strong_etag_becomes_weak_when_compressed(serve: Serve) -> None:
    server = serve(COVET)
    assert get(server, "/headers?ETag=%22v1%22").header("etag") == 'W/"v1"'
    assert get(server, "/headers?ETag=W/%22v2%22").header("etag") == 'W/"v2"'
    assert get(server, "/headers?ETag=%22v1%22", None).header("etag") == '"v1"'


def head_then_get(server: Covetd, path: str, accept: str) -> tuple[RawResponse, RawResponse]:
    """HEAD and GET pipelined on one connection: a stray body byte after the HEAD would
    break the GET's status line."""
    extra = f"Accept-Encoding: {accept}\r\n"
    with RawConnection(server.host, server.port) as conn:
        conn.send(request(path, "HEAD", headers=extra) + request(path, headers=extra))
        head = read_response(conn, head_request=True)
        return head, read_response(conn)


def without_date(response: RawResponse) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers if name != "date"]


@pytest.mark.parametrize(
    ("app", "path"),
    [(COVET, "/text?size=3000"), (COVET, "/stream?n=3"), (COVET, "/stream-sized?size=4000"),
     (STARLETTE, "/text?size=3000"), (STARLETTE, "/stream?n=3")],
)  # fmt: skip
@pytest.mark.parametrize("accept", ["gzip", "br"])
def test_head_has_the_gets_headers(serve: Serve, app: str, path: str, accept: str) -> None:
    head, got = head_then_get(serve(app), path, accept)
    assert got.header("content-encoding") == accept
    assert without_date(head) == without_date(got)
    assert decode(got).startswith(b"chunk 0: " if "stream?" in path else b"The quick")


# -- streams ----------------------------------------------------------------------------


def read_chunk(conn: RawConnection) -> bytes:
    """The data of the next chunk of a chunked body (``b""`` for the last one)."""
    size = int(conn.read_until(b"\r\n").split(b";")[0], 16)
    if size == 0:
        conn.read_until(b"\r\n")
        return b""
    data = conn.read_exactly(size)
    assert conn.read_exactly(2) == b"\r\n"
    return data


class Decoder:
    """Incremental decoding with the real libraries."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self.gzip = zlib.decompressobj(31)
        self.br = brotli.Decompressor()

    def feed(self, data: bytes) -> bytes:
        return self.gzip.decompress(data) if self.coding == "gzip" else self.br.process(data)

    def finished(self) -> bool:
        if self.coding == "gzip":
            return self.gzip.eof and not self.gzip.unused_data
        return bool(self.br.is_finished())


@pytest.mark.parametrize("app", [COVET, STARLETTE])
@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_each_streamed_chunk_decodes_before_the_next_exists(
    serve: Serve, app: str, coding: str
) -> None:
    server = serve(app)
    key = f"{app}-{coding}"
    decoder = Decoder(coding)
    with RawConnection(server.host, server.port) as conn:
        conn.send(request(f"/gated/{key}?n=4", headers=f"Accept-Encoding: {coding}\r\n"))
        head = conn.read_response(head_request=True)
        assert head.header("content-encoding") == coding
        assert head.header("transfer-encoding") == "chunked"
        assert head.header("content-length") is None
        assert vary_tokens(head) == ["accept-encoding"]
        for index in range(4):
            if index:  # the app produces chunk i only now
                assert httpx.get(f"{server.url}/release/{key}").text == "released"
            assert decoder.feed(read_chunk(conn)) == chunk(index).encode()
        assert decoder.feed(read_chunk(conn)) == b""  # the coding's end
        assert decoder.finished()
        assert read_chunk(conn) == b""


def test_a_stream_with_a_known_length_is_judged_by_it(serve: Serve) -> None:
    server = serve(COVET)
    small = get(server, "/stream-sized?size=400")
    assert (small.header("content-encoding"), small.header("content-length")) == (None, "400")
    assert small.body == text(400).encode()
    big = get(server, "/stream-sized?size=4000", "br")
    assert big.header("content-encoding") == "br"
    assert (big.header("content-length"), big.header("transfer-encoding")) == (None, "chunked")
    assert decode(big) == text(4000).encode()


def test_compress_streams_off_leaves_streams_of_unknown_length(serve: Serve) -> None:
    server = serve(COVET, [{"compression": {"compress_streams": False}}])
    response = get(server, "/stream?n=2")
    assert response.header("content-encoding") is None
    assert response.body == (chunk(0) + chunk(1)).encode()
    assert get(server, "/stream-sized?size=4000").header("content-encoding") == "gzip"


def test_an_empty_stream_is_a_valid_empty_encoding(serve: Serve) -> None:
    for coding in ("gzip", "br"):
        response = get(serve(COVET), "/stream?n=0", coding)
        assert response.header("content-encoding") == coding
        assert decode(response) == b""


# -- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"compression": {"compress_level": 12}}, "compress_level: expected an integer from 1"),
        ({"compression": {"brotli_quality": -1}}, "brotli_quality: expected an integer from 0"),
        ({"compression": {"encodings": ["gzip", "zstd"]}}, "encodings"),
        ({"gzip": {"encodings": ["gzip"]}}, 'unknown option (options: minimum_size'),
        ({"gzip": {"minimum_size": "big"}}, "minimum_size: expected a size"),
    ],
)  # fmt: skip
def test_check_config_rejects_bad_options_with_file_and_line(
    tmp_path: Path, entry: dict[str, Any], message: str
) -> None:
    config = tmp_path / "covetd.yaml"
    config.write_text(
        yaml.safe_dump({"app": COVET, "app_dir": str(TEST_APPS), "middleware": [entry]})
    )
    result = subprocess.run(
        [sys.executable, "-m", "covetd", "-c", str(config), "--check-config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    name = next(iter(entry))
    assert f"{config}:" in result.stderr
    assert f"middleware.{name}." in result.stderr
    assert message in result.stderr


def test_every_option_is_documented_with_its_default() -> None:
    doc = (REPO / "docs/middleware/compression.md").read_text()
    rows = {row.split("|")[1].strip(): row for row in doc.splitlines() if row.startswith("| `")}
    for name, spec in field_specs(CompressionMiddleware.Options):
        assert isinstance(spec, Setting)
        default = spec.type.dump(spec.type.parse(spec.default))
        if name == "skip_types":
            assert all(f"`{media_type}`" in doc for media_type in default)
            continue
        if isinstance(default, list):
            shown = f"[{', '.join(default)}]"
        else:
            shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert f"| `{shown}` |" in rows[f"`{name}`"], name
    gzip_names = {name for name, _ in field_specs(GZipMiddleware.Options)}
    assert gzip_names == {name for name, _ in field_specs(CompressionMiddleware.Options)} - {
        "encodings",
        "brotli_quality",
    }


def test_without_the_brotli_package_brotli_is_not_offered(covetd: Serve, tmp_path: Path) -> None:
    (tmp_path / "brotli.py").write_text('raise ImportError("brotli hidden by the test")\n')
    env = {"PYTHONPATH": str(tmp_path)}
    server = covetd(COVET, {"middleware": DEFAULT}, env=env)
    assert get(server, "/text", "br").header("content-encoding") is None
    assert get(server, "/text", "br, gzip").header("content-encoding") == "gzip"
    assert (
        decode(get(server, "/stream?n=2", "br;q=1, gzip;q=0.1")) == (chunk(0) + chunk(1)).encode()
    )
    only_br = covetd(COVET, {"middleware": [{"compression": {"encodings": ["br"]}}]}, env=env)
    assert get(only_br, "/text", "br, gzip").header("content-encoding") is None
    assert "no coding available (brotli is not installed)" in only_br.log()
