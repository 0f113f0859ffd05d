"""The dashboard: the page at `/`, its static files, and the `access_token` query parameter
that lets the page's EventSource, which cannot send headers, read when reads need a token."""

from __future__ import annotations

from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

STATIC = Path(__file__).resolve().parent / "static"
# The page's script is ES modules, each a file here: a browser runs a module only when it comes
# with a JavaScript type (and nosniff stops it guessing one for any file).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
ASSETS = frozenset(
    path.name for path in STATIC.iterdir() if path.is_file() and path.suffix in CONTENT_TYPES
)
# No build step and no hashed file names: the browser revalidates (ETag, Last-Modified) each load.
ASSET_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
PAGE_HEADERS = {
    **ASSET_HEADERS,
    "Content-Security-Policy": (
        "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}


def _file(name: str, headers: dict[str, str]) -> web.FileResponse:
    path = STATIC / name
    return web.FileResponse(path, headers={**headers, "Content-Type": CONTENT_TYPES[path.suffix]})


async def page(request: web.Request) -> web.FileResponse:
    return _file("index.html", PAGE_HEADERS)


async def asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return _file(name, ASSET_HEADERS)


@web.middleware
async def query_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A GET may carry its bearer token as `?access_token=` (RFC 6750, section 2.3) when it
    has no Authorization header: a browser's EventSource cannot send one. Writes still need
    the header."""
    if request.method not in ("GET", "HEAD") or hdrs.AUTHORIZATION in request.headers:
        return await handler(request)
    token = request.query.get("access_token")
    if token:
        headers = CIMultiDict(request.headers)
        headers[hdrs.AUTHORIZATION] = f"Bearer {token}"
        request = request.clone(headers=headers)
    return await handler(request)


def setup(app: web.Application) -> None:
    """Serve the dashboard at `/` and accept `?access_token=` on reads."""
    app.middlewares.append(query_token)
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", asset)
