"""Group commit: one writer commits whatever appends are queued as one transaction, then
answers each caller. An append is acknowledged only after its commit."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from events.envelope import NewEvent, RecordedEvent
from events.errors import StoreError, TimelineError, Unavailable
from events.store import Appended, EventStore

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[RecordedEvent]], None]


@dataclass(slots=True)
class _Pending:
    batch: Sequence[NewEvent]
    future: asyncio.Future[Appended]


class GroupWriter:
    """The single writer in front of a store. `listeners` are called with each commit's new
    events, in position order, right after the commit and before any caller is answered.

    At most one commit is in flight. An append that finds the writer idle is dispatched at
    once, from its own call (the store starts the transaction before returning); appends that
    arrive meanwhile queue, and the moment a commit ends, everything queued (up to
    `max_group_events`) goes out as the next one, before the finished group is answered. So
    the store works on one group while the event loop reads and validates the next: a
    closed-loop client does not wait for a commit and then for its own validation in turn."""

    def __init__(
        self,
        store: EventStore,
        *,
        max_group_events: int = 5000,
        max_pending_events: int = 100_000,
    ) -> None:
        self.store = store
        self.listeners: list[Listener] = []
        self._max_group = max_group_events
        self._max_pending = max_pending_events
        self._pending_events = 0
        self.appended = 0
        self.groups = 0
        self._queue: deque[_Pending] = deque()
        self._inflight: asyncio.Future[list[Appended | TimelineError]] | None = None
        self._idle: asyncio.Event | None = None
        self._started = False
        self._closing = False

    @property
    def pending_events(self) -> int:
        return self._pending_events

    def start(self) -> None:
        self._idle = asyncio.Event()
        self._idle.set()
        self._started = True

    async def stop(self) -> None:
        """Commit what is queued, then stop. Appends arriving after this are refused."""
        self._closing = True
        if self._idle is not None:
            await self._idle.wait()
        self._started = False

    async def append(self, batch: Sequence[NewEvent]) -> Appended:
        if self._closing or not self._started:
            raise Unavailable(
                "the server is shutting down; retry on another instance", retry_after=1
            )
        if self._pending_events + len(batch) > self._max_pending:
            raise Unavailable("the writer is saturated; retry shortly", retry_after=1)
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._pending_events += len(batch)
        self._queue.append(_Pending(batch, future))
        if self._inflight is None:
            self._dispatch()
        return await future

    def _dispatch(self) -> None:
        """Send everything queued (up to the group limit) to the store as one transaction."""
        group: list[_Pending] = []
        size = 0
        while self._queue and (not group or size + len(self._queue[0].batch) <= self._max_group):
            item = self._queue.popleft()
            if item.future.done():  # its caller is gone (cancelled): nothing to store
                self._pending_events -= len(item.batch)
                continue
            group.append(item)
            size += len(item.batch)
        if not group:
            self._settled()
            return
        assert self._idle is not None
        self._idle.clear()
        try:
            inflight = self.store.submit([item.batch for item in group])
        except Exception as exc:  # the store could not even start: this group fails alone
            self._pending_events -= size
            self._fail(group, self._error(exc))
            self._dispatch()
            return
        self._inflight = inflight
        inflight.add_done_callback(lambda done: self._committed(group, size, done))

    def _committed(
        self,
        group: list[_Pending],
        size: int,
        done: asyncio.Future[list[Appended | TimelineError]],
    ) -> None:
        self._inflight = None
        self._pending_events -= size
        self._dispatch()  # the next group starts before this one is answered
        if done.cancelled():
            self._fail(group, StoreError("the append was interrupted"))
            return
        exc = done.exception()
        if exc is not None:
            self._fail(group, self._error(exc))
            return
        self._answer(group, done.result())

    def _settled(self) -> None:
        if self._idle is not None and self._inflight is None and not self._queue:
            self._idle.set()

    def _answer(self, group: list[_Pending], results: list[Appended | TimelineError]) -> None:
        created = [
            event
            for result in results
            if isinstance(result, Appended) and result.created
            for event in result.events
        ]
        self.groups += 1
        self.appended += len(created)
        if created:
            for listener in self.listeners:
                try:
                    listener(created)
                except Exception:
                    log.exception("a commit listener failed")
        for item, result in zip(group, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, TimelineError):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    @staticmethod
    def _error(exc: BaseException) -> TimelineError:
        if isinstance(exc, TimelineError):
            return exc
        return StoreError(f"the append failed ({type(exc).__name__})")

    @staticmethod
    def _fail(group: list[_Pending], error: TimelineError) -> None:
        for item in group:
            if not item.future.done():
                item.future.set_exception(error)
