"""Structured logs: one JSON object a line on standard error, one line per request (the access
log), and every line logged while a request is handled carrying its request id.

The id is the request's `X-Request-ID` when that is sane (1 to 128 printable ASCII
characters), else a new uuid4 in hex; the response echoes it in `X-Request-ID` (problem
documents and streams too). Nothing secret is logged: no header is, and the value of an
`access_token` query parameter is replaced by `REDACTED` in the logged path."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import sys
import time as _time
from typing import IO, Any, Literal

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

LogFormat = Literal["json", "text"]

HEADER = "X-Request-ID"
MAX_ID_LENGTH = 128
REDACTED = "REDACTED"
SECRET_PARAMS = frozenset({"access_token"})  # compared in lower case

# The id of the request being handled, for every log line written while it is.
current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
REQUEST_ID = web.RequestKey("request_id", str)
ACCESS = logging.getLogger("timeline.access")


# The version and variant bits of a random UUID (RFC 9562, version 4).
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def request_id(incoming: str | None) -> str:
    """The client's id when it is sane, else a new one: a uuid4 in hex, as `uuid.uuid4().hex`
    makes it, in a tenth of the time (no UUID object, no system call: an id needs to be
    unique, not unguessable, and `random` is seeded anew in every process, forks included)."""
    if (
        incoming
        and len(incoming) <= MAX_ID_LENGTH
        and incoming.isascii()
        and incoming.isprintable()
    ):
        return incoming
    return f"{random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


def route(request: BaseRequest) -> str:
    """The path template of the route that took the request (`/v1/events/{id}`), never the
    URL itself: "unmatched" for a path no route has (404) or a method it does not allow."""
    # A request HTTP could not parse has none (and its match_info property asserts).
    match_info = getattr(request, "_match_info", None)
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "unmatched"


def logged_path(request: BaseRequest) -> str:
    """The path and query, with the value of every `access_token` parameter redacted."""
    if not request.query_string:
        return request.raw_path
    query = request.query
    if not any(name.lower() in SECRET_PARAMS for name in query):
        return request.raw_path
    kept = [
        (name, REDACTED if name.lower() in SECRET_PARAMS else value)
        for name, value in query.items()
    ]
    return str(request.rel_url.with_query(kept))


class AccessLogger(AbstractAccessLogger):
    """One line per request, after its response went out: method, route, path, status,
    duration_ms, bytes (of the response, headers included), remote and request_id.

    Under `configure` the line goes straight to its handler, already formatted: a LogRecord
    and the logging hierarchy cost more than the rest of the line (about 4 us of 6 on the
    machine of docs/performance.md). Otherwise it is an INFO record of `timeline.access`
    with the fields in its `access` attribute."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        method, path, status = request.method, logged_path(request), response.status
        fields = {
            "method": method,
            "route": route(request),
            "path": path,
            "status": status,
            "duration_ms": round(time * 1000, 3),
            "bytes": response.body_length,
            "remote": request.remote,
            "request_id": request.get(REQUEST_ID),
        }
        message = f"{method} {path} {status}"
        handler = _configured
        formatter = handler.formatter if handler is not None else None
        if handler is not None and formatter is not None and self.logger is ACCESS:
            handler.write(formatter.access(message, fields))
        else:
            self.logger.info(message, extra={"access": fields})


async def echo_request_id(request: web.Request, response: StreamResponse) -> None:
    """on_response_prepare: every response of the app, error or stream, carries the id."""
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers[HEADER] = rid


class _Clock:
    """A time as RFC 3339 UTC with milliseconds; the part down to the second is computed
    once a second, not for every line."""

    second, prefix = -1, ""

    @classmethod
    def stamp(cls, created: float) -> str:
        second = int(created)
        if second != cls.second:
            prefix = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(second))
            cls.second, cls.prefix = second, prefix
        else:
            prefix = cls.prefix
        return f"{prefix}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: time, level, logger, message, request_id (when a
    request is being handled), exception (a traceback, when there is one), and an access
    line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _Clock.stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        access: dict[str, Any] | None = getattr(record, "access", None)
        if access is not None:
            line.update(access)
        else:
            rid = current.get()
            if rid is not None:
                line["request_id"] = rid
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()

    def access(self, message: str, fields: dict[str, Any]) -> str:
        """An access line, as `format` writes the record AccessLogger would make."""
        line = {"time": _Clock.stamp(_time.time()), "level": "info", "logger": ACCESS.name}
        line["message"] = message
        return orjson.dumps({**line, **fields}).decode()


class TextFormatter(logging.Formatter):
    """`TIMELINE_LOG_FORMAT=text`: a line for people, the request id at the end."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        access: dict[str, Any] | None = getattr(record, "access", None)
        if access is not None:
            return self._with_fields(text, access)
        rid = current.get()
        return f"{text} [{rid}]" if rid is not None else text

    def access(self, message: str, fields: dict[str, Any]) -> str:
        now = _time.time()
        stamp = _time.strftime("%Y-%m-%d %H:%M:%S", _time.localtime(now))
        text = f"{stamp},{int((now % 1) * 1000):03d} INFO {ACCESS.name}: {message}"
        return self._with_fields(text, fields)

    @staticmethod
    def _with_fields(text: str, fields: dict[str, Any]) -> str:
        return (
            f"{text} {fields['bytes']} B {fields['duration_ms']} ms from {fields['remote']}"
            f" [{fields['request_id'] or '-'}]"
        )


class LineHandler(logging.Handler):
    """Writes lines to a stream. On a thread running an event loop, the lines of one turn of
    the loop go out together at its end, in one write: under load, the access lines of many
    requests for one system call instead of one each. Elsewhere (another thread, no loop) a
    line is written at once, after any still waiting, so that the order holds. What waits is
    written at exit too (logging.shutdown flushes every handler)."""

    formatter: JsonFormatter | TextFormatter | None

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self.stream = stream
        self._lines: list[str] = []
        self._due = False  # a flush is scheduled on the loop

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write(line)

    def write(self, line: str) -> None:
        with self.lock:  # type: ignore[union-attr]  # createLock() made it
            self._lines.append(line)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            if not self._due:
                self._due = True
                loop.call_soon(self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._due = False
            if not self._lines:
                return
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            with contextlib.suppress(OSError, ValueError):  # a closed or broken stream
                self.stream.write(text)
                self.stream.flush()


_configured: LineHandler | None = None  # the handler `configure` installed


def configure(style: LogFormat = "json", stream: IO[str] | None = None) -> None:
    """Log INFO and above to standard error (or `stream`) in `style`, replacing any handler
    the root logger had. Records skip what no line shows (the caller's file and line, thread
    and process names: the optimizations of the logging HOWTO)."""
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False
    global _configured
    handler = LineHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if style == "json" else TextFormatter())
    _configured = handler
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
