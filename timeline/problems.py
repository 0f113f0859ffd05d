"""One middleware turning every error into an RFC 9457 problem document."""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from events.errors import TimelineError

log = logging.getLogger(__name__)

PROBLEM_TYPE = "urn:timeline:problem:"
_HTTP_NAMES = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("bad-request", "Method not allowed"),
    413: ("too-large", "Payload too large"),
    429: ("rate-limited", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


def problem(
    status: int,
    name: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body = {"type": PROBLEM_TYPE + name, "title": title, "status": status, "detail": detail}
    body.update({key: value for key, value in extra.items() if value is not None})
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/problem+json",
        headers=headers,
    )


def from_error(error: TimelineError) -> web.Response:
    headers: dict[str, str] = {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="timeline"'
    return problem(
        error.status,
        error.name,
        error.title,
        error.detail,
        headers=headers,
        errors=error.errors,
        **error.extra,
    )


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except TimelineError as error:
        return from_error(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        name, title = _HTTP_NAMES.get(exc.status, ("bad-request", exc.reason))
        detail = {
            404: f"no resource at {request.path}",
            405: f"{request.method} is not allowed on {request.path}",
            413: "the request body is larger than 1 MiB",
        }.get(exc.status, exc.text or exc.reason)
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem(exc.status, name, title, detail, headers=headers)
    except RequestPayloadError:
        detail = "the request body could not be read as its Content-Encoding says it is encoded"
        return problem(400, "bad-request", "Bad request", detail)
    except ConnectionError:  # the client went away during its request: nobody to answer
        log.info("the client left during %s %s", request.method, request.path)
        return problem(400, "bad-request", "Bad request", "the connection was lost")
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal", "Internal error", "the server failed; it has been logged")
