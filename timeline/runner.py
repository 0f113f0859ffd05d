"""aiohttp's AppRunner, except for what fails below the application: a request whose line or
headers cannot be parsed never reaches the app's middleware, and aiohttp answers it with a
text/plain 400 that echoes the start of the offending value (for `Authorization`, the
credential) and logs it. Here it gets a problem document that echoes nothing: 414 for a
request line too long, 431 for a header too long or too many headers, 400 for the rest."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from timeline.problems import problem

log = logging.getLogger(__name__)


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
    __slots__ = ()

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
        response.force_close()
        return response


class _Server(web.Server):
    __slots__ = ()

    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """An AppRunner whose connections answer unparseable requests with problem documents."""

    __slots__ = ()

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the same object, with this class's __call__
        return server
