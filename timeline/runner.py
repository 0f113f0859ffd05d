"""aiohttp's AppRunner, except for what fails below the application: a request whose line or
headers cannot be parsed never reaches the app's middleware, and aiohttp answers it with a
text/plain 400 that echoes the start of the offending value (for `Authorization`, the
credential) and logs it. Here it gets a problem document that echoes nothing: 414 for a
request line too long, 431 for a header too long or too many headers, 400 for the rest.

Two more things aiohttp's connections do not. A connection that is ready for a request
(just opened, or its last response sent) must deliver that request's line and headers within
`header_timeout` seconds, or it is closed: slow-loris clients hold connections open by
sending headers a byte at a time, pipelined behind a request or not, and an idle keep-alive
connection is closed then too. And a connection lost while its handler streams calls the
request's ON_DISCONNECT callback at once: an idle stream would otherwise learn of it only at
its next write."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from timeline import logs
from timeline.problems import problem

log = logging.getLogger(__name__)

# Called when the request's connection is lost while its handler runs (a stream's, to end).
ON_DISCONNECT: web.RequestKey[Callable[[], None]] = web.RequestKey(
    "on_disconnect",
    object,  # type: ignore[arg-type]
)
HEADER_TIMEOUT_SECONDS = 10.0


def _refusal(exc: BaseException | None) -> tuple[int, str, str, str]:
    """(status, problem name, title, detail) for a request the HTTP parser refused."""
    if isinstance(exc, LineTooLong):
        # The parser collects the request target in a bytearray, a header name or value in
        # bytes: that is the one thing telling which it was.
        if isinstance(exc.args[0], bytearray):
            return 414, "too-large", "URI too long", "the request line is too long"
        return 431, "too-large", "Header too large", "a request header is too long"
    if isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc.message):
        return 431, "too-large", "Headers too large", "the request has too many headers"
    return 400, "bad-request", "Bad request", "the request is not valid HTTP/1.1"


class _Handler(RequestHandler):
    __slots__ = ("_header_deadline", "_header_timeout")

    def __init__(self, *args: object, header_timeout: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        requests = self._request_count
        super().data_received(data)
        if self._request_count > requests:  # a request's line and headers are all in
            self._disarm()

    async def _handle_request(
        self, request: BaseRequest, *args: Any, **kwargs: Any
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super()._handle_request(request, *args, **kwargs)
        finally:
            self._arm()  # the next request's headers are due from now

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        request = self._current_request
        super().connection_lost(exc)
        if request is not None and (on_disconnect := request.get(ON_DISCONNECT)) is not None:
            on_disconnect()

    def _arm(self) -> None:
        if self._header_deadline is None and self._header_timeout > 0:
            loop = asyncio.get_running_loop()
            self._header_deadline = loop.call_later(self._header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if self._request_in_progress or self._messages:
            return  # its headers came (pipelined): the next deadline starts after its answer
        log.info("closed a connection whose request headers took over %ss", self._header_timeout)
        if self.transport is not None:
            self.transport.close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        status, name, title, detail = _refusal(exc)
        # Only the kind of refusal is logged: the value itself may be a secret.
        log.info("refused a request from %s that HTTP could not parse: %s", request.remote, title)
        response = problem(status, name, title, detail)
        response.headers[logs.HEADER] = logs.request_id(None)
        response.force_close()
        return response


class _Server(web.Server):
    header_timeout = HEADER_TIMEOUT_SECONDS

    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, header_timeout=self.header_timeout, **self._kwargs)


class Runner(web.AppRunner):
    """An AppRunner whose connections answer unparseable requests with problem documents,
    close requests whose headers are slower than `header_timeout` seconds, and cancel a
    streaming handler whose connection is lost."""

    __slots__ = ("_header_timeout",)

    def __init__(
        self, app: web.Application, *, header_timeout: float = HEADER_TIMEOUT_SECONDS, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the same object, with this class's __call__
        cast(_Server, server).header_timeout = self._header_timeout
        return server
