"""Workload 7: append-to-delivery latency of the live feed with many subscribers.

Our server on a fresh database (CPU 0 when pinned); in this process (CPU 1), N subscribers on
GET /v1/stream, read by bare protocols on uvloop that cost a few byte searches per chunk, not
Python work per message, so that the client does not hide the server's latency; a third
process on CPU 1 appends single events over HTTP at a fixed rate. For every delivered event
the latency is its arrival minus the time its append was sent (both processes read
time.monotonic(), one clock for the machine). Target: 1,000 subscribers at 200 events/s,
p99 <= 25 ms, no subscriber dropped, no event missing or repeated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
import urllib.request
from array import array
from typing import Any, cast

import aiohttp
import uvloop

from bench.harness import Check, Context, Figure
from bench.machine import CLIENT_CPU, ROOT, BenchError, watched


class Subscriber(asyncio.Protocol):
    """One SSE connection read by a bare protocol, at a cost per chunk received, not per
    message: the stream of an unfiltered subscriber is gapless, so a chunk's complete messages
    are the positions from its first `id:` to its last, all arrived at the same moment; the
    count of messages in it checks that assumption (any gap or duplicate shows as missing)."""

    def __init__(self) -> None:
        self.firsts = array("q")
        self.lasts = array("q")
        self.times = array("d")
        self.messages = 0
        self.dropped = False
        self.stopping = False
        self.ready = asyncio.Event()
        self.transport: asyncio.Transport | None = None
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        transport.write(
            b"GET /v1/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
        )

    def data_received(self, chunk: bytes) -> None:
        now = time.monotonic()
        data = self._tail + chunk
        end = data.rfind(b"\n\n") + 2  # complete messages only; the rest waits for more
        self._tail = data[end:]
        if not self.ready.is_set() and b"retry:" in data:
            self.ready.set()
        first = data.find(b"id: ", 0, end)
        if first < 0:
            return
        last = data.rfind(b"id: ", 0, end)
        self.firsts.append(int(data[first + 4 : data.index(b"\n", first)]))
        self.lasts.append(int(data[last + 4 : data.index(b"\n", last)]))
        self.times.append(now)
        self.messages += data.count(b"\nevent: ", first, end)

    def connection_lost(self, exc: Exception | None) -> None:
        self.dropped = not self.stopping
        self.ready.set()  # no longer waited for: measure() counts it as dropped

    async def run(self, host: str, port: int, stop: asyncio.Event) -> None:
        await asyncio.get_running_loop().create_connection(lambda: self, host, port)
        await stop.wait()
        self.stopping = True
        if self.transport is not None:
            self.transport.close()


async def measure(
    port: int, token: str, subscribers: int, rate: float, seconds: float
) -> dict[str, Any]:
    stop = asyncio.Event()
    subs = [Subscriber() for _ in range(subscribers)]
    tasks = [asyncio.create_task(s.run("127.0.0.1", port, stop)) for s in subs]
    for start in range(0, subscribers, 200):
        ready = asyncio.gather(*(s.ready.wait() for s in subs[start : start + 200]))
        try:
            await asyncio.wait_for(ready, timeout=60)
        except TimeoutError:
            raise BenchError(f"subscribers {start}-{start + 199} were not served in 60 s") from None
        if lost := sum(s.dropped for s in subs[: start + 200]):
            raise BenchError(f"{lost} subscribers were refused or cut off before appends began")
    # The appender runs in a process of its own, so that 1,000 sockets being read here do not
    # delay its requests; both stamp time.monotonic(), one clock for the whole machine.
    appender = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.workloads.feed",
        "--append-to",
        str(port),
        "--token",
        token,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    output, _ = await appender.communicate()
    if appender.returncode:
        raise BenchError(f"the appender exited {appender.returncode}")
    report = json.loads(output)
    sent = {int(position): at for position, at in report["sent"].items()}
    acked: list[float] = sorted(report["acked_ms"])
    await asyncio.sleep(1.0)  # let the last deliveries arrive
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = array("d")
    delivered = 0
    for sub in subs:
        delivered += sub.messages
        for first, last, arrived in zip(sub.firsts, sub.lasts, sub.times, strict=True):
            latencies.extend(
                (arrived - sent[p]) * 1000 for p in range(first, last + 1) if p in sent
            )
    latencies = array("d", sorted(latencies))
    expected = len(sent) * subscribers
    return {
        "subscribers": subscribers,
        "appended": len(sent),
        "deliveries": delivered,
        "missing": expected - len(latencies),
        "extra": delivered - len(latencies),
        "dropped": sum(s.dropped for s in subs),
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] if latencies else None,
        "append_p50_ms": statistics.median(acked) if acked else None,
        "append_p99_ms": acked[int(len(acked) * 0.99)] if acked else None,
    }


async def append(port: int, token: str, rate: float, seconds: float) -> dict[str, Any]:
    """Single-event appends at a fixed rate: when each was sent, by position, and how long
    each took to be acknowledged."""
    sent: dict[int, float] = {}
    acked: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "type": "model.launched",
        "company": "bench",
        "occurred": "2023-05",
        "data": {"model": "Model X", "stage": "public"},
    }
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/v1/events"

        async def one() -> None:
            at = time.monotonic()
            async with http.post(url, json=body, headers=headers) as response:
                position = (await response.json())["events"][0]["position"]
            sent[position] = at
            acked.append((time.monotonic() - at) * 1000)

        began = time.monotonic()
        pending = []
        for n in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + n / rate - time.monotonic()))
            pending.append(asyncio.create_task(one()))
        await asyncio.gather(*pending)
    return {"sent": sent, "acked_ms": acked}


def run(context: Context) -> list[Figure]:
    sizes = context.sizes
    with context.database("feed") as url, context.ours(url, "feed") as server:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {CLIENT_CPU})
        try:
            with watched(server.pids) as cpu:
                found = uvloop.run(
                    measure(
                        server.port,
                        context.token,
                        sizes.feed_subscribers,
                        sizes.feed_rate,
                        sizes.feed_seconds,
                    )
                )
        finally:
            os.sched_setaffinity(0, before)
        server.check_alive()
        with urllib.request.urlopen(server.url("/metrics"), timeout=30) as response:
            metrics = response.read().decode()
        cut = re.search(r"^timeline_feed_dropped_subscribers_total (\S+)$", metrics, re.M)
        head = int(server.get_json("/healthz")["head"])
    lost = found["missing"] + found["extra"] + found["dropped"]
    if found["p99_ms"] is None:
        raise BenchError(f"no event was delivered: {found}")
    if lost or (cut is not None and float(cut.group(1))):
        raise BenchError(f"the feed lost, repeated or dropped: {found}")
    return [
        Figure(
            f"7 feed, {sizes.feed_subscribers:,} subscribers",
            "p99 ms",
            found["p99_ms"],
            checks=[Check("p99 ms", found["p99_ms"], "<=", 25.0)],
            log=f"0-{head:,}",
            disturbed=int(cpu[0].disturbed),
            note=(
                f"{sizes.feed_rate:.0f} appends/s; p50 {found['p50_ms']:.1f} ms; "
                f"{found['deliveries']:,} deliveries, none lost; "
                f"append p50 {found['append_p50_ms']:.1f} ms"
            ),
        )
    ]


def main() -> None:
    """The appender process that measure() starts."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--append-to", type=int, required=True, metavar="PORT")
    parser.add_argument("--token", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(append(args.append_to, args.token, args.rate, args.seconds))))


if __name__ == "__main__":
    main()
