"""The follower: what other processes commit to the log reaches this process's hub (and its
webhooks) from the store, in position order, with the same no-gap, no-duplicate handover as
this process's own commits.

It wakes when the store hears of another process's commit (PostgreSQL: LISTEN), when the hub
finds a commit of its own that does not follow its head (another process's entries lie
between), and every `interval` seconds regardless, which bounds the delay should a wake-up
ever be missed. Each time it reads the entries after the hub's head, page by page, and
publishes them; the hub drops what it has already published."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from events import waits
from events.entries import LogEntry
from events.errors import TimelineError
from events.store import EventStore
from events.waits import set_within
from timeline.hub import Hub

log = logging.getLogger(__name__)

PAGE = 500
Listener = Callable[[Sequence[LogEntry]], None]


class Follower:
    """Feeds `hub` and `listeners` with the log's entries they have not seen."""

    def __init__(
        self,
        store: EventStore,
        hub: Hub,
        listeners: Sequence[Listener] = (),
        *,
        interval: float = 1.0,
    ) -> None:
        self.store, self.hub, self.interval = store, hub, interval
        self.listeners = list(listeners)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        hub.on_gap = self.wake
        hub.catch_up = self.catch_up

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._follow(), name="timeline-follower"),
            asyncio.create_task(self._listen(), name="timeline-listen"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            await waits.cancel(task)
        self._tasks = []

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        async for _ in self.store.notifications():
            self._wake.set()

    async def _follow(self) -> None:
        while True:
            await set_within(self._wake, self.interval)
            self._wake.clear()
            try:
                await self.catch_up()
            except TimelineError:  # the database is away: the next round tries again
                log.warning("could not read the log's new entries; retrying")

    async def catch_up(self) -> None:
        """Publish every entry after the hub's head, in position order."""
        while True:
            page = await self.store.read(after=self.hub.head, limit=PAGE)
            fresh = [event for event in page if event.position > self.hub.head]
            if fresh:
                self.hub.publish(fresh)
                for listener in self.listeners:
                    try:
                        listener(fresh)
                    except Exception:
                        log.exception("a listener of the follower failed")
            if len(page) < PAGE:
                return
