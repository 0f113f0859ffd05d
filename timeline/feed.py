"""GET /v1/stream: the handler, and the stream it writes for one client: replay from the
store up to the head it subscribed at, then the hub's live commits, with no gap and no
duplicate (the wire format is timeline.sse's, the fan-out timeline.hub's)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import HttpVersion11, web

from events.entries import LogEntry
from events.errors import BadRequest, TimelineError, Unavailable
from events.store import EventStore
from events.values import natural
from projections import state
from timeline.filters import EventFilter, start_after
from timeline.hub import Hub, Subscriber
from timeline.runner import ON_DISCONNECT
from timeline.sse import PING, RETRY, Commit, checkpoint, frame, message

log = logging.getLogger(__name__)

REPLAY_PAGE = 500
# Above this many unsent bytes on a socket, live commits go through the subscriber's queue and
# its task, which waits for the socket to drain (and is cut off if its queue fills).
DIRECT_BUFFER_LIMIT = 256 * 1024


@dataclass
class StreamRequest:
    """The validated parameters of GET /v1/stream."""

    after: int | None
    companies: list[str]
    types: list[str]
    include_state: bool

    @functools.cached_property
    def wanted(self) -> EventFilter:
        return EventFilter.of(self.companies, self.types)


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
        known = state.LogPoint(event.position, event.recorded)
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
            page = await self.params.wanted.read(
                self.store, after=cursor, until=head, limit=REPLAY_PAGE
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
            self.takes_all = subscriber.wanted.takes_all
            subscriber.direct = self.write_now
        while not subscriber.closed and not subscriber.overflowed:
            if subscriber.queue.empty():
                try:
                    async with asyncio.timeout(self.ping_seconds):
                        first = await subscriber.queue.get()
                except TimeoutError:
                    if time.monotonic() - self.direct_at >= self.ping_seconds:
                        await self.response.write(PING)
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
            if event.position > self.last and subscriber.wanted.needs_target(event)
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
                if subscriber.wanted.wants(event, self.target_types.get(event.position)):
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
        if not self.takes_all and any(subscriber.wanted.needs_target(event) for event, _ in commit):
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
    subscriber, head = hub.subscribe(params.wanted)
    try:
        after = start_after(params.after, head)
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
        await response.write(RETRY)
        writer = Stream(store, hub, params, response, ping_seconds, transport if chunked else None)
        with contextlib.suppress(ConnectionError):
            await writer.replay(after, head)
            await writer.follow(subscriber)
        return response
    finally:
        hub.unsubscribe(subscriber)
