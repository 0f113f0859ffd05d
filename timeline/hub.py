"""The live feed's fan-out: the hub hands each commit, in position order and with no gap, to
one bounded queue per subscribed stream (or straight to its socket), and cuts off a stream
whose queue is full."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from events.entries import LogEntry
from events.store import EventStore
from timeline.filters import EventFilter
from timeline.sse import Commit, message

# A fan-out waits this many times the last one's duration after it (see Hub).
FAN_OUT_SPACING = 2.0
# Amendments whose target's type the hub remembers for its streams.
MAX_TARGETS = 1000


@dataclass(eq=False)
class Subscriber:
    """One stream's place in the hub: the commits published since it registered."""

    wanted: EventFilter
    queue: asyncio.Queue[Commit | None]
    on_overflow: Callable[[], None] = lambda: None
    # Set while the stream is live and can take a commit synchronously (see Stream.write_now);
    # it returns False when it cannot, and the commit goes to the queue instead.
    direct: Callable[[Commit], bool] | None = None
    overflowed: bool = False
    closed: bool = False


@dataclass
class Hub:
    """Fans each commit out to every subscriber. `publish` runs right after a commit and
    `subscribe` reads the head, both without awaiting, so a stream that subscribed at head H
    receives exactly the commits after H (it skips what it replayed itself).

    A commit published soon after the last fan-out waits for the next one, with whatever else
    arrives meanwhile: "soon" is twice the time the last fan-out took, at most
    `coalesce_seconds`. Many subscribers on a busy log get fewer, larger writes (a write costs
    the same whatever its size); a few subscribers, or a quiet log, get every commit at once."""

    head: int
    queue_size: int = 1000
    coalesce_seconds: float = 0.0
    spacing: float = FAN_OUT_SPACING
    dropped: int = 0
    subscribers: set[Subscriber] = field(default_factory=set)
    closing: bool = False
    # Called when a commit does not follow the head: entries lie between that this process
    # did not write (another process's); the follower reads them from the store.
    on_gap: Callable[[], None] = lambda: None
    # Reads what the database has past the head (set by the follower); a stream asked to
    # start past the head awaits it first: another process may have committed that position.
    catch_up: Callable[[], Awaitable[None]] | None = None
    _pending: Commit | None = None
    _next_fan_out: float = 0.0
    # The type of each recent amendment's target, looked up once for every stream that needs
    # it (see Stream._look_up_targets), by the amendment's position.
    _targets: dict[int, asyncio.Task[str | None]] = field(default_factory=dict)

    def subscribe(self, wanted: EventFilter) -> tuple[Subscriber, int]:
        subscriber = Subscriber(wanted, asyncio.Queue(self.queue_size))
        self.subscribers.add(subscriber)
        return subscriber, self.head

    async def target_type(self, store: EventStore, amendment: LogEntry) -> str | None:
        """The type of the amendment's target (None if it is not stored)."""
        task = self._targets.get(amendment.position)
        if task is None:
            task = asyncio.create_task(_type_of(store, amendment.data["target"]))
            self._targets[amendment.position] = task
            task.add_done_callback(self._forget_failed(amendment.position))
            if len(self._targets) > MAX_TARGETS:
                del self._targets[next(iter(self._targets))]
        return await asyncio.shield(task)

    def _forget_failed(self, position: int) -> Callable[[asyncio.Task[str | None]], None]:
        def forget(task: asyncio.Task[str | None]) -> None:
            if task.cancelled() or task.exception() is not None:
                self._targets.pop(position, None)  # the next stream asks again

        return forget

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def end(self, subscriber: Subscriber) -> None:
        """Unsubscribe the stream and have its task return (its client has gone)."""
        self.subscribers.discard(subscriber)
        subscriber.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            subscriber.queue.put_nowait(None)

    def publish(self, events: Sequence[LogEntry]) -> None:
        """Hand out a commit's new events, in position order. Events at or below the head
        were handed out already (from the store, by the follower) and are dropped; a commit
        that does not follow the head is dropped too, and the follower reads it, with what
        lies before it, from the store: the head only ever moves one position at a time."""
        if events and events[0].position <= self.head:
            events = [event for event in events if event.position > self.head]
        if not events:
            return
        if events[0].position != self.head + 1:
            self.on_gap()
            return
        self.head = events[-1].position
        if not self.subscribers and self._pending is None:
            return  # nobody to render for: a stream that comes later replays from the store
        commit = Commit([(event, message(event)) for event in events])
        if self._pending is not None:  # a fan-out is already due: ride along with it
            self._pending.extend(commit)
            return
        wait = self._next_fan_out - time.monotonic()
        if wait <= 0:
            self._fan_out(commit)
        else:
            self._pending = commit
            asyncio.get_running_loop().call_later(wait, self._flush)

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self._fan_out(pending)

    def _fan_out(self, commit: Commit) -> None:
        began = time.monotonic()
        for subscriber in list(self.subscribers):
            # Straight to the socket when nothing is queued before it: no task to wake.
            direct = subscriber.direct
            if direct is not None and subscriber.queue.empty() and direct(commit):
                continue
            try:
                subscriber.queue.put_nowait(commit)
            except asyncio.QueueFull:
                # Never skip silently: cut it off; it resumes by Last-Event-ID from the store.
                subscriber.overflowed = True
                self.subscribers.discard(subscriber)
                self.dropped += 1
                subscriber.on_overflow()
        ended = time.monotonic()
        # The next fan-out waits twice as long as this one took (at most coalesce_seconds):
        # a few subscribers cost microseconds and never wait; thousands share writes.
        self._next_fan_out = ended + min(self.coalesce_seconds, self.spacing * (ended - began))

    def close(self) -> None:
        """End every stream (on shutdown), after what is due to them."""
        self._flush()
        self.closing = True
        for subscriber in list(self.subscribers):
            self.end(subscriber)


async def _type_of(store: EventStore, event_id: str) -> str | None:
    target = await store.get(event_id)
    return None if target is None else target.type
