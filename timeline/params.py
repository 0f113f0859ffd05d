"""The parameters of the API: each query or path parameter parsed (400 or 404 saying which
and why), and its OpenAPI description, shared by the endpoints that take it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from aiohttp import web

from events.dates import days_of
from events.errors import BadRequest, NotFound
from events.types import EVENT_TYPES, SLUG_PATTERN
from events.values import natural
from timeline.openapi import Param

_SLUG = re.compile(SLUG_PATTERN)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DATE = re.compile(r"[0-9]{4}(-Q[1-4]|-[0-9]{2}(-[0-9]{2})?)?")
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def bad_query(name: str, message: str) -> BadRequest:
    return BadRequest(
        f"query parameter {name!r}: {message}", errors=[{"loc": ["query", name], "msg": message}]
    )


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise bad_query(name, "expected a non-negative integer")
    value = natural(raw)
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise bad_query(name, f"must be {bounds}")
    return value


def query_optional_int(request: web.Request, name: str) -> int | None:
    return query_int(request, name, 0, 0) if name in request.query else None


def query_companies(request: web.Request) -> list[str]:
    values = request.query.getall("company", [])
    for value in values:
        if _SLUG.fullmatch(value) is None:
            raise bad_query("company", f"{value!r} is not a company slug")
    return values


def query_types(request: web.Request) -> list[str]:
    values = request.query.getall("type", [])
    for value in values:
        if value not in EVENT_TYPES:
            raise bad_query("type", f"{value!r} is not an event type")
    return values


def query_date(request: web.Request, name: str, *, last: bool = False) -> date | None:
    """A day, or a coarser date (YYYY, YYYY-Qn, YYYY-MM) read as its first day, or as its last
    with `last`."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if _DATE.fullmatch(raw) is None:
        raise bad_query(name, "expected a date as YYYY-MM-DD, YYYY-MM, YYYY-Qn or YYYY")
    try:
        first, final = days_of(raw)
    except ValueError:
        raise bad_query(name, f"{raw!r} is not a calendar date") from None
    return final if last else first


def query_as_of(request: web.Request) -> date:
    """`as_of`: a coarser date means its last day (as_of=2023-Q3 is 2023-09-30)."""
    return query_date(request, "as_of", last=True) or datetime.now(UTC).date()


def query_known_at(request: web.Request, name: str = "known_at") -> int | datetime | None:
    """A point of transaction time: a log position, or an RFC 3339 time with an offset."""
    raw = request.query.get(name)
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit():
        return natural(raw)
    if _TIME.fullmatch(raw) is None:
        raise bad_query(name, "expected a log position or an RFC 3339 time with offset")
    try:
        moment = datetime.fromisoformat(raw.upper().replace(" ", "T"))
    except ValueError:
        raise bad_query(name, f"{raw!r} is not a valid time") from None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within a day of the calendar's ends: before or after any entry
        return (
            datetime.min.replace(tzinfo=UTC)
            if moment.year == 1
            else datetime.max.replace(tzinfo=UTC)
        )


def query_since(request: web.Request) -> int | datetime:
    """`since`, which a changes endpoint requires: what `known_at` takes."""
    since = query_known_at(request, "since")
    if since is None:
        raise bad_query("since", "required: the log position or time to compare from")
    return since


def query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise bad_query(name, "expected true or false")
    return raw in ("true", "1")


def company_param(request: web.Request) -> str:
    company = request.match_info["company"]
    if _SLUG.fullmatch(company) is None:
        raise NotFound(f"no company {company!r}: company names are slugs like 'alibaba'")
    return company


def event_id_param(request: web.Request) -> str | None:
    """The path's event id in lower case; None when it is no UUID (no event has it)."""
    event_id = request.match_info["id"].lower()
    return event_id if _UUID.fullmatch(event_id) else None


AFTER = Param("after", {"type": "integer", "minimum": 0}, "Only positions greater than this")
LIMIT = Param(
    "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size"
)
COMPANY = Param("company", {"type": "string", "pattern": SLUG_PATTERN}, "Company filter", True)
TYPE = Param("type", {"type": "string", "enum": sorted(EVENT_TYPES)}, "Event type filter", True)
ID = Param("id", {"type": "string", "format": "uuid"}, "Event id", where="path")
COMPANY_PATH = Param(
    "company", {"type": "string", "pattern": SLUG_PATTERN}, "Company", where="path"
)
# A day, or a year, quarter or month (read as its first or last day).
DAY_PATTERN = r"^[0-9]{4}(-Q[1-4]|-[0-9]{2}(-[0-9]{2})?)?$"
AS_OF = Param(
    "as_of",
    {"type": "string", "pattern": DAY_PATTERN},
    "Valid time: a day, or the last day of a year, quarter or month (default: today, UTC)",
)
_POINT = {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "format": "date-time"}]}
KNOWN_AT = Param(
    "known_at", _POINT, "Transaction time: a log position or an RFC 3339 time (default: the head)"
)
SINCE = Param("since", _POINT, "S1, what the changes are from: as known_at", required=True)
UNTIL = Param("until", _POINT, "S2, what the changes are to: as known_at (default: the head)")
POSSIBLE = Param("include_possible", {"type": "boolean"}, "Fold possible events into the lists")
FROM = Param(
    "from",
    {"type": "string", "pattern": DAY_PATTERN},
    "Events whose range meets [from, to]; a coarser date means its first day",
)
TO = Param(
    "to",
    {"type": "string", "pattern": DAY_PATTERN},
    "Events whose range meets [from, to]; a coarser date means its last day",
)
CURSOR = Param("cursor", {"type": "string"}, "next_cursor of the previous page")
STREAM_AFTER = Param("after", {"type": "integer", "minimum": 0}, "Start after (default: head)")
INCLUDE = Param("include", {"type": "string", "enum": ["state"]}, "Add company state")
LAST_EVENT_ID = Param(
    "Last-Event-ID", {"type": "integer", "minimum": 0}, "Wins over after", where="header"
)
WEBHOOK_ID = Param("id", {"type": "string"}, "Webhook id", where="path")
