"""As-of query latency against log length, and rebuild speed.

Builds two logs in temporary SQLite databases through the store (validation, hashing and the
inline projections included, as an append over HTTP would):

- small: 10,000 events over 100 companies (about 100 events each);
- large: 1,000,000 events over 10,000 companies (about 99 events each) plus one company,
  `giant`, with 10,000 events.

Fuzzy dates are drawn over 2019-2025 at every precision, ~ and ? included; 1% of the events
are amendments (corrections, retractions, reinstatements) of earlier ones. Then, for each
log, it starts `timeline serve` (its own process) and a client process asks
GET /v1/companies/{random company}?as_of={random day}[&known_at={random position}] over one
keep-alive connection, one request at a time, and reports p50/p99 latency. It also times
`timeline rebuild` on each log.

    python bench/asof.py                    # builds both logs: about 2 minutes for 1M events
    python bench/asof.py --large 200000     # a smaller large log
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from events.envelope import validate_body  # noqa: E402
from events.sqlite import SQLiteEventStore  # noqa: E402
from projections.rebuild import projections  # noqa: E402

TYPES = ["model.launched", "team.formed", "ceo.letter", "statement.made", "product.integrated"]
PAYLOAD = {
    "model.launched": {"model": "Model {n}", "stage": "public", "modality": ["text"]},
    "team.formed": {"name": "Team {n}", "location": "Shanghai", "headcount": 40},
    "ceo.letter": {"author": "CEO {n}", "role": "CEO", "summary": "Letter {n} to all staff."},
    "statement.made": {"speaker": "Chair {n}", "summary": "Statement {n}."},
    "product.integrated": {"product": "App {n}", "model": "Model {n}"},
}
FIRST_DAY = date(2019, 1, 1)
DAYS = (date(2025, 12, 31) - FIRST_DAY).days


def fuzzy(rng: random.Random) -> str:
    day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    text = rng.choice(
        [
            day.isoformat(),
            day.isoformat(),
            f"{day.year}-{day.month:02d}",
            f"{day.year}-Q{(day.month - 1) // 3 + 1}",
            f"{day.year}",
        ]
    )
    return text + rng.choice(["", "", "", "", "~", "?"])


def payload(kind: str, n: int) -> dict[str, Any]:
    return {
        key: value.format(n=n) if isinstance(value, str) else value
        for key, value in PAYLOAD[kind].items()
    }


def companies_for(size: int, spread: int, giant: int) -> list[str]:
    """Company of each event: `giant` events for 'giant', the rest spread evenly."""
    names = [f"c{i:05d}" for i in range(spread)]
    order = [names[i % spread] for i in range(size - giant)] + ["giant"] * giant
    random.Random(7).shuffle(order)
    return order


async def build(path: Path, size: int, spread: int, giant: int) -> float:
    rng = random.Random(size)
    store = await SQLiteEventStore.open(path, synchronous="NORMAL", projections=projections())
    owners = companies_for(size, spread, giant)
    originals: dict[str, list[str]] = {}
    started = time.perf_counter()
    for start in range(0, size, 1000):
        bodies = []
        for n in range(start, min(size, start + 1000)):
            company = owners[n]
            earlier = originals.get(company)
            if earlier and rng.random() < 0.01:
                kind = rng.choice(["event.corrected", "event.retracted", "event.reinstated"])
                target = rng.choice(earlier)
                data: dict[str, Any] = {"target": target, "reason": "bench"}
                if kind == "event.corrected":
                    data = {"target": target, "occurred": fuzzy(rng)}
                bodies.append(
                    {"type": kind, "company": company, "occurred": fuzzy(rng), "data": data}
                )
                continue
            kind = rng.choice(TYPES)
            event_id = f"{rng.getrandbits(128):032x}"
            event_id = (
                f"{event_id[:8]}-{event_id[8:12]}-4{event_id[13:16]}-8{event_id[17:20]}-"
                f"{event_id[20:]}"
            )
            originals.setdefault(company, []).append(event_id)
            bodies.append(
                {
                    "id": event_id,
                    "type": kind,
                    "company": company,
                    "occurred": fuzzy(rng),
                    "data": payload(kind, n),
                    "confidence": rng.choice(["confirmed", "reported", "rumored"]),
                }
            )
        await store.append(validate_body({"events": bodies}))
    elapsed = time.perf_counter() - started
    await store.close()
    return size / elapsed


def timeline_command(*args: str, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "timeline.cli", *args],
        cwd=ROOT,
        text=True,
        env={**os.environ, "TIMELINE_BOOTSTRAP_TOKEN": "tl_bench"},
        **popen,
    )


def rebuild_rate(path: Path) -> float:
    process = timeline_command("rebuild", "--db", f"sqlite:///{path}", stdout=subprocess.PIPE)
    out, _ = process.communicate(timeout=1800)
    found = re.search(r"([\d,]+) events/s", out)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"rebuild failed: {out}")
    return float(found.group(1).replace(",", ""))


CLIENT = """
import asyncio, json, random, sys, time
import aiohttp

async def main(url, companies, head, count, known_share, seed):
    rng = random.Random(seed)
    first = 17897  # 2019-01-01 as days since 1970-01-01
    latencies = []
    async with aiohttp.ClientSession() as http:
        for i in range(count + 50):
            day = time.strftime("%Y-%m-%d", time.gmtime((first + rng.randrange(2556)) * 86400))
            path = f"{url}/v1/companies/{rng.choice(companies)}?as_of={day}"
            if rng.random() < known_share:
                path += f"&known_at={rng.randrange(1, head + 1)}"
            started = time.perf_counter()
            async with http.get(path) as response:
                await response.read()
                if response.status not in (200, 404):
                    raise SystemExit(f"{response.status} for {path}")
            if i >= 50:  # warm-up
                latencies.append(time.perf_counter() - started)
    print(json.dumps(latencies))

url, companies, head, count, known_share, seed = json.loads(sys.argv[1])
asyncio.run(main(url, companies, head, count, known_share, seed))
"""


def measure(path: Path, companies: list[str], head: int, count: int, known_share: float) -> Any:
    server = timeline_command(  # its log (a JSON line per request) is not the table's
        "serve",
        "--db",
        f"sqlite:///{path}",
        "--port",
        "0",
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert server.stdout is not None
        url = None
        while url is None:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("the server did not start")
            if found := re.search(r"serving (http://[\d.]+:\d+)/", line):
                url = found.group(1)
        import json

        argument = json.dumps([url, companies, head, count, known_share, 1])
        client = subprocess.run(
            [sys.executable, "-c", CLIENT, argument],
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        )
        latencies = json.loads(client.stdout)
    finally:
        server.terminate()
        server.wait(timeout=30)
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "n": len(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3, help="measurements per figure (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="timeline-asof-") as folder:
        logs = {
            "small": (Path(folder) / "small.db", args.small, 100, 0),
            "large": (Path(folder) / "large.db", args.large, 10_000, 10_000),
        }
        report: dict[str, dict[str, Any]] = {}
        for name, (path, size, spread, giant) in logs.items():
            rate = asyncio.run(build(path, size, spread, giant))
            print(
                f"{name}: built {size:,} events over {spread:,} companies at {rate:,.0f} events/s"
            )
            companies = [f"c{i:05d}" for i in range(spread)]
            figures: dict[str, list[Any]] = {"as_of": [], "as_of+known_at": [], "giant": []}
            for _ in range(args.runs):
                figures["as_of"].append(measure(path, companies, size, args.queries, 0.0))
                figures["as_of+known_at"].append(measure(path, companies, size, args.queries, 1.0))
                if giant:
                    figures["giant"].append(measure(path, ["giant"], size, args.queries // 4, 0.5))
            rebuilds = [rebuild_rate(path) for _ in range(args.runs)]
            report[name] = {
                kind: {
                    key: statistics.median(run[key] for run in runs) for key in ("p50_ms", "p99_ms")
                }
                for kind, runs in figures.items()
                if runs
            }
            report[name]["rebuild_events_per_s"] = statistics.median(rebuilds)
            for kind, value in report[name].items():
                print(f"  {kind}: {value}")
        small, large = report["small"]["as_of"], report["large"]["as_of"]
        print()
        print(
            f"as-of p50: {large['p50_ms']:.2f} ms on {args.large:,} events (target <= 3 ms), "
            f"{small['p50_ms']:.2f} ms on {args.small:,}; "
            f"ratio {large['p50_ms'] / small['p50_ms']:.2f} (target <= 1.5)"
        )
        print(
            f"rebuild: {report['large']['rebuild_events_per_s']:,.0f} events/s on {args.large:,} "
            "events (target >= 50,000)"
        )


if __name__ == "__main__":
    main()
