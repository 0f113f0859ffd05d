"""A mixed log for filtered reads (several types and companies, amendments of every kind whose
targets are of every type), and the plain filter of the whole log they must agree with."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from events.entries import LogEntry
from events.store import EventStore
from events.types import AMENDMENTS
from tests.factories import batch, event_in

COMPANIES = ("alibaba", "baidu", "bytedance", "tencent")
# A common type, two less so and a rare one.
TYPES = ("model.launched", "team.formed", "statement.made", "ceo.letter")
WEIGHTS = (6, 3, 3, 1)
_DATA: dict[str, dict[str, Any]] = {
    "model.launched": {"model": "文心一言", "stage": "public"},
    "team.formed": {"name": "Hunyuan", "headcount": 40},
    "statement.made": {"speaker": "Chair", "summary": 'a "quoted" summary \\ \u0000 end'},
    "ceo.letter": {"author": "CEO", "summary": "Letter to all staff."},
}


def _amendment(rng: random.Random, company: str, target: str, kind: str) -> dict[str, Any]:
    amendment = rng.choice(sorted(AMENDMENTS))
    data: dict[str, Any] = {"target": target}
    if amendment == "event.corrected":
        data |= rng.choice([{"confidence": "rumored"}, {"occurred": "2022"}, {"data": _DATA[kind]}])
    elif amendment == "event.retracted":
        data["reason"] = rng.choice(["denied", "撤回了", 'said "no"'])
    return event_in(company=company, type=amendment, data=data)


async def mixed_log(store: EventStore, entries: int = 240, seed: int = 3) -> list[LogEntry]:
    """Append `entries` entries in batches of 1 to 12: facts of TYPES over COMPANIES, and about
    a quarter amendments of an earlier fact of their company."""
    rng = random.Random(seed)
    facts: dict[str, list[tuple[str, str]]] = {company: [] for company in COMPANIES}
    bodies: list[dict[str, Any]] = []
    for _ in range(entries):
        company = rng.choice(COMPANIES)
        if facts[company] and rng.random() < 0.25:
            bodies.append(_amendment(rng, company, *rng.choice(facts[company])))
        else:
            (kind,) = rng.choices(TYPES, WEIGHTS)
            bodies.append(event_in(company=company, type=kind, data=_DATA[kind]))
            facts[company].append((bodies[-1]["id"], kind))
    start = 0
    while start < len(bodies):
        size = rng.randint(1, 12)
        await store.append(batch(*bodies[start : start + size]))
        start += size
    log = await store.read(limit=entries + 1)
    assert len(log) == entries
    return log


def filtered(log: Sequence[LogEntry], query: Mapping[str, Any]) -> list[LogEntry]:
    """What EventStore.read answers to `query` (its keyword arguments), from the whole log in
    Python."""
    after, until = query.get("after", 0), query.get("until")
    companies, types = query.get("companies", ()), query.get("types", ())
    follow = query.get("amendments_follow", False)
    by_id = {entry.id: entry for entry in log}

    def passes(entry: LogEntry) -> bool:
        if entry.position <= after or (until is not None and entry.position > until):
            return False
        if companies and entry.company not in companies:
            return False
        if not types or entry.type in types:
            return True
        target = entry.target
        return follow and target is not None and by_id[target].type in types

    return [entry for entry in log if passes(entry)][: query.get("limit", 100)]
