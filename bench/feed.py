"""Append-to-delivery latency of the live feed with many subscribers.

Starts `timeline serve` on a fresh database in a temporary directory (pinned to CPU 0 unless
--no-pin), then, in this separate client process (pinned to CPU 1), opens N subscribers on
GET /v1/stream (bare asyncio protocols: each chunk received is scanned for `id:` lines with a
regex, so the client costs little per message) and appends single events over HTTP at a fixed
rate. For every delivered event it records arrival time minus the time its append was sent,
and reports p50/p99 over all deliveries, the subscribers the server dropped, and the server's
CPU use.

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
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tl_bench_feed"
MESSAGE = re.compile(rb"id: (\d+)\nevent: (?!checkpoint)")


def pinned(command: list[str], cpu: int | None) -> list[str]:
    if cpu is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(cpu), *command]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Subscriber(asyncio.Protocol):
    """One SSE connection read by a bare protocol: a callback per chunk, no task, no reader
    buffer, so that the client costs as little as possible per delivery."""

    def __init__(self) -> None:
        self.positions = array("q")
        self.times = array("d")
        self.dropped = False
        self.stopping = False
        self.ready = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            b"GET /v1/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
        )

    def data_received(self, chunk: bytes) -> None:
        now = time.perf_counter()
        if not self.ready.is_set() and b"retry:" in chunk:
            self.ready.set()
        for found in MESSAGE.finditer(chunk):
            self.positions.append(int(found.group(1)))
            self.times.append(now)

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
    sent: dict[int, float] = {}
    acked: list[float] = []  # append latency: request sent to response read
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {
        "type": "model.launched",
        "company": "bench",
        "occurred": "2023-05",
        "data": {"model": "Model X", "stage": "public"},
    }
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{port}/v1/events"

        async def one(at: float) -> None:
            async with http.post(url, json=body, headers=headers) as response:
                position = (await response.json())["events"][0]["position"]
            sent[position] = at
            acked.append((time.perf_counter() - at) * 1000)

        began = time.perf_counter()
        pending = []
        count = int(rate * seconds)
        for n in range(count):
            due = began + n / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            pending.append(asyncio.create_task(one(time.perf_counter())))
        await asyncio.gather(*pending)
        await asyncio.sleep(1.0)  # let the last deliveries arrive
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [
        (arrived - sent[position]) * 1000
        for s in subs
        for position, arrived in zip(s.positions, s.times, strict=True)
        if position in sent
    ]
    latencies.sort()
    expected = len(sent) * subscribers
    return {
        "subscribers": subscribers,
        "appended": len(sent),
        "deliveries": len(latencies),
        "missing": expected - len(latencies),
        "dropped": sum(s.dropped for s in subs),
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] if latencies else None,
        "append_p50_ms": statistics.median(acked) if acked else None,
        "append_p99_ms": sorted(acked)[int(len(acked) * 0.99)] if acked else None,
    }


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
            result = asyncio.run(measure(port, subscribers, rate, seconds))
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
    args = parser.parse_args()
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
