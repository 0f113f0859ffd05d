"""Append-to-delivery latency of the live feed with many subscribers.

Starts `timeline serve` on a fresh database in a temporary directory (pinned to CPU 0 unless
--no-pin), then, in this separate client process (pinned to CPU 1), opens N subscribers on
GET /v1/stream (bare protocols on uvloop that cost a few byte searches per chunk received,
not Python work per message, so that the client does not hide the server's latency), while
a third process, on the same CPU, appends single events over HTTP at a fixed rate. For every
delivered event it records arrival time minus the time its append was sent (both processes
read time.monotonic(), one clock for the machine), and reports p50/p99 over all deliveries,
the appends' own p50/p99, the subscribers the server dropped, and the CPU use of the server
and of the subscribers' process.

    python bench/feed.py                          # 1,000 subscribers, then 5,000
    python bench/feed.py --subscribers 100 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any, cast

import aiohttp
import uvloop

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tl_bench_feed"


def pinned(command: list[str], cpu: int | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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

    async def run(self, host: str, port: int, stop: asyncio.Event) -> None:
        await asyncio.get_running_loop().create_connection(lambda: self, host, port)
        await stop.wait()
        self.stopping = True
        if self.transport is not None:
            self.transport.close()


async def measure(port: int, subscribers: int, rate: float, seconds: float) -> dict[str, Any]:
    stop = asyncio.Event()
    subs = [Subscriber() for _ in range(subscribers)]
    tasks = [asyncio.create_task(s.run("127.0.0.1", port, stop)) for s in subs]
    for start in range(0, subscribers, 200):
        await asyncio.gather(*(s.ready.wait() for s in subs[start : start + 200]))
    # The appender runs in a process of its own, so that 1,000 sockets being read here do not
    # delay its requests; both stamp time.monotonic(), one clock for the whole machine.
    appender = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--append-to",
        str(port),
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await appender.communicate()
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


async def append(port: int, rate: float, seconds: float) -> dict[str, Any]:
    """Single-event appends at a fixed rate: when each was sent, by position, and how long
    each took to be acknowledged."""
    sent: dict[int, float] = {}
    acked: list[float] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
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


def run(subscribers: int, rate: float, seconds: float, pin: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="timeline-feed-") as folder:
        env = {**os.environ, "TIMELINE_BOOTSTRAP_TOKEN": TOKEN}
        command = [
            sys.executable,
            "-m",
            "timeline.cli",
            "serve",
            "--no-seed",
            "--port",
            "0",
            "--db",
        ]
        server = subprocess.Popen(
            pinned([*command, f"sqlite:///{Path(folder) / 'feed.db'}"], 0 if pin else None),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = None
            while port is None:
                line = server.stdout.readline()
                if not line:
                    raise RuntimeError("the server did not start")
                if found := re.search(r"serving http://127\.0\.0\.1:(\d+)/", line):
                    port = int(found.group(1))
            before, mine = cpu_seconds(server.pid), time.process_time()
            started = time.perf_counter()
            result = uvloop.run(measure(port, subscribers, rate, seconds))
            elapsed = time.perf_counter() - started
            result["server_cpu_pct"] = 100 * (cpu_seconds(server.pid) - before) / elapsed
            result["client_cpu_pct"] = 100 * (time.process_time() - mine) / elapsed
            metrics = subprocess.run(
                ["curl", "-s", f"http://127.0.0.1:{port}/metrics"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            found = re.search(r"^timeline_feed_dropped_subscribers_total (\S+)$", metrics, re.M)
            result["server_dropped"] = float(found.group(1)) if found else None
            return result
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="1000,5000", help="comma-separated counts")
    parser.add_argument("--rate", type=float, default=200.0, help="appends per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--append-to", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.append_to is not None:  # the appender process that measure() starts
        print(json.dumps(asyncio.run(append(args.append_to, args.rate, args.seconds))))
        return
    if not args.no_pin and shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    print(
        f"feed bench: {args.rate:.0f} appends/s for {args.seconds:.0f} s; server pinned to "
        f"CPU 0 and this client to CPU 1: {not args.no_pin}"
    )
    for count in (int(n) for n in args.subscribers.split(",")):
        print(json.dumps(run(count, args.rate, args.seconds, not args.no_pin)))


if __name__ == "__main__":
    main()
