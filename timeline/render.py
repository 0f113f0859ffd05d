"""Answers as JSON: texts put together from the parts the log and projections keep (a log
entry's JSON is byte for byte what was hashed), or values encoded by orjson."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from events.entries import LogEntry
from projections.state import LogPoint


def json_response(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, body=text.encode(), content_type="application/json")


def orjson_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(value), content_type="application/json")


def event_list(events: Iterable[LogEntry]) -> str:
    return "[" + ",".join(event.to_json() for event in events) + "]"


def known_json(known: LogPoint) -> str:
    return orjson.dumps(known.as_json()).decode()
