"""Response compression: gzip (zlib) and brotli, negotiated from ``Accept-Encoding``.

Negotiation follows RFC 9110 §12.5.3: each coding's q-value counts, ``q=0`` refuses it,
``*`` stands for every coding not named, ``x-gzip`` means ``gzip``; among the codings
the client accepts with the highest q, ``encodings`` (the server's preference order)
breaks the tie. An ``identity`` ranked above every coding keeps the body as it is;
without an ``Accept-Encoding`` header nothing is compressed. brotli is offered only
when the ``brotli`` package is installed.

A response is *eligible* when it may carry a body (not 1xx/204/304), is not a Range
answer (206 or ``Content-Range``: the ranges are offsets into the uncompressed bytes),
has no ``Content-Encoding``, no ``Cache-Control: no-transform``, a media type outside
``skip_types``, and at least ``minimum_size`` bytes. Every eligible response gets
``Vary: Accept-Encoding`` (merged into an existing ``Vary``), compressed or not, so a
cache never serves one client's encoding to another.

Plain responses are compressed whole (a fresh Response; the app's object is never
changed, as it may be a shared constant) with the right ``Content-Length``; HEAD
compresses the body the engine will not send, so its headers match the GET's. A
streaming response that declares its length is judged by it like a plain one; one of
unknown length is always compressed (``compress_streams``), since holding chunks back to
measure them would delay them: each chunk the app yields goes out as one compressed
chunk the client can decode at once (zlib ``Z_SYNC_FLUSH``, brotli ``flush``).
Compression replaces ``Content-Length`` (a stream goes out chunked), drops
``Accept-Ranges`` (ranges address the uncompressed bytes) and weakens a strong ``ETag``
(the compressed bytes are another representation), as nginx does.
"""

from __future__ import annotations

import importlib
import logging
import re
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Protocol

from ..app.requests import Request
from ..app.responses import Response
from ..config.fields import setting
from ..config.types import Boolean, Choice, ListOf, Size, Text, ValueType, is_int
from .base import Handler, Middleware
from .vary import add_vary

__all__ = ["CompressionMiddleware", "GZipMiddleware", "negotiate"]

error_log = logging.getLogger("covetd.error")


def _import_brotli() -> Any:
    try:
        return importlib.import_module("brotli")
    except ImportError:
        return None


_brotli: Any = _import_brotli()

# Media types whose bytes are compressed already (or nearly random): compressing them
# again costs CPU and saves nothing. SVG, BMP and icons are text or raw, so not here.
SKIP_TYPES: Final = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/heic",
    "image/heif",
    "image/jxl",
    "video/*",
    "audio/*",
    "font/woff",
    "font/woff2",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/x-bzip2",
    "application/x-xz",
    "application/zstd",
    "application/x-7z-compressed",
    "application/x-rar-compressed",
    "application/vnd.rar",
)
_CACHE_LIMIT = 1024  # distinct Accept-Encoding values / media types remembered


class IntRange(ValueType[int]):
    """An integer from ``low`` to ``high`` inclusive."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high
        self.description = f"an integer from {low} to {high}"

    def parse(self, value: object) -> int:
        if not is_int(value) or not self.low <= value <= self.high:
            self.fail(value)
        return value


_MEDIA_TYPES = ListOf(Text("a media type"), "a list of media types", nonempty=False)


@dataclass(frozen=True)
class GZipOptions:
    """The options of ``gzip``; ``compression`` adds the brotli ones."""

    minimum_size: int = setting(
        Size(), 500, "Bodies smaller than this are sent as they are (streams: compress_streams)."
    )
    compress_level: int = setting(
        IntRange(1, 9), 6, "gzip level: 1 is fastest, 9 is smallest (zlib's default is 6)."
    )
    compress_streams: bool = setting(
        Boolean(), True, "Compress streaming responses of unknown length, flushed chunk by chunk."
    )
    skip_types: tuple[str, ...] = setting(
        _MEDIA_TYPES, list(SKIP_TYPES), 'Media types never compressed ("video/*" matches a type).'
    )


@dataclass(frozen=True)
class CompressionOptions(GZipOptions):
    """The options of ``compression``."""

    encodings: tuple[str, ...] = setting(
        ListOf(Choice("br", "gzip"), '"br" and/or "gzip"', unique=True),
        ["br", "gzip"],
        "Codings offered, preferred first (breaks q-value ties); br needs the brotli package.",
    )
    brotli_quality: int = setting(
        IntRange(0, 11), 4, "brotli quality: 0 is fastest, 11 is smallest."
    )


# --- negotiation -----------------------------------------------------------------------

# RFC 9110 §12.4.2: weight = OWS ";" OWS "q=" qvalue; qvalue = 0[.ddd] / 1[.000]
_QVALUE = re.compile(r"\s*q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)\s*", re.IGNORECASE)
_ALIASES = {"x-gzip": "gzip"}


def accepted_codings(header: str) -> dict[str, float]:
    """``Accept-Encoding`` → coding → q; entries with a malformed q are ignored."""
    qualities: dict[str, float] = {}
    for item in header.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        quality = 1.0
        for param in params:
            match = _QVALUE.fullmatch(param)
            if match is None:
                if param.strip().lower().startswith("q"):
                    break  # a malformed weight: drop the entry
                continue  # another parameter: ignored
            quality = float(match[1])
        else:
            qualities.setdefault(_ALIASES.get(coding, coding), quality)
    return qualities


def negotiate(header: str, offered: tuple[str, ...]) -> str | None:
    """The coding of ``offered`` to answer ``header`` with; None = identity.

    The highest q wins, ties go to the earlier of ``offered``; ``*`` covers the
    codings not named; ``identity`` named with a higher q than that wins.
    """
    qualities = accepted_codings(header)
    default = qualities.get("*", 0.0)
    best, best_q = None, 0.0
    for coding in offered:
        quality = qualities.get(coding, default)
        if quality > best_q:
            best, best_q = coding, quality
    if best is not None and qualities.get("identity", 0.0) > best_q:
        return None
    return best


# --- codings ---------------------------------------------------------------------------


class _Coding(Protocol):
    header: tuple[bytes, bytes]

    def compress(self, body: bytes) -> bytes: ...

    def stream(self) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
        """``(step, finish)``: ``step`` compresses and flushes one chunk, ``finish``
        ends the stream."""
        ...


class _Gzip:
    header = (b"content-encoding", b"gzip")
    WBITS = 31  # 16 (a gzip header and trailer) + 15 (a 32 KiB window)

    def __init__(self, level: int) -> None:
        self.level = level

    def compress(self, body: bytes) -> bytes:
        return zlib.compress(body, self.level, self.WBITS)

    def stream(self) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
        compressor = zlib.compressobj(self.level, zlib.DEFLATED, self.WBITS)
        compress, flush = compressor.compress, compressor.flush

        def step(data: bytes) -> bytes:
            return compress(data) + flush(zlib.Z_SYNC_FLUSH)

        return step, flush


class _Brotli:
    header = (b"content-encoding", b"br")

    def __init__(self, quality: int) -> None:
        self.quality = quality

    def compress(self, body: bytes) -> bytes:
        return bytes(_brotli.compress(body, quality=self.quality))

    def stream(self) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
        compressor = _brotli.Compressor(quality=self.quality)
        process, flush = compressor.process, compressor.flush

        def step(data: bytes) -> bytes:
            return bytes(process(data) + flush())

        return step, compressor.finish


class _CompressedStream:
    """Each chunk of ``chunks`` as one compressed, flushed chunk; then the coding's end.

    ``aclose`` closes ``chunks`` even when iteration never started (a HEAD, a client
    gone before the first chunk), as the engine would have without compression.
    """

    __slots__ = ("_chunks", "_done", "_finish", "_step")

    def __init__(self, chunks: AsyncIterator[bytes | str], coding: _Coding) -> None:
        self._chunks = chunks
        self._step, self._finish = coding.stream()
        self._done = False

    def __aiter__(self) -> _CompressedStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._done:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._done = True
                return bytes(self._finish())
            if chunk:
                return self._step(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._done = True
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()


# --- the middleware --------------------------------------------------------------------

_NO_BODY = frozenset({204, 206, 304})  # 206: a Range answer is never compressed
_HANDS_OFF = frozenset({b"content-encoding", b"content-range"})
_VARY_VALUE = b"Accept-Encoding"
# The length changes; byte ranges address the uncompressed bytes, not these (nginx too).
_DROPPED_WHEN_COMPRESSED = frozenset({b"content-length", b"accept-ranges"})
_MISSING: Any = object()


class CompressionMiddleware(Middleware):
    """Compresses eligible responses with the best coding the client accepts."""

    Options: ClassVar[type[Any]] = CompressionOptions
    name = "compression"

    def __init__(self, app: Handler, options: Any = None) -> None:
        super().__init__(app, options)
        opts = self.options
        self.minimum_size: int = opts.minimum_size
        self.compress_streams: bool = opts.compress_streams
        self.codings: dict[str, _Coding] = self._codings(opts)
        self.offered = tuple(self.codings)
        skip = [item.strip().lower() for item in opts.skip_types]
        self._skip_exact = frozenset(item for item in skip if not item.endswith("/*"))
        self._skip_prefixes = tuple(item[:-1] for item in skip if item.endswith("/*"))
        self._choices: dict[bytes, _Coding | None] = {}
        self._compressible: dict[bytes, bool] = {}

    @staticmethod
    def _codings(opts: Any) -> dict[str, _Coding]:
        encodings = getattr(opts, "encodings", ("gzip",))
        codings: dict[str, _Coding] = {}
        for name in encodings:
            if name == "gzip":
                codings[name] = _Gzip(opts.compress_level)
            elif _brotli is not None:
                codings[name] = _Brotli(opts.brotli_quality)
        if not codings:
            error_log.warning("compression: no coding available (brotli is not installed)")
        return codings

    async def __call__(self, request: Request) -> Response:
        response = await self.app(request)
        status = response.status_code
        if status < 200 or status in _NO_BODY:
            return response
        content_type = b""
        length: bytes | None = None
        for name, value in response.raw_headers:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
            elif name in _HANDS_OFF or (
                name == b"cache-control" and b"no-transform" in value.lower()
            ):
                return response
        if not self._eligible(request, response, length):
            return response
        if not self._compressible_type(content_type):
            return response
        coding = self._choose(request.raw_headers)
        if coding is None:
            headers = list(response.raw_headers)
            add_vary(headers, _VARY_VALUE)
            return self._replace(response, response.body, headers)
        if response.streaming:
            if request.method != "HEAD":
                response.body_iterator = _CompressedStream(  # type: ignore[attr-defined]
                    response.body_iterator,  # type: ignore[attr-defined]
                    coding,
                )
            response.raw_headers = _compressed_headers(response.raw_headers, coding)
            return response
        if not response.body:  # a HEAD that declared the GET's length: unknown now
            return self._replace(response, b"", _compressed_headers(response.raw_headers, coding))
        body = coding.compress(response.body)
        headers = _compressed_headers(response.raw_headers, coding, b"%d" % len(body))
        return self._replace(response, body, headers)

    def _eligible(self, request: Request, response: Response, length: bytes | None) -> bool:
        """Big enough to be worth it (a stream of unknown length: compress_streams)."""
        if response.streaming:
            if length is None:
                return self.compress_streams
        elif response.body:
            return len(response.body) >= self.minimum_size
        elif length is None or request.method != "HEAD":
            return False  # an empty body (a HEAD's may declare the GET's length)
        try:
            return int(length) >= self.minimum_size
        except ValueError:
            return False

    def _compressible_type(self, content_type: bytes) -> bool:
        known = self._compressible.get(content_type)
        if known is None:
            media_type = content_type.partition(b";")[0].strip().lower().decode("latin-1")
            known = media_type not in self._skip_exact and not media_type.startswith(
                self._skip_prefixes
            )
            if len(self._compressible) < _CACHE_LIMIT:
                self._compressible[content_type] = known
        return known

    def _choose(self, raw_headers: list[tuple[bytes, bytes]]) -> _Coding | None:
        """The coding for this request's ``Accept-Encoding`` (remembered per value)."""
        header: bytes | None = None
        for name, value in raw_headers:
            if name == b"accept-encoding":
                header = value if header is None else header + b"," + value
        if header is None:
            return None
        coding = self._choices.get(header, _MISSING)
        if coding is _MISSING:
            chosen = negotiate(header.decode("latin-1"), self.offered)
            coding = self.codings[chosen] if chosen is not None else None
            if len(self._choices) < _CACHE_LIMIT:
                self._choices[header] = coding
        return coding  # type: ignore[no-any-return]

    @staticmethod
    def _replace(response: Response, body: bytes, headers: list[tuple[bytes, bytes]]) -> Response:
        """``response`` with another body and headers: a new object for a plain one (the
        app's may be a constant it returns every time); a stream is used once anyway."""
        if response.streaming:
            response.raw_headers = headers
            return response
        fresh: Response = object.__new__(type(response))
        fresh.status_code = response.status_code
        fresh.body = body
        fresh.raw_headers = headers
        return fresh


class GZipMiddleware(CompressionMiddleware):
    """``compression`` with gzip only (Starlette's ``GZipMiddleware``, in YAML ``gzip``)."""

    Options = GZipOptions
    name = "gzip"


def _compressed_headers(
    headers: list[tuple[bytes, bytes]], coding: _Coding, length: bytes | None = None
) -> list[tuple[bytes, bytes]]:
    """The headers of the compressed representation (``length``: its Content-Length)."""
    result = []
    for name, value in headers:
        if name in _DROPPED_WHEN_COMPRESSED:
            continue
        if name == b"etag" and not value.startswith(b"W/"):
            value = b"W/" + value
        result.append((name, value))
    result.append(coding.header)
    if length is not None:
        result.append((b"content-length", length))
    add_vary(result, _VARY_VALUE)
    return result
