"""create_app(settings) → the aiohttp application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from events.backends import open_store
from events.writer import GroupWriter
from projections.rebuild import ensure_built, projections
from timeline import dashboard, limits, logs, metrics
from timeline.auth import Tokens, add_bootstrap_token
from timeline.config import MAX_BODY_BYTES, Settings
from timeline.endpoints import guarded
from timeline.follower import Follower
from timeline.hub import Hub
from timeline.keys import HUB, METRICS, SETTINGS, STORE, TOKENS, WEBHOOKS, WRITER
from timeline.problems import problems
from timeline.routes import ENDPOINTS
from timeline.webhooks import Webhooks

log = logging.getLogger(__name__)


async def _storage(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await open_store(
        settings.db, synchronous=settings.sqlite_synchronous, projections=projections()
    )
    if await ensure_built(store, projections()):
        log.info("built the projections of an existing log")
    await add_bootstrap_token(store, settings.bootstrap_token)
    writer = GroupWriter(
        store,
        max_pending_events=settings.max_pending_events,
        linger_seconds=settings.commit_linger_ms / 1000,
        quiet_seconds=settings.commit_quiet_ms / 1000,
    )
    hub = Hub(
        (await store.head()).position,
        queue_size=settings.feed_queue_size,
        coalesce_seconds=settings.feed_coalesce_ms / 1000,
    )
    webhooks = Webhooks(store, backoff=settings.webhook_backoff_seconds)
    writer.listeners += [hub.publish, webhooks.notify]
    # What other processes commit (and what this one's hub missed) comes from the store.
    follower = Follower(store, hub, [webhooks.notify], interval=settings.feed_poll_seconds)
    writer.start()
    follower.start()
    await webhooks.start()
    app[WEBHOOKS] = webhooks
    app[STORE], app[WRITER], app[TOKENS], app[HUB] = store, writer, Tokens(store), hub
    app[METRICS] = metrics.registry(writer, hub, webhooks, app[metrics.HTTP])
    try:
        yield
    finally:
        await webhooks.stop()
        await follower.stop()
        await writer.stop()
        await store.close()


async def _close_streams(app: web.Application) -> None:
    app[HUB].close()


def create_app(settings: Settings | None = None) -> web.Application:
    # observe outermost: the request id is set for what problems logs, and every answer
    # (problem documents included) is counted and carries X-Request-ID.
    figures = metrics.Http()
    app = web.Application(
        middlewares=[metrics.observer(figures), problems], client_max_size=MAX_BODY_BYTES
    )
    app[SETTINGS] = settings = settings or Settings()
    if settings.rate_limit is not None:
        app[limits.LIMITER] = limits.Limiter(
            limits.Limit.parse(settings.rate_limit, settings.stream_limit)
        )
    app.middlewares.append(limits.limit)  # inside `problems`: a 429 is a problem document
    app[metrics.HTTP] = figures
    app.on_response_prepare.append(logs.echo_request_id)
    app.cleanup_ctx.append(_storage)
    app.on_shutdown.append(_close_streams)
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, guarded(endpoint))
    dashboard.setup(app)
    return app
