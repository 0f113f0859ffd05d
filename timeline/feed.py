"""The live feed: a hub with one bounded queue per subscriber, and the SSE stream that replays
history and then follows the live log with no gap and no duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import HttpVersion11, web

from events.entries import LogEntry
from events.errors import BadRequest, PositionConflict, TimelineError, Unavailable
from events.store import EventStore, natural
from events.types import AMENDMENTS
from projections import state
from timeline.runner import ON_DISCONNECT

log = logging.getLogger(__name__)

RETRY_MS = 3000
REPLAY_PAGE = 500
# Above this many unsent bytes on a socket, live commits go through the subscriber's queue and
# its task, which waits for the socket to drain (and is cut off if its queue fills).
DIRECT_BUFFER_LIMIT = 256 * 1024
# A fan-out waits this many times the last one's duration after it (see Hub).
FAN_OUT_SPACING = 2.0
# Amendments whose target's type the hub remembers for its streams.
MAX_TARGETS = 1000


def message(event: LogEntry, data: str | None = None) -> bytes:
    """One SSE message for a log position."""
    body = event.to_json() if data is None else data
    return f"id: {event.position}\nevent: {event.type}\ndata: {body}\n\n".encode()


def checkpoint(position: int) -> bytes:
    return f'id: {position}\nevent: checkpoint\ndata: {{"position":{position}}}\n\n'.encode()


def frame(data: bytes) -> bytes:
    """`data` as one HTTP/1.1 chunk, framed as aiohttp frames a write to a chunked response."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class Commit(list[tuple[LogEntry, bytes]]):
    """A commit as the hub hands it out: each event with its SSE message, rendered once for
    all, and the whole commit as one HTTP chunk, framed once for every stream that takes all
    of it."""

    __slots__ = ("_chunk",)

    def chunk(self) -> bytes:
        try:
            return self._chunk
        except AttributeError:
            self._chunk: bytes = frame(b"".join([rendered for _, rendered in self]))
            return self._chunk


@dataclass(eq=False)
class Subscriber:
    """One stream's place in the hub: the commits published since it registered."""

    companies: frozenset[str]
    types: frozenset[str]
    queue: asyncio.Queue[Commit | None]
    on_overflow: Callable[[], None] = lambda: None
    # Set while the stream is live and can take a commit synchronously (see Stream.write_now);
    # it returns False when it cannot, and the commit goes to the queue instead.
    direct: Callable[[Commit], bool] | None = None
    overflowed: bool = False
    closed: bool = False

    def wants(self, event: LogEntry, target_type: str | None = None) -> bool:
        """Whether the event passes the filters. A type filter also passes an amendment whose
        target passes it (`target_type`: the target's type, see `needs_target`)."""
        if self.companies and event.company not in self.companies:
            return False
        return not self.types or event.type in self.types or target_type in self.types

    def needs_target(self, event: LogEntry) -> bool:
        """Whether `wants` turns on the type of the event's target: an amendment of a
        company this stream takes, under a type filter its own type does not pass."""
        return (
            bool(self.types)
            and event.type in AMENDMENTS
            and event.type not in self.types
            and (not self.companies or event.company in self.companies)
        )


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

    def subscribe(self, companies: Sequence[str], types: Sequence[str]) -> tuple[Subscriber, int]:
        subscriber = Subscriber(
            frozenset(companies), frozenset(types), asyncio.Queue(self.queue_size)
        )
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


@dataclass
class StreamRequest:
    """The validated parameters of GET /v1/stream."""

    after: int | None
    companies: list[str]
    types: list[str]
    include_state: bool


def start_position(request: StreamRequest, head: int) -> int:
    after = head if request.after is None else request.after
    PositionConflict.unless_within(after, head)
    return after


def parse_last_event_id(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise BadRequest(
            "Last-Event-ID must be a log position",
            errors=[{"loc": ["header", "Last-Event-ID"], "msg": "expected a non-negative integer"}],
        )
    return natural(raw)


class Stream:
    """Writes one subscriber's SSE stream: replay (after, H] from the store, then the live
    commits, writing only positions above the last one written."""

    def __init__(
        self,
        store: EventStore,
        hub: Hub,
        params: StreamRequest,
        response: web.StreamResponse,
        ping_seconds: float,
        transport: asyncio.Transport | None = None,
    ) -> None:
        self.store, self.hub, self.params = store, hub, params
        self.response, self.ping_seconds = response, ping_seconds
        # The connection, when live commits may be written to it directly (chunked HTTP/1.1).
        self.transport = transport
        self.subscriber: Subscriber | None = None
        self.takes_all = False
        self.direct_at = 0.0
        self.last = 0
        # The types of the targets of amendments that `needs_target`, by amendment position.
        self.target_types: dict[int, str] = {}
        # While the task awaits those look-ups, live commits queue behind what it holds.
        self.looking_up = False

    async def render(self, event: LogEntry) -> bytes:
        if not self.params.include_state:
            return message(event)
        known = state.KnownAt(event.position, event.recorded)
        today = datetime.now(UTC).date()
        company = await state.company_state(
            self.store, event.company, today, known, include_possible=False
        )
        data = f'{{"event":{event.to_json()},"state":{company or "null"}}}'
        return message(event, data)

    async def replay(self, after: int, head: int) -> None:
        self.last = after
        cursor = after
        while cursor < head:
            page = await self.store.read(
                after=cursor,
                limit=REPLAY_PAGE,
                companies=self.params.companies,
                types=self.params.types,
                until=head,
                amendments_follow=True,
            )
            if page:
                await self.response.write(b"".join([await self.render(e) for e in page]))
                self.last = page[-1].position
            if len(page) < REPLAY_PAGE:
                break
            cursor = page[-1].position
        if head > self.last:
            await self.response.write(checkpoint(head))
            self.last = head

    async def follow(self, subscriber: Subscriber) -> None:
        if self.transport is not None and not self.params.include_state:
            self.subscriber = subscriber
            self.takes_all = not subscriber.companies and not subscriber.types
            subscriber.direct = self.write_now
        while not subscriber.closed and not subscriber.overflowed:
            if subscriber.queue.empty():
                try:
                    async with asyncio.timeout(self.ping_seconds):
                        first = await subscriber.queue.get()
                except TimeoutError:
                    if time.monotonic() - self.direct_at >= self.ping_seconds:
                        await self.response.write(b": ping\n\n")
                    continue
            else:
                first = subscriber.queue.get_nowait()
            commits = [first]
            while not subscriber.queue.empty():
                commits.append(subscriber.queue.get_nowait())
            if any(commit is None for commit in commits) or subscriber.overflowed:
                return
            live = [commit for commit in commits if commit is not None]
            try:
                await self._look_up_targets(subscriber, live)
            except TimelineError:  # the database is away: the client resumes by Last-Event-ID
                log.warning("a stream ended: its amendments' targets could not be read")
                return
            wanted, moved = self._select(subscriber, live)
            parts = (
                [await self.render(event) for event, _ in wanted]
                if (self.params.include_state)
                else [rendered for _, rendered in wanted]
            )
            if moved:
                parts.append(checkpoint(moved))
            if parts:
                await self.response.write(b"".join(parts))

    async def _look_up_targets(self, subscriber: Subscriber, commits: Sequence[Commit]) -> None:
        """Find the target types `_select` needs for these commits' amendments (rare: only
        amendments under a type filter that their own type does not pass)."""
        self.target_types.clear()
        wanted = [
            event
            for commit in commits
            for event, _ in commit
            if event.position > self.last and subscriber.needs_target(event)
        ]
        self.looking_up = True
        try:
            for event in wanted:
                target_type = await self.hub.target_type(self.store, event)
                if target_type is not None:
                    self.target_types[event.position] = target_type
        finally:
            self.looking_up = False

    def _select(
        self, subscriber: Subscriber, commits: Sequence[Commit]
    ) -> tuple[list[tuple[LogEntry, bytes]], int]:
        """The events of `commits` this stream writes (above the last written, matching its
        filters), and the checkpoint to write after them (0 for none); moves `last` past them."""
        wanted = []
        skipped = 0
        for commit in commits:
            for event, rendered in commit:
                if event.position <= self.last:
                    continue
                if subscriber.wants(event, self.target_types.get(event.position)):
                    wanted.append((event, rendered))
                    self.last = event.position
                else:
                    skipped = event.position
        if skipped > self.last:
            self.last = skipped
            return wanted, skipped
        return wanted, 0

    def write_now(self, commit: Commit) -> bool:
        """Write a live commit straight to the socket, framed as the chunk aiohttp would frame
        it, with no task to wake. False (queue it instead) when the socket is closing or its
        buffer is full: the stream's task then writes with backpressure, or finds it gone."""
        transport, subscriber = self.transport, self.subscriber
        if transport is None or subscriber is None or transport.is_closing() or self.looking_up:
            return False
        if transport.get_write_buffer_size() > DIRECT_BUFFER_LIMIT:
            return False
        if not self.takes_all and any(subscriber.needs_target(event) for event, _ in commit):
            return False  # the task looks its target up in the store
        if self.takes_all and self.last < commit[0][0].position:
            transport.write(commit.chunk())  # the common case: one chunk framed for all
            self.last = commit[-1][0].position
        else:
            wanted, moved = self._select(subscriber, [commit])
            parts = [rendered for _, rendered in wanted]
            if moved:
                parts.append(checkpoint(moved))
            if not parts:
                return True
            transport.write(frame(b"".join(parts)))
        self.direct_at = time.monotonic()
        return True


async def stream(
    request: web.Request,
    store: EventStore,
    hub: Hub,
    params: StreamRequest,
    ping_seconds: float,
) -> web.StreamResponse:
    """GET /v1/stream. Errors are raised before the response starts."""
    if hub.closing:
        raise Unavailable("the server is shutting down", retry_after=1)
    if params.after is not None and params.after > hub.head and hub.catch_up is not None:
        await hub.catch_up()  # read-your-writes through any process
    subscriber, head = hub.subscribe(params.companies, params.types)
    try:
        after = start_position(params, head)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        transport = request.transport
        subscriber.on_overflow = (
            transport.close if transport is not None else subscriber.on_overflow
        )
        # Chunked framing, asked for explicitly, is what lets live commits bypass the response
        # object (Stream.write_now); an HTTP/1.0 client gets every write through it instead.
        chunked = request.version >= HttpVersion11
        if chunked:
            response.enable_chunked_encoding()
        await response.prepare(request)
        gone: Callable[[], None] = functools.partial(hub.end, subscriber)
        request[ON_DISCONNECT] = gone  # a client that leaves is unsubscribed at once
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
        writer = Stream(store, hub, params, response, ping_seconds, transport if chunked else None)
        with contextlib.suppress(ConnectionError):
            await writer.replay(after, head)
            await writer.follow(subscriber)
        return response
    finally:
        hub.unsubscribe(subscriber)
