"""The oracle: every projection answer computed from scratch by folding the whole log.
Written for clarity, not speed; the tests hold the indexed answers to it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from events.dates import FuzzyDate
from events.entries import LogEntry
from events.types import AMENDMENTS
from projections.fold import Fact, Status, fold, range_status


def effective(log: Iterable[LogEntry], known_at: int) -> dict[str, Fact | None]:
    """Every non-amendment event with position ≤ known_at, as in effect then (None: retracted)."""
    facts: dict[str, Fact] = {}
    retracted: set[str] = set()
    for event in log:
        if event.position > known_at:
            break
        if event.type not in AMENDMENTS:
            facts[event.id] = Fact(
                id=event.id,
                type=event.type,
                company=event.company,
                occurred=event.occurred,
                data=event.data,
                confidence=event.confidence,
                position=event.position,
            )
            continue
        change = event.data
        target = facts[change["target"]]
        if event.type == "event.retracted":
            retracted.add(target.id)
        elif event.type == "event.reinstated":
            retracted.discard(target.id)
        else:
            if "occurred" in change:
                target.occurred = FuzzyDate.parse(change["occurred"]).as_json()
            if "data" in change:
                target.data = change["data"]
            if "confidence" in change:
                target.confidence = change["confidence"]
    return {key: (None if key in retracted else fact) for key, fact in facts.items()}


def _live(log: Sequence[LogEntry], known_at: int) -> list[Fact]:
    facts = [fact for fact in effective(log, known_at).values() if fact is not None]
    return sorted(facts, key=Fact.order)


def version(log: Sequence[LogEntry], company: str, known_at: int) -> int:
    return sum(1 for e in log if e.company == company and e.position <= known_at)


def company_state(
    log: Sequence[LogEntry],
    company: str,
    as_of: date,
    known_at: int,
    *,
    include_possible: bool = False,
) -> dict[str, Any] | None:
    """The body of GET /v1/companies/{company} without `as_of`/`known_at`; None for 404."""
    current = version(log, company, known_at)
    if current == 0:
        return None
    facts = [f for f in _live(log, known_at) if f.company == company]
    state = fold(company, facts, as_of, include_possible=include_possible)
    state["version"] = current
    return state


def timeline(
    log: Sequence[LogEntry], company: str, as_of: date, known_at: int
) -> list[tuple[str, Status]] | None:
    """(id, status) of the company's timeline, in order; None for 404."""
    if version(log, company, known_at) == 0:
        return None
    found = []
    for fact in _live(log, known_at):
        if fact.company == company and (state := range_status(fact.lo, fact.hi, as_of)) is not None:
            found.append((fact.id, state))
    return found


def chronology(
    log: Sequence[LogEntry],
    known_at: int,
    *,
    start: date | None = None,
    end: date | None = None,
    companies: Sequence[str] = (),
    types: Sequence[str] = (),
) -> list[Fact]:
    """Effective events meeting the days [start, end], in valid-time order."""
    return [
        fact
        for fact in _live(log, known_at)
        if (end is None or fact.lo <= end.isoformat())
        and (start is None or fact.hi > start.isoformat())
        and (not companies or fact.company in companies)
        and (not types or fact.type in types)
    ]


def companies(log: Sequence[LogEntry], known_at: int) -> list[dict[str, Any]]:
    """The body of GET /v1/companies: every company with an event known at `known_at`."""
    live = _live(log, known_at)
    found = []
    for company in sorted({e.company for e in log if e.position <= known_at}):
        facts = [f for f in live if f.company == company]
        registrations = [f for f in facts if f.type == "company.registered"]
        found.append(
            {
                "company": company,
                "name": registrations[-1].data["name"] if registrations else company,
                "events": len(facts),
                "first": facts[0].occurred if facts else None,
                "last": facts[-1].occurred if facts else None,
            }
        )
    return found
