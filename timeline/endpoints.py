"""Endpoints as declared beside their handlers (`@ENDPOINTS.add(...)` in timeline.routes), and
the guard every endpoint of the list runs first: the token its scope needs, then no unknown
parameter. (The dashboard's page and files, timeline.dashboard, are routes of their own.)"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web

from timeline.auth import Scope
from timeline.keys import SETTINGS, TOKENS
from timeline.openapi import ACCESS_TOKEN, Endpoint, Handler
from timeline.params import bad_query


class Endpoints(list[Endpoint]):
    """The API's endpoints, in the order /openapi.json lists them."""

    def add(
        self, method: str, path: str, summary: str, responses: dict[int, Any], **details: Any
    ) -> Callable[[Handler], Handler]:
        """Declare the decorated handler as the endpoint `method path` (see Endpoint)."""

        def declare(handler: Handler) -> Handler:
            endpoint = Endpoint(method, path, handler, summary, responses, **details)
            if path.startswith("/v1/") and endpoint.scope is None:
                raise TypeError(f"{method} {path}: an API endpoint needs a scope")
            self.append(endpoint)
            return handler

        return declare


async def authorize(request: web.Request, scope: Scope) -> None:
    """The request's token must grant `scope`. Reads are open unless TIMELINE_READ_AUTH is
    set, but a credential sent with one is checked all the same: a malformed or unknown token
    is a client's mistake to hear of (401), not to be ignored."""
    authorization = request.headers.get("Authorization")
    if scope == "read" and not request.app[SETTINGS].read_auth and authorization is None:
        return
    await request.app[TOKENS].require(authorization, scope)


def guarded(endpoint: Endpoint) -> Handler:
    """The endpoint's handler behind its guard: the token its scope needs (401, 403), then,
    under /v1/, no query parameter it does not take (400): a mistyped filter (`?compnay=`)
    must not be answered as if there were none."""
    known = {param.name for param in endpoint.params if param.where == "query"}
    if endpoint.method == "GET":
        known.add(ACCESS_TOKEN)
    handler, strict = endpoint.handler, endpoint.path.startswith("/v1/")
    scope = cast(Scope | None, endpoint.scope)

    @functools.wraps(handler)
    async def guard(request: web.Request) -> web.StreamResponse:
        if scope is not None:
            await authorize(request, scope)
        unknown = [name for name in request.query if name not in known] if strict else ()
        if unknown:
            takes = ", ".join(sorted(known - {ACCESS_TOKEN})) or "none"
            message = f"this endpoint takes no such parameter (it takes: {takes})"
            raise bad_query(unknown[0], message)
        return await handler(request)

    return guard
