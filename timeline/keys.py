"""Typed keys under which the application keeps its shared objects."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from events.store import EventStore
from events.writer import GroupWriter
from timeline.auth import Tokens
from timeline.config import Settings
from timeline.hub import Hub
from timeline.webhooks import Webhooks

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", EventStore)
WRITER = web.AppKey("writer", GroupWriter)
TOKENS = web.AppKey("tokens", Tokens)
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", CollectorRegistry)
WEBHOOKS = web.AppKey("webhooks", Webhooks)
