"""The wire format of GET /v1/stream: its SSE messages (an event, a checkpoint, a ping, the
retry delay), and the HTTP/1.1 chunk that carries a live commit to every stream at once."""

from __future__ import annotations

from events.entries import LogEntry

RETRY_MS = 3000
RETRY = f"retry: {RETRY_MS}\n\n".encode()
PING = b": ping\n\n"


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
