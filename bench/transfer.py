"""Import and export speed, through the `timeline` command as a user runs it.

Writes an NDJSON file of EventIn lines (ids included; 1% amendments of earlier events; fuzzy
dates of every precision; 1,000 companies), then, each run on fresh SQLite databases (the
default `synchronous = FULL`):

- `timeline import events.ndjson`: appends, in batches of 1,000;
- `timeline export` in both formats, to a file;
- `timeline import` of the ndjson export into an empty database: a restore.

Reports the median of the runs in events/s, by wall-clock time of the whole command
(interpreter start included), and the peak resident memory of each command.

    python bench/transfer.py                  # 100,000 events, 3 runs: about 1 minute
    python bench/transfer.py --events 1000000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from asof import ROOT, TYPES, fuzzy, payload


def event_lines(size: int, companies: int = 1000) -> list[str]:
    rng = random.Random(size)
    originals: dict[str, list[str]] = {}
    lines = []
    for n in range(size):
        company = f"c{rng.randrange(companies):04d}"
        earlier = originals.get(company)
        body: dict[str, Any]
        if earlier and rng.random() < 0.01:
            kind = rng.choice(["event.corrected", "event.retracted", "event.reinstated"])
            target = rng.choice(earlier)
            data = {"target": target, "occurred": fuzzy(rng)}
            if kind != "event.corrected":
                data = {"target": target, "reason": "bench"}
            body = {"type": kind, "company": company, "occurred": fuzzy(rng), "data": data}
        else:
            kind = rng.choice(TYPES)
            body = {"type": kind, "company": company, "occurred": fuzzy(rng)}
            body["data"] = payload(kind, n)
            body["confidence"] = rng.choice(["confirmed", "reported", "rumored"])
        body["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if kind not in ("event.corrected", "event.retracted", "event.reinstated"):
            originals.setdefault(company, []).append(body["id"])
        lines.append(json.dumps(body, ensure_ascii=False))
    return lines


def timed(*args: str | Path) -> tuple[float, int]:
    """Wall-clock seconds and peak resident kilobytes of one `timeline` command."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "timeline.cli", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    assert process.stderr is not None
    errors = process.stderr.read().decode()
    process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"timeline {' '.join(map(str, args))} failed:\n{errors}")
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    steps = ["import EventIn", "export ndjson", "export cloudevents", "import export (restore)"]
    seconds: dict[str, list[float]] = {step: [] for step in steps}
    memory: dict[str, int] = dict.fromkeys(steps, 0)
    with tempfile.TemporaryDirectory(prefix="timeline-transfer-") as scratch:
        root = Path(scratch)
        events = root / "events.ndjson"
        events.write_text("\n".join(event_lines(args.events)) + "\n", encoding="utf-8")
        for run in range(args.runs):
            source = f"sqlite:///{root / f'source-{run}.db'}"
            restored = f"sqlite:///{root / f'restored-{run}.db'}"
            exported, cloud = root / f"export-{run}.ndjson", root / f"export-{run}.cloudevents"
            commands: list[tuple[str | Path, ...]] = [
                ("import", events, "--db", source),
                ("export", "--db", source, "--output", exported),
                ("export", "--db", source, "--format", "cloudevents", "--output", cloud),
                ("import", exported, "--db", restored),
            ]
            for step, command in zip(steps, commands, strict=True):
                elapsed, peak = timed(*command)
                seconds[step].append(elapsed)
                memory[step] = max(memory[step], peak)
                print(f"run {run + 1}: {step}: {elapsed:.2f} s", file=sys.stderr)
    print(f"{args.events:,} events, median of {args.runs} runs (wall clock, start included)")
    for step in steps:
        median = statistics.median(seconds[step])
        print(
            f"  {step:<24} {args.events / median:>9,.0f} events/s  ({median:.2f} s, "
            f"peak RSS {memory[step] / 1024:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
