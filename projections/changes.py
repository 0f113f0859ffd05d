"""What changed between two points of transaction time, S1 and S2: a company's state as of a
day, known at S1 against known at S2 (two as-of reads and their difference), and the log's
entries between them, each with its target's effective form just before and just after."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson

from events.entries import LogEntry
from events.errors import BadRequest
from events.store import EventStore
from events.types import AMENDMENTS
from projections import state
from projections.cursors import fingerprint, opaque, refused, unwrap
from projections.fold import STATE_LISTS
from projections.state import LogPoint
from projections.temporal import reads

# The lists of a state, in its order, that a company's changes compare.
LISTS = (*STATE_LISTS, "possible")
KINDS = {
    "event.corrected": "corrected",
    "event.retracted": "retracted",
    "event.reinstated": "reinstated",
}


def ordered(since: LogPoint, until: LogPoint) -> None:
    """S1 must not come after S2."""
    if since.position > until.position:
        raise BadRequest(
            f"since (position {since.position}) is after until (position {until.position})",
            errors=[{"loc": ["query", "since"], "msg": "after until"}],
        )


async def company_changes(
    store: EventStore, company: str, as_of: date, since: LogPoint, until: LogPoint
) -> dict[str, Any] | None:
    """GET /v1/companies/{company}/changes; None when the company has no entry known at S2.
    Items are matched by list and id: one present at S2 only is added, at S1 only removed,
    at both but different changed (an event that became definite leaves `possible` and
    enters its list)."""
    ordered(since, until)
    after = await state.company_state(store, company, as_of, until, include_possible=False)
    if after is None:
        return None
    before = await state.company_state(store, company, as_of, since, include_possible=False)
    old: dict[str, Any] = orjson.loads(before) if before is not None else {}
    new: dict[str, Any] = orjson.loads(after)
    added, removed, changed = [], [], []
    for listed in LISTS:
        was = {item["id"]: item for item in old.get(listed, [])}
        now = {item["id"]: item for item in new[listed]}
        for item in new[listed]:
            earlier = was.get(item["id"])
            if earlier is None:
                added.append({"list": listed, "item": item})
            elif earlier != item:
                changed.append({"list": listed, "before": earlier, "after": item})
        removed += [{"list": listed, "item": i} for i in old.get(listed, []) if i["id"] not in now]
    return {
        "company": company,
        "as_of": as_of.isoformat(),
        "since": since.as_json(),
        "until": until.as_json(),
        "added": added,
        "removed": removed,
        "changed": changed,
    }


@dataclass(frozen=True, slots=True)
class ChangesCursor:
    """Where a page of /v1/changes ended: the pinned S2, the last position returned, and the
    fingerprint of the filters (S1 among them) of the pages it continues."""

    until: int
    position: int
    filters: str

    def encode(self) -> str:
        return opaque(3, [self.until, self.position, self.filters])

    @classmethod
    def decode(cls, text: str) -> ChangesCursor:
        until, position, filters = unwrap(text, 3, (int, int, str))
        return cls(until, position, filters)


async def log_changes(
    store: EventStore,
    since: LogPoint,
    until: LogPoint,
    *,
    companies: Sequence[str] = (),
    types: Sequence[str] = (),
    limit: int = 100,
    after: ChangesCursor | None = None,
) -> tuple[list[str], ChangesCursor | None]:
    """One page of GET /v1/changes, as JSON texts: the entries S1 < position ≤ S2 in position
    order (a `type` filter passes an amendment whose target passes it)."""
    ordered(since, until)
    filters = fingerprint([since.position, sorted(set(companies)), sorted(set(types))])
    if after is not None and after.filters != filters:
        raise BadRequest(
            "the cursor continues pages of other filters (since, company, type) than these",
            errors=[{"loc": ["query", "cursor"], "msg": "made with other filters"}],
        )
    if after is not None and not since.position <= after.position <= until.position:
        raise refused()
    entries = await store.read(
        after=since.position if after is None else after.position,
        until=until.position,
        limit=limit + 1,
        companies=companies,
        types=types,
        amendments_follow=True,
    )
    following = None
    if len(entries) > limit:
        entries = entries[:limit]
        following = ChangesCursor(until.position, entries[-1].position, filters)
    targets = [entry.target for entry in entries if entry.target is not None]
    versions = {}
    if targets:
        versions = await reads.versions_of(
            store, targets, entries[0].position, entries[-1].position
        )
    return [_change(entry, versions) for entry in entries], following


def _change(
    entry: LogEntry, versions: dict[str, list[tuple[int, int | None, bool, LogEntry]]]
) -> str:
    """One change: the entry, and its target's effective form before and after it (for an
    event of its own, none before and itself after)."""
    target = entry.target
    if entry.type not in AMENDMENTS or target is None:
        return (
            f'{{"position":{entry.position},"kind":"added","event":{entry.to_json()},'
            f'"target":null,"before":null,"after":{entry.to_json()}}}'
        )
    before = after = "null"
    for sys_from, sys_to, retracted, version in versions.get(target, []):
        shown = "null" if retracted else version.to_json()
        if sys_to == entry.position:
            before = shown
        if sys_from == entry.position:
            after = shown
    return (
        f'{{"position":{entry.position},"kind":"{KINDS[entry.type]}","event":{entry.to_json()},'
        f'"target":"{target}","before":{before},"after":{after}}}'
    )
