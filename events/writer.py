"""Group commit: one writer commits whatever appends are queued as one transaction, then
answers each caller. An append is acknowledged only after its commit.

An append, from the request to the answer, and why each hand-off:
1. On the event loop, the handler validates the body (events.validation) and calls
   GroupWriter.append, which queues it: concurrent requests share one commit and its fsync.
2. The writer hands the queue to EventStore.submit_appends, which runs it on the backend's
   writer thread: a transaction blocks in the driver, and the loop must keep serving.
3. There, in one transaction, events.plan checks and positions each batch, the entries are
   inserted and every projection applies them: no reader sees an entry without its projection.
4. On commit, still on that thread, the next group starts at once; the loop then hands the
   entries to the listeners (the live feed) in position order, and answers each caller."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from events.entries import LogEntry, NewEvent
from events.errors import StoreError, TimelineError, Unavailable
from events.store import Appended, EventStore

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[LogEntry]], None]
Results = list[Appended | TimelineError]


def _ignore(size: int) -> None:
    pass


@dataclass(slots=True)
class _Pending:
    batch: Sequence[NewEvent]
    future: asyncio.Future[Appended]


class GroupWriter:
    """The single writer in front of a store. `listeners` are called with each commit's new
    events, in position order, right after the commit and before any caller is answered.

    At most one group is in flight. An append that finds the writer idle goes out at once,
    alone; appends arriving meanwhile queue. When a group commits, its callers are answered
    and the store's writer thread takes everything queued (up to `max_group_events`) as the
    next group, without waiting for the event loop to get round to starting it.

    If appends queued while the last group committed, and they come faster than one per
    `quiet_seconds` (the writer is under load), it first lingers while more keep arriving
    (each within `quiet_seconds` of the last), for at most `linger_seconds` and never past a
    full group: a commit costs much the same CPU for one event as for dozens (the WAL sync,
    the pages each index touches), so under load a slightly later, larger group is cheaper per
    event than several small ones. An append that finds the writer idle never waits, nor does
    a trickle of appends, nor a caller's next append after its last was answered with nothing
    else queued. With `linger_seconds=0` the next group is dispatched before the last one is
    answered."""

    def __init__(
        self,
        store: EventStore,
        *,
        max_group_events: int = 5000,
        max_pending_events: int = 100_000,
        linger_seconds: float = 0.0,
        quiet_seconds: float = 0.0005,
    ) -> None:
        self.store = store
        self.listeners: list[Listener] = []
        self._max_group = max_group_events
        self._max_pending = max_pending_events
        self._linger = linger_seconds
        self._quiet = quiet_seconds
        self._pending_events = 0  # touched on the event loop only
        self.appended = 0
        self.groups = 0
        # For /metrics, on the event loop only: the events of each batch by outcome (created,
        # replayed, or a refusal's problem type), and hooks given each batch's size as it
        # arrives and each committed group's.
        self.events_by_outcome: dict[str, int] = {}
        self.on_batch: Callable[[int], None] = _ignore
        self.on_group: Callable[[int], None] = _ignore
        # Shared with the store's thread: the queue and whether a group is out, under the lock.
        self._lock = threading.Lock()
        self._queue: deque[_Pending] = deque()
        self._queued_events = 0
        self._last_arrival = 0.0
        self._last_gap = float("inf")  # between the last two appends
        self._arrived = threading.Condition(self._lock)
        self._busy = False
        self._undelivered = 0  # groups sent to the store and not yet answered
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.Event | None = None
        self._closing = False

    @property
    def pending_events(self) -> int:
        return self._pending_events

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()

    async def stop(self) -> None:
        """Commit what is queued, then stop. Appends arriving after this are refused."""
        self._closing = True
        with self._lock:
            self._arrived.notify()
        if self._idle is not None:
            await self._idle.wait()
        self._loop = None

    async def append(self, batch: Sequence[NewEvent]) -> Appended:
        self.on_batch(len(batch))
        if self._closing or self._loop is None:
            self._count(Unavailable.name, len(batch))
            raise Unavailable(
                "the server is shutting down; retry on another instance", retry_after=1
            )
        if self._pending_events + len(batch) > self._max_pending:
            self._count(Unavailable.name, len(batch))
            raise Unavailable("the writer is saturated; retry shortly", retry_after=1)
        future: asyncio.Future[Appended] = self._loop.create_future()
        self._pending_events += len(batch)
        assert self._idle is not None
        self._idle.clear()
        with self._lock:
            self._queue.append(_Pending(batch, future))
            self._queued_events += len(batch)
            now = time.monotonic()
            self._last_gap, self._last_arrival = now - self._last_arrival, now
            idle, self._busy = not self._busy, True
            if self._queued_events >= self._max_group:
                self._arrived.notify()
        if idle:
            self._dispatch()
        return await future

    def _dispatch(self) -> None:
        """Send what is queued to the store as one transaction (on any thread)."""
        with self._lock:
            group: list[_Pending] = []
            size = 0
            queue = self._queue
            while queue and (not group or size + len(queue[0].batch) <= self._max_group):
                item = queue.popleft()
                group.append(item)
                size += len(item.batch)
            self._queued_events -= size
            if group:
                self._undelivered += 1
            else:
                self._busy = False
        loop = self._loop
        if not group:
            if loop is not None:  # the last answer may have gone out while this one was busy
                loop.call_soon_threadsafe(self._settle)
            return
        assert loop is not None
        try:
            started = self.store.submit_appends([item.batch for item in group])
        except Exception as exc:  # the store could not even start: this group fails alone
            loop.call_soon_threadsafe(self._deliver, group, size, exc)
            self._dispatch()
            return
        started.add_done_callback(lambda done: self._committed(group, size, done))

    def _committed(
        self, group: list[_Pending], size: int, done: concurrent.futures.Future[Results]
    ) -> None:
        # On the store's thread, right after the commit.
        outcome: Results | BaseException
        try:
            outcome = done.result()
        except BaseException as exc:
            outcome = exc
        loop = self._loop
        assert loop is not None
        if not self._linger:  # the next group goes first
            self._dispatch()
            loop.call_soon_threadsafe(self._deliver, group, size, outcome)
            return
        # Appends queued during this commit mean load: answer, then linger for more. With
        # none queued the writer goes idle before answering, so a caller's next append (a
        # client writing one request after another) goes out at once.
        with self._lock:
            queued = bool(self._queue)
            if not queued:
                self._busy = False
        loop.call_soon_threadsafe(self._deliver, group, size, outcome)
        if queued:
            self._wait_for_more()
            self._dispatch()

    def _wait_for_more(self) -> None:
        """Linger while appends keep arriving (see the class's docstring)."""
        # Paired (bench/compare.py, 64 appenders, pinned), linger 0 -> 2 ms: x1.14 events/s.
        deadline = time.monotonic() + self._linger
        with self._lock:
            while self._queue and self._queued_events < self._max_group and not self._closing:
                if self._last_gap >= self._quiet:  # a trickle: the next one is not coming soon
                    return
                now = time.monotonic()
                until = min(self._last_arrival + self._quiet, deadline)
                if now >= until:
                    return
                self._arrived.wait(until - now)

    def _settle(self) -> None:
        """On the event loop: mark the writer idle once no group is out or unanswered."""
        with self._lock:
            idle = not self._busy and not self._undelivered
        if idle and self._idle is not None:
            self._idle.set()

    def _deliver(self, group: list[_Pending], size: int, outcome: Results | BaseException) -> None:
        """On the event loop: tell the listeners and answer each caller, in commit order."""
        self._pending_events -= size
        with self._lock:
            self._undelivered -= 1
        self._settle()
        if isinstance(outcome, BaseException):
            error = self._error(outcome)
            self._count(error.name, size)
            self._fail(group, error)
            return
        created = [
            event
            for result in outcome
            if isinstance(result, Appended) and result.created
            for event in result.events
        ]
        self.groups += 1
        self.appended += len(created)
        self.on_group(size)
        if created:
            for listener in self.listeners:
                try:
                    listener(created)
                except Exception:
                    log.exception("a commit listener failed")
        counts = self.events_by_outcome
        for item, result in zip(group, outcome, strict=True):
            kind = (
                result.name
                if isinstance(result, TimelineError)
                else ("created" if result.created else "replayed")
            )
            counts[kind] = counts.get(kind, 0) + len(item.batch)
            if item.future.done():
                continue
            if isinstance(result, TimelineError):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    def _count(self, outcome: str, events: int) -> None:
        self.events_by_outcome[outcome] = self.events_by_outcome.get(outcome, 0) + events

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
