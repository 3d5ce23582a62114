"""Log setup: the error log (``covetd.error``) and, later, the access log.

JSON lines by default (one object per line: what docker, journald and log shippers
expect), or human text. Records carry the process id, so lines from workers can be
told apart. Logs go to stderr unless a file is configured; files are reopened on
USR1 (logrotate's ``postrotate`` sends it), in the master and in every worker.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["JsonFormatter", "configure_logging", "reopen_logs"]

_TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, pid, message (+ exc, extra)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        return json.dumps(entry, ensure_ascii=False)


def _formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    return logging.Formatter(_TEXT_FORMAT, "%Y-%m-%d %H:%M:%S %z")


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    stream: TextIO | None = None,
    path: str | None = None,
) -> None:
    """Send covetd's error log to ``path`` (appended) or ``stream`` (stderr)."""
    handler: logging.Handler
    if path is not None:
        handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_formatter(fmt))
    root = logging.getLogger("covetd")
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # asyncio reports "exception never retrieved" and slow callbacks there.
    logging.getLogger("asyncio").handlers[:] = [handler]


def reopen_logs() -> None:
    """Reopen log files (after rotation); stream handlers are left alone."""
    for name in ("covetd", "covetd.access"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.FileHandler):
                handler.acquire()
                try:
                    if handler.stream is not None:
                        handler.flush()  # what was logged before the move goes there
                        handler.stream.close()
                    handler.stream = handler._open()
                finally:
                    handler.release()
