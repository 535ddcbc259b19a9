"""Log output of the server: one line per event, as text or as one JSON object per line.

``configure_logging`` is called once by the command line, in every process it starts;
an application that embeds the API keeps its own logging set-up.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["LOG_FORMATS", "AccessLogger", "JsonFormatter", "LogFormat", "configure_logging"]

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final[tuple[LogFormat, ...]] = ("text", "json")

_TEXT_FORMAT: Final = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# A log record's own attribute that carries the structured fields of an event.
_FIELDS: Final = "fields"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, for log collectors.

    Keys: ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, ``pid``, any
    structured fields the event carries (the access log's ``method``, ``path``, ...),
    and ``exception`` with the formatted traceback when there is one.
    """

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        payload: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
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
        path = request.raw_path.partition("?")[0]
        request_id = response.headers.get("X-Request-ID")
        duration_ms = round(time * 1000, 3)
        fields = {
            "method": request.method,
            "path": path,
            "status": response.status,
            "duration_ms": duration_ms,
            "request_id": request_id,
            "remote": request.remote,
        }
        self.logger.info(
            "%s %s %s %.1fms request_id=%s",
            request.method,
            path,
            response.status,
            duration_ms,
            request_id or "-",
            extra={_FIELDS: fields},
        )

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
        formatter = logging.Formatter(_TEXT_FORMAT)
        formatter.converter = time.gmtime  # UTC like the JSON lines, so both compare
        formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
        formatter.default_msec_format = "%s.%03dZ"
        handler.setFormatter(formatter)
    # Alembic announces its dialect and plugins on every start; only the steps it runs
    # ("Running upgrade ...") are news.
    handler.addFilter(_alembic_steps_only)
    logging.basicConfig(level=level, handlers=[handler], force=True)


def _alembic_steps_only(record: logging.LogRecord) -> bool:
    if not record.name.startswith("alembic") or record.levelno > logging.INFO:
        return True
    return record.getMessage().startswith("Running ")
