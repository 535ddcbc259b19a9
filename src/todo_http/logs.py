"""Log output of the server: one line per event, as text or as one JSON object per line.

``configure_logging`` is called once by the command line, in every process it starts;
an application that embeds the API keeps its own logging set-up.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final, Literal

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = [
    "LOG_FORMATS",
    "AccessLogger",
    "JsonFormatter",
    "LogFormat",
    "configure_logging",
    "loggable",
]

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final[tuple[LogFormat, ...]] = ("text", "json")

_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# A log record's own attribute that carries the structured fields of an event.
_FIELDS: Final = "fields"
_ACCESS_MESSAGE: Final = "%s %s %s %.1fms request_id=%s"
# Every character that a terminal, a log file or a collector may take for the end of a
# line (str.splitlines' set), and the other C0/C1 controls, written as Python escapes.
_UNPRINTABLE: Final = {
    code: ascii(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}


def loggable(text: str) -> str:
    """``text`` with every control character escaped, so that it stays on its line.

    For text a client chose (a path, a header's value) in a log message: a line break in
    it would otherwise let a client write lines of its own into the log.
    """
    return text.translate(_UNPRINTABLE)


class _UtcClock:
    """A record's time as ``2026-01-01T12:00:03.101Z``, formatting each second only once.

    ``strftime`` for every line was a measurable part of a request's CPU time, and the
    access log writes a line per request: within one second only the milliseconds change.
    """

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")  # one attribute: replaced atomically

    def stamp(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        cached, text = self._second
        if cached != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return f"{text}.{int(record.msecs):03d}Z"


class _TextFormatter(logging.Formatter):
    """The text lines: ``_TEXT_FORMAT``, with the time in UTC like the JSON lines."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)
        self._clock = _UtcClock()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self._clock.stamp(record)

    def formatMessage(self, record: logging.LogRecord) -> str:
        # Any logger's message, ours or a library's, stays on one line; a traceback is
        # appended after this, on lines of its own.
        record.message = loggable(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, for log collectors.

    Keys: ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, ``pid``, any
    structured fields the event carries (the access log's ``method``, ``path``, ...),
    and ``exception`` with the formatted traceback when there is one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._clock = _UtcClock()

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self._clock.stamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        fields = getattr(record, _FIELDS, None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        # default=str: a field of an unexpected type must not lose the whole line.
        return orjson.dumps(payload, default=str).decode()


class AccessLogger(AbstractAccessLogger):
    """One line per answered request: method, path, status, duration and request id.

    The path is the one sent, still percent-encoded and without the query string: query
    strings carry search text and cursors, and decoded paths could carry line breaks.
    Headers and bodies are never logged. The request id is read from the response, where
    the envelope middleware put it (the client's own id when it sent a sane one).
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        method, status = request.method, response.status
        path = request.raw_path.partition("?")[0]
        request_id = response.headers.get("X-Request-ID")
        duration_ms = round(time * 1000, 3)
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "request_id": request_id,
            "remote": request.remote,
        }
        # Built and handed over directly rather than through logger.info(), whose search
        # of the stack for the caller's file and line is a noticeable part of the cost of
        # a line per request, and which no format here uses.
        record = logger.makeRecord(
            logger.name,
            logging.INFO,
            __file__,
            0,
            _ACCESS_MESSAGE,
            (method, path, status, duration_ms, request_id or "-"),
            None,
            extra={_FIELDS: fields},
        )
        logger.handle(record)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def configure_logging(log_format: LogFormat, level: int = logging.INFO) -> None:
    """Send every log record at ``level`` and above to stderr in ``log_format``.

    Replaces the root logger's handlers: this process belongs to the command line.
    """
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter())
    # Alembic announces its dialect and plugins on every start; only the steps it runs
    # ("Running upgrade ...") are news.
    handler.addFilter(_alembic_steps_only)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Every record would otherwise look up its thread's and process's names, which no
    # line here shows: a measurable cost at one access-log line per request.
    logging.logThreads = False
    logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False


def _alembic_steps_only(record: logging.LogRecord) -> bool:
    if not record.name.startswith("alembic") or record.levelno > logging.INFO:
        return True
    return record.getMessage().startswith("Running ")
