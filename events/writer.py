"""Group commit: one writer task commits whatever appends are queued as one transaction,
then answers each caller. An append is acknowledged only after its commit."""

from __future__ import annotations

import asyncio
import logging
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
    events, in position order, right after the commit and before any caller is answered."""

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
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def pending_events(self) -> int:
        return self._pending_events

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="timeline-group-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop. Appends arriving after this are refused."""
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    async def append(self, batch: Sequence[NewEvent]) -> Appended:
        if self._closing or self._task is None:
            raise Unavailable(
                "the server is shutting down; retry on another instance", retry_after=1
            )
        if self._pending_events + len(batch) > self._max_pending:
            raise Unavailable("the writer is saturated; retry shortly", retry_after=1)
        future: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._pending_events += len(batch)
        self._queue.put_nowait(_Pending(batch, future))
        return await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            group, size = [first], len(first.batch)
            while size < self._max_group and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                group.append(item)
                size += len(item.batch)
            await self._commit(group)
            self._pending_events -= size
        while not self._queue.empty():  # refused stragglers, never left hanging
            item = self._queue.get_nowait()
            if item is not None and not item.future.done():
                item.future.set_exception(Unavailable("the server is shutting down", retry_after=1))

    async def _commit(self, group: list[_Pending]) -> None:
        try:
            results = await self.store.append_many([item.batch for item in group])
        except TimelineError as error:
            self._fail(group, error)
            return
        except Exception as exc:
            self._fail(group, StoreError(f"the append failed ({type(exc).__name__})"))
            return
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
    def _fail(group: list[_Pending], error: TimelineError) -> None:
        for item in group:
            if not item.future.done():
                item.future.set_exception(error)
