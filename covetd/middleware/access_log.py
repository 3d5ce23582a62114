"""Access log: one line per request, as JSON (the default) or a gunicorn format string.

When a line is written: a plain response is logged as soon as the handler returned it
(its body, hence its size, is known then); a streaming response is logged when its
stream ends (last chunk handed to the engine, the stream failed, or the engine closed
it: a HEAD, a client gone), so ``bytes`` and the duration cover the whole body. A
handler that raised is logged as 500 (what the engine answers), one cancelled before
answering (a forced shutdown, an outer ``timeout``) as 499. Put ``access_log`` first in
the list so it sees what the client gets.

Lines go through the ``covetd.access`` logger with a handler of their own (stdout,
stderr, or a file opened in append mode), so ``covetd.logs.reopen_logs`` (USR1) reopens
the file after logrotate moved it. While that handler is the logger's only one, with no
filter or formatter of the app's, a line skips the logging machinery (no LogRecord, no
lock), and the lines of one event-loop iteration are written together at its end: one
``write`` for many requests under load instead of a flush per line (that flush was a
sixth of a plaintext request's cost with the access log on). A batch never exceeds
``PIPE_BUF`` bytes, so on a pipe (docker, journald) or an ``O_APPEND`` file shared by
the workers a batch lands whole, never interleaved with another worker's lines; a line
is written just after its response, and a worker that is killed loses at most the
lines of the iteration it was in. The values of
secret headers (``Authorization``, ``Cookie``, ``Set-Cookie``, ``Proxy-Authorization``,
plus ``mask_headers``) are logged as ``-`` unless named in ``unmask_headers``. In text
formats, control characters, ``"`` and ``\\`` coming from the request are escaped
(``\\xhh``, ``\\"``), as Apache does, so a request cannot forge a log line.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextvars
import importlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from ..app.datastructures import Address
from ..app.requests import Request
from ..app.responses import Response
from ..config.errors import InvalidValue, show
from ..config.fields import setting
from ..config.types import ListOf, Text
from . import this_process
from .base import Handler, Middleware

__all__ = ["AccessLogMiddleware", "AccessLogOptions"]

LOGGER_NAME: Final = "covetd.access"
SECRET_HEADERS: Final = ("authorization", "cookie", "set-cookie", "proxy-authorization")
PRESETS: Final = {
    "combined": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
    "common": '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s',
}
STREAMS: Final = ("stdout", "stderr")
# A handler that did not answer because it was cancelled (nginx: "client closed request").
CANCELLED_STATUS: Final = 499

_HEADER_NAMES = ListOf(Text("a header name"), "a list of header names", nonempty=False)


@dataclass(frozen=True)
class AccessLogOptions:
    """The options of ``access_log``."""

    format: str = setting(
        Text('"json", "combined", "common" or a format string'),
        "json",
        'json (one object a line), a preset, or gunicorn atoms: "%(h)s %(r)s %(s)s".',
    )
    output: str = setting(
        Text('"stdout", "stderr" or a file path'),
        "stdout",
        "stdout, stderr, or a file (appended to; reopened on USR1).",
    )
    mask_headers: tuple[str, ...] = setting(
        _HEADER_NAMES, [], "More headers logged as - (the four secret ones always are)."
    )
    unmask_headers: tuple[str, ...] = setting(
        _HEADER_NAMES, [], "Secret headers whose values may be logged after all."
    )

    def __post_init__(self) -> None:
        if self.format != "json":
            compile_format(PRESETS.get(self.format, self.format), frozenset())
        if self.output not in STREAMS:
            _check_output(self.output)


def _check_output(path: str) -> None:
    if os.path.isdir(path):
        raise InvalidValue(f"{show(path)} is a directory", key="output")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InvalidValue(f"directory not found: {show(directory)}", key="output")


# --- one exchange ----------------------------------------------------------------------


class _Exchange:
    """What a line is made of; ``sent`` grows while a stream flows."""

    __slots__ = ("clock", "duration", "request", "request_id", "response_headers", "sent")
    sent: int
    duration: float

    def __init__(
        self,
        request: Request,
        clock: float,
        response_headers: list[tuple[bytes, bytes]],
        request_id: str | None,
    ) -> None:
        self.request = request
        self.clock = clock  # time.time() when the request reached the middleware
        self.response_headers = response_headers
        self.request_id = request_id
        self.sent = 0


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class _SecondCache:
    """A timestamp's text, rendered once per second."""

    __slots__ = ("render", "second", "text")

    def __init__(self, render: Callable[[int], str]) -> None:
        self.render = render
        self.second = -1
        self.text = ""

    def __call__(self, second: int) -> str:
        if second != self.second:
            self.second, self.text = second, self.render(second)
        return self.text


# --- JSON lines ------------------------------------------------------------------------

_json_string: Callable[[str], str] = json.encoder.encode_basestring


def _json_text(value: str | None) -> str:
    return "null" if value is None else _json_string(value)


def _milliseconds(seconds: float) -> str:
    """``repr(round(seconds * 1000, 3))``, twice as fast: ``round(x, 3)`` is the float
    that ``"%.3f" % x`` writes, and the shortest repr of a float with at most 15
    significant digits is those digits (here without trailing zeros)."""
    text = ("%.3f" % (seconds * 1000)).rstrip("0")
    return text + "0" if text[-1] == "." else text


_THREE_DIGITS: Final = [f"{number:03d}" for number in range(1000)]  # milliseconds


def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


class _JsonLine:
    """``{"ts", "pid", "request_id", "client", "method", "path", "query", "version",
    "status", "bytes", "duration_ms", "user_agent", "referer"}``, what ``json.dumps``
    writes for that dict (UTF-8, not ASCII-escaped), built by hand: the field order is
    fixed and only strings need escaping, which makes it about three times faster."""

    def __init__(self) -> None:
        self.utc = _SecondCache(_utc_second)

    def __call__(self, exchange: _Exchange, status: int) -> str:
        request = exchange.request
        user_agent = referer = "null"
        for name, value in request.raw_headers:  # the first of each, as _header finds
            if name == b"user-agent":
                if user_agent == "null":
                    user_agent = _json_string(value.decode("latin-1"))
            elif name == b"referer" and referer == "null":
                referer = _json_string(value.decode("latin-1"))
        clock = exchange.clock
        second = int(clock)
        utc = self.utc
        client = request.client
        request_id = exchange.request_id
        return (
            f'{{"ts": "{utc.text if second == utc.second else utc(second)}.'
            f'{_THREE_DIGITS[int((clock - second) * 1000)]}Z", '
            f'"pid": {this_process.pid}, "request_id": {_json_text(request_id)}, '
            f'"client": {_json_text(client.host if client is not None else None)}, '
            f'"method": {_json_string(request.method)}, "path": {_json_string(request.path)}, '
            f'"query": {_json_string(request.query_string.decode("latin-1"))}, '
            f'"version": {_json_string(request.http_version)}, "status": {status}, '
            f'"bytes": {exchange.sent}, "duration_ms": {_milliseconds(exchange.duration)}, '
            f'"user_agent": {user_agent}, "referer": {referer}}}'
        )


# --- gunicorn format strings -----------------------------------------------------------

_UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\]')


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return "\\" + char if char in '"\\' else f"\\x{ord(char):02x}"


def escape(text: str) -> str:
    """``text`` safe inside a quoted log field (Apache's escaping)."""
    return text if _UNSAFE.search(text) is None else _UNSAFE.sub(_escape_char, text)


def _local_second(second: int) -> str:
    return time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second))


_local_time = _SecondCache(_local_second)

Atom = Callable[[_Exchange, int], str]


def _target(request: Request) -> str:
    target = request.raw_path.decode("latin-1")
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    return target


def _basic_user(exchange: _Exchange, status: int) -> str:
    """The user name of Basic credentials (gunicorn's ``u``); never the password."""
    value = _header(exchange.request.raw_headers, b"authorization")
    if value is None or value[:6].lower() != "basic ":
        return "-"
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "-"
    return escape(decoded.partition(":")[0]) or "-"


def _request_header(name: str) -> Atom:
    raw = name.encode("latin-1")

    def atom(exchange: _Exchange, status: int) -> str:
        value = _header(exchange.request.raw_headers, raw)
        return "-" if value is None else escape(value)

    return atom


def _response_header(name: str) -> Atom:
    raw = name.encode("latin-1")

    def atom(exchange: _Exchange, status: int) -> str:
        value = _header(exchange.response_headers, raw)
        return "-" if value is None else escape(value)

    return atom


def _decimal_seconds(micros: int) -> str:
    """``D`` as seconds (``0.050739``), digit for digit, as gunicorn writes ``L``."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _masked(exchange: _Exchange, status: int) -> str:
    return "-"


ATOMS: Final[dict[str, Atom]] = {
    "h": lambda e, s: e.request.client.host if e.request.client is not None else "-",
    "l": lambda e, s: "-",
    "u": _basic_user,
    "t": lambda e, s: _local_time(int(e.clock)),
    "r": lambda e, s: escape(
        f"{e.request.method} {_target(e.request)} HTTP/{e.request.http_version}"
    ),
    "m": lambda e, s: escape(e.request.method),
    "U": lambda e, s: escape(e.request.path),
    "q": lambda e, s: escape(e.request.query_string.decode("latin-1")),
    "H": lambda e, s: f"HTTP/{e.request.http_version}",
    "s": lambda e, s: str(s),
    "B": lambda e, s: str(e.sent),
    "b": lambda e, s: str(e.sent) if e.sent else "-",
    "f": _request_header("referer"),
    "a": _request_header("user-agent"),
    "T": lambda e, s: str(int(e.duration)),
    "M": lambda e, s: str(int(e.duration * 1000)),
    "D": lambda e, s: str(int(e.duration * 1_000_000)),
    "L": lambda e, s: _decimal_seconds(int(e.duration * 1_000_000)),
    "p": lambda e, s: f"<{this_process.pid}>",
}
_PERCENT = re.compile(r"%(%|\(([^)]*)\)s)?")
_HEADER_ATOM = re.compile(r"\{([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\}([io])")


def compile_format(fmt: str, secret: frozenset[str]) -> Callable[[_Exchange, int], str]:
    """A gunicorn format string → ``line(exchange, status)``; raises ``InvalidValue``.

    Atoms are ``%(name)s`` (``ATOMS``), ``%({header}i)s`` (request) and
    ``%({header}o)s`` (response); ``%%`` is a percent sign; header names in ``secret``
    render as ``-``.
    """
    atoms: dict[str, Atom] = {}
    for match in _PERCENT.finditer(fmt):
        if match[1] is None:
            raise InvalidValue(
                f"a lone % at offset {match.start()} (write %% or %(atom)s)", key="format"
            )
        if match[2] is not None:
            atoms[match[2]] = _atom(match[2], secret)
    template = fmt

    def line(exchange: _Exchange, status: int) -> str:
        return template % {key: atom(exchange, status) for key, atom in atoms.items()}

    return line


def _atom(name: str, secret: frozenset[str]) -> Atom:
    if name in ATOMS:
        return ATOMS[name]
    header = _HEADER_ATOM.fullmatch(name)
    if header is None:
        known = " ".join(ATOMS)
        raise InvalidValue(
            f"unknown atom %({name})s (atoms: {known}, {{header}}i, {{header}}o)", key="format"
        )
    field = header[1].lower()
    if field in secret:
        return _masked
    return _request_header(field) if header[2] == "i" else _response_header(field)


# --- output ----------------------------------------------------------------------------

_handlers: dict[str, _BatchingHandler] = {}
BATCH_BYTES: Final = 4096  # PIPE_BUF on Linux: the largest write a pipe keeps whole
_LOGGING_STARTED: float = getattr(logging, "_startTime", time.time())  # for relativeCreated


class AccessRecord(logging.LogRecord):
    """A ``covetd.access`` record made cheaply. ``LogRecord.__init__`` derives the
    source file, module and process name on every call, which costs more than building
    the line; here those are class constants and the caller passes the pid and thread,
    so a handler an app adds still finds every attribute it may format."""

    name = LOGGER_NAME
    args = ()
    levelno = logging.INFO
    levelname = "INFO"
    pathname = filename = module = __file__
    exc_info = exc_text = stack_info = None
    funcName = ""
    lineno = 0
    processName = "MainProcess"
    taskName = None

    def __init__(self, line: str, process: int, thread: int | None, thread_name: str) -> None:
        self.msg = line
        self.created = created = time.time()
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - _LOGGING_STARTED) * 1000
        self.process = process
        self.thread = thread
        self.threadName = thread_name


def _record(line: str) -> AccessRecord:
    """Logger.info's record, without the caller lookup (a frame walk)."""
    thread = threading.current_thread()
    return AccessRecord(line, this_process.pid, thread.ident, thread.name)


class _LineFormatter(logging.Formatter):
    """The record's message alone (an access line is complete; it may hold ``%``, which
    ``getMessage`` leaves alone when a record has no arguments)."""

    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


_LINE_FORMATTER: Final = _LineFormatter()


class _BatchingHandler(logging.StreamHandler[Any]):
    """A stream handler that also takes whole lines (``add_line``) and writes them at
    the end of the event loop's current iteration, at most ``BATCH_BYTES`` at a time.
    Whatever writes through the handler (``emit``; ``flush``, which ``logging.shutdown``
    calls when a worker exits) writes the pending lines first, so lines keep their
    order and none is left behind."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self.forget_pending()

    def forget_pending(self) -> None:
        """Start with no pending lines (also in a forked child: they are the parent's)."""
        self.pending: list[str] = []
        self.pending_bytes = 0
        self.scheduled = False

    def add_line(self, line: str) -> None:
        size = len(line) + 1 if line.isascii() else len(line.encode("utf-8", "replace")) + 1
        if self.pending_bytes + size > BATCH_BYTES and self.pending:
            self.write_pending()
        self.pending.append(line)
        self.pending_bytes += size
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._end_of_iteration)

    def _end_of_iteration(self) -> None:
        self.scheduled = False
        self.write_pending()

    def write_pending(self) -> None:
        if not self.pending:
            return
        text = "\n".join(self.pending) + "\n"
        self.pending, self.pending_bytes = [], 0
        try:
            if self.stream is None:  # a file handler's first line (delay=True)
                self.stream = self._open_stream()
            self.stream.write(text)
            self.stream.flush()
        except Exception:
            self.handleError(_record(text.rstrip("\n")))

    def _open_stream(self) -> Any:
        raise ValueError("the access log has no stream")

    def emit(self, record: logging.LogRecord) -> None:
        self.write_pending()
        super().emit(record)

    def flush(self) -> None:
        self.write_pending()
        super().flush()


class _BatchingFileHandler(_BatchingHandler, logging.FileHandler):
    """``_BatchingHandler`` on a file, opened on the first line."""

    def __init__(self, filename: str) -> None:
        logging.FileHandler.__init__(self, filename, encoding="utf-8", delay=True)
        self.forget_pending()

    def _open_stream(self) -> Any:
        return self._open()


def _forget_pending_lines() -> None:
    for handler in _handlers.values():
        handler.forget_pending()


os.register_at_fork(after_in_child=_forget_pending_lines)


def access_handler(output: str) -> _BatchingHandler:
    """The ``covetd.access`` handler writing to ``output`` (one per target and process,
    so two chains logging to the same place do not write each line twice).

    A file is opened on the first line (``--check-config`` creates nothing)."""
    key = output if output in STREAMS else os.path.abspath(output)
    handler = _handlers.get(key)
    if handler is None:
        if output in STREAMS:
            handler = _BatchingHandler(getattr(sys, output))
        else:
            handler = _BatchingFileHandler(key)
        handler.setFormatter(_LINE_FORMATTER)
        _handlers[key] = handler
    logger = logging.getLogger(LOGGER_NAME)
    if handler not in logger.handlers:
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    logger.propagate = False  # access lines are not error-log lines
    return handler


def _request_id_source() -> Callable[[], Any] | None:
    """``covetd.middleware.request_id.current_request_id`` (a ContextVar or a function),
    if that middleware exists."""
    try:
        module = importlib.import_module(f"{__package__}.request_id")
    except ImportError:
        return None
    source = getattr(module, "current_request_id", None)
    if isinstance(source, contextvars.ContextVar):
        var: contextvars.ContextVar[Any] = source
        return lambda: var.get(None)
    return source if callable(source) else None


# --- the middleware --------------------------------------------------------------------


class AccessLogMiddleware(Middleware):
    """Writes one line per request to the ``covetd.access`` logger."""

    Options: ClassVar[type[Any]] = AccessLogOptions
    name = "access_log"

    def __init__(self, app: Handler, options: Any = None) -> None:
        super().__init__(app, options)
        opts = self.options
        secret = {name.lower() for name in (*SECRET_HEADERS, *opts.mask_headers)}
        secret -= {name.lower() for name in opts.unmask_headers}
        self.json = opts.format == "json"
        self.line: Callable[[_Exchange, int], str] = (
            _JsonLine()
            if self.json
            else compile_format(PRESETS.get(opts.format, opts.format), frozenset(secret))
        )
        self.handler = access_handler(opts.output)
        self.logger = logging.getLogger(LOGGER_NAME)
        self.current_request_id = _request_id_source() if self.json else None

    async def __call__(self, request: Request) -> Response:
        clock = time.time()
        started = time.perf_counter()
        try:
            response = await self.app(request)
        except Exception:
            self._failed(request, clock, started, 500)
            raise
        except asyncio.CancelledError:
            self._failed(request, clock, started, CANCELLED_STATUS)
            raise
        request_id = self._request_id(request, response)
        exchange = _Exchange(request, clock, response.raw_headers, request_id)
        if response.streaming and request.method != "HEAD":
            response.body_iterator = _LoggedStream(  # type: ignore[attr-defined]
                response.body_iterator,  # type: ignore[attr-defined]
                exchange,
                started,
                response.status_code,
                self.write,
            )
            return response
        if request.method != "HEAD":
            exchange.sent = len(response.body)
        exchange.duration = time.perf_counter() - started
        self.write(exchange, response.status_code)
        return response

    def _failed(self, request: Request, clock: float, started: float, status: int) -> None:
        exchange = _Exchange(request, clock, [], self._request_id(request, None))
        exchange.duration = time.perf_counter() - started
        self.write(exchange, status)

    def _request_id(self, request: Request, response: Response | None) -> str | None:
        """The ``request_id`` middleware's id: its context variable (when it runs outside
        this one) or ``request.state.request_id`` (inside); else the ``X-Request-ID`` the
        response carries."""
        if not self.json:
            return None  # text formats use %({x-request-id}o)s
        if self.current_request_id is not None:
            current = self.current_request_id() or getattr(request.state, "request_id", None)
            if current is not None:
                return str(current)
        return None if response is None else _header(response.raw_headers, b"x-request-id")

    def log_refused(self, client: Address | None, method: str | None, status: int) -> None:
        """A line for a request the engine refused before any handler ran (a malformed
        head, a limit, a header timeout: 400, 408, 413, 414, 431), as nginx logs its
        400s. What the engine did not take is not logged: the path is ``-``, the
        method ``-`` unless the head got that far, the version ``1.1``, no headers."""
        exchange = _Exchange(_RefusedRequest(client, method or "-"), time.time(), [], None)  # type: ignore[arg-type]
        exchange.duration = 0.0
        self.write(exchange, status)

    def write(self, exchange: _Exchange, status: int) -> None:
        logger = self.logger
        handler = self.handler
        if (
            logger.handlers == [handler]
            and not (logger.filters or handler.filters or logger.propagate)
            and handler.formatter is _LINE_FORMATTER
            and handler.level <= logging.INFO
            and logger.isEnabledFor(logging.INFO)
        ):
            # What logger.handle would end in, when nobody added a handler, a filter
            # or a formatter of their own, minus the LogRecord and the lock (which
            # guards against threads; this runs on the event loop, as reopen_logs
            # does, via add_signal_handler), and written with the iteration's others.
            handler.add_line(self.line(exchange, status))
            return
        if logger.isEnabledFor(logging.INFO):
            logger.handle(_record(self.line(exchange, status)))


class _RefusedRequest:
    """What a line needs of a request, for one the engine refused (``log_refused``)."""

    __slots__ = ("client", "method", "state")
    http_version = "1.1"
    path = "-"
    raw_path = b"-"
    query_string = b""
    raw_headers: ClassVar[list[tuple[bytes, bytes]]] = []

    def __init__(self, client: Address | None, method: str) -> None:
        self.client = client
        self.method = method
        self.state = None


class _LoggedStream:
    """``chunks`` counted as they pass; the line is written once, when the stream ends
    (exhausted, failed, closed by the engine, or dropped unstarted)."""

    __slots__ = ("_chunks", "_exchange", "_started", "_status", "_write")

    def __init__(
        self,
        chunks: AsyncIterator[bytes | str],
        exchange: _Exchange,
        started: float,
        status: int,
        write: Callable[[_Exchange, int], None] | None,
    ) -> None:
        self._chunks = chunks
        self._exchange = exchange
        self._started = started
        self._status = status
        self._write = write

    def __aiter__(self) -> _LoggedStream:
        return self

    async def __anext__(self) -> bytes | str:
        try:
            chunk = await anext(self._chunks)
        except BaseException:
            self._end()
            raise
        self._exchange.sent += len(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
        return chunk

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._end()

    def _end(self) -> None:
        write, self._write = self._write, None
        if write is not None:
            self._exchange.duration = time.perf_counter() - self._started
            write(self._exchange, self._status)

    def __del__(self) -> None:
        self._end()  # a stream the engine never started still gets its line
