"""Rate limits (`TIMELINE_RATE_LIMIT`, off unless set): a token bucket per client, and a cap
on each client's open streams. A client is its bearer token when it sends one this process
knows (header or `access_token`), else its address: an unknown or made-up token buys no
bucket of its own. Over either limit → 429 `rate-limited` with `Retry-After`.

Only `/v1/` is limited: `/healthz`, `/metrics` and the dashboard's files are for probes,
scrapers and a page load."""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from events.errors import RateLimited
from timeline.auth import Tokens
from timeline.keys import TOKENS
from timeline.metrics import HTTP

# Buckets kept at most; beyond, the least recently used is dropped (its client, if it comes
# back, starts with a full bucket: what an idle client would have had anyway, by then).
MAX_CLIENTS = 100_000
# What a client refused a stream is told to wait before it tries again.
STREAM_RETRY_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Limit:
    """`rate` requests a second, up to `burst` at once; `streams` open streams."""

    rate: float
    burst: float
    streams: int

    @classmethod
    def parse(cls, text: str, streams: int) -> Limit:
        """`RATE` or `RATE,BURST` (requests a second, and how many may come at once; the
        burst defaults to one second's worth, and at least 1)."""
        parts = [part.strip() for part in text.split(",")]
        try:
            if len(parts) > 2:
                raise ValueError(text)
            rate = float(parts[0])
            burst = float(parts[1]) if len(parts) == 2 else max(rate, 1.0)
        except ValueError:
            raise ValueError(
                f"TIMELINE_RATE_LIMIT={text!r}: expected RATE or RATE,BURST (numbers: "
                "requests a second, and how many may come at once), e.g. 50 or 50,200"
            ) from None
        if not (math.isfinite(rate) and math.isfinite(burst)) or rate <= 0 or burst < 1:
            raise ValueError(f"TIMELINE_RATE_LIMIT={text!r}: the rate must be > 0, the burst ≥ 1")
        return cls(rate, burst, streams)


class _Bucket:
    __slots__ = ("level", "stamp")

    def __init__(self, level: float, stamp: float) -> None:
        self.level, self.stamp = level, stamp


class Limiter:
    """The buckets and open streams of every client of this process."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._streams: Counter[str] = Counter()

    def take(self, client: str) -> float:
        """Take one request from the client's bucket: 0 if it may go, else the seconds
        until it may."""
        now = time.monotonic()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= MAX_CLIENTS:
                self._buckets.popitem(last=False)
            bucket = self._buckets[client] = _Bucket(self.limit.burst, now)
        else:
            self._buckets.move_to_end(client)
            refill = (now - bucket.stamp) * self.limit.rate
            bucket.level, bucket.stamp = min(self.limit.burst, bucket.level + refill), now
        if bucket.level < 1:
            return (1 - bucket.level) / self.limit.rate
        bucket.level -= 1
        return 0.0

    def open_stream(self, client: str) -> None:
        """Count one more open stream of the client, or RateLimited if it has its most."""
        if self._streams[client] >= self.limit.streams:
            raise RateLimited(
                f"this client has {self._streams[client]} streams open, the most it may",
                retry_after=STREAM_RETRY_SECONDS,
            )
        self._streams[client] += 1

    def close_stream(self, client: str) -> None:
        self._streams[client] -= 1
        if not self._streams[client]:
            del self._streams[client]


LIMITER = web.AppKey("limiter", Limiter)
CLIENT = web.RequestKey("client", str)  # the request's client, as the limiter named it


def client_of(request: web.Request, tokens: Tokens) -> str:
    credential = request.headers.get(hdrs.AUTHORIZATION)
    if credential is None and "access_token" in request.query:
        credential = "Bearer " + request.query["access_token"]
    key = tokens.known_key(credential) if credential is not None else None
    return f"token {key}" if key is not None else f"address {_network(request.remote)}"


@functools.lru_cache(maxsize=4096)
def _network(remote: str | None) -> str | None:
    """An IPv4 address, or the /64 of an IPv6 one: a host is handed a /64 to pick addresses
    from, and one bucket per address would let it make as many as it likes."""
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # an IPv4 client of a dual-stack socket
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@web.middleware
async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    limiter = request.app.get(LIMITER)
    if limiter is None or not request.path.startswith("/v1/"):
        return await handler(request)
    client = request[CLIENT] = client_of(request, request.app[TOKENS])
    wait = limiter.take(client)
    if wait > 0:
        request.app[HTTP].rate_limited("requests")
        raise RateLimited(
            f"over this client's rate of {limiter.limit.rate:g} requests a second",
            retry_after=math.ceil(wait),
        )
    return await handler(request)


@contextmanager
def stream_slot(request: web.Request) -> Iterator[None]:
    """One of the request's client's open streams, for as long as the stream lasts."""
    limiter = request.app.get(LIMITER)
    if limiter is None:
        yield
        return
    client = request[CLIENT]
    try:
        limiter.open_stream(client)
    except RateLimited:
        request.app[HTTP].rate_limited("streams")
        raise
    try:
        yield
    finally:
        limiter.close_stream(client)
