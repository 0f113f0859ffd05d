"""Which events a consumer of the log takes (a stream, a webhook), and where it starts.

A consumer filters by company and by type, and a type filter also passes every amendment
whose target it passes (a consumer that follows launches hears of their corrections,
retractions and reinstatements). The rule is applied in memory to live commits (`wants`,
with the target's type when `needs_target`) and to what is read from the store (`read`: the
backends' SQL, `amendments_follow`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from events.entries import LogEntry
from events.errors import PositionConflict
from events.store import EventStore
from events.types import AMENDMENTS


@dataclass(frozen=True)
class EventFilter:
    """A consumer's company and type filters (empty: no filter)."""

    companies: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()

    @classmethod
    def of(cls, companies: Iterable[str] = (), types: Iterable[str] = ()) -> EventFilter:
        return cls(frozenset(companies), frozenset(types))

    @property
    def takes_all(self) -> bool:
        return not self.companies and not self.types

    def wants(self, event: LogEntry, target_type: str | None = None) -> bool:
        """Whether the event passes the filters. A type filter also passes an amendment whose
        target passes it (`target_type`: the target's type, see `needs_target`)."""
        if self.companies and event.company not in self.companies:
            return False
        return not self.types or event.type in self.types or target_type in self.types

    def needs_target(self, event: LogEntry) -> bool:
        """Whether `wants` turns on the type of the event's target: an amendment of a
        company this filter takes, under a type filter its own type does not pass."""
        return (
            bool(self.types)
            and event.type in AMENDMENTS
            and event.type not in self.types
            and (not self.companies or event.company in self.companies)
        )

    async def read(
        self, store: EventStore, *, after: int, until: int, limit: int
    ) -> list[LogEntry]:
        """The first `limit` entries in (after, until] that the filters pass, in position
        order."""
        return await store.read(
            after=after,
            limit=limit,
            companies=sorted(self.companies),
            types=sorted(self.types),
            until=until,
            amendments_follow=True,
        )


def start_after(after: int | None, head: int) -> int:
    """The position a consumer starts after: `after`, or the head when it gives none.
    PositionConflict when `after` is past the head."""
    start = head if after is None else after
    PositionConflict.unless_within(start, head)
    return start
