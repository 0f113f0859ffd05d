"""Workloads 5 and 8: as-of and chronology reads on the imported log, and the server's memory.

Our server on the imported log (bench/workloads/imports.py); wrk cycles through a file of
paths, with one connection for latency and eight for throughput:

- `mid` (300 facts) as of random days: p50 <= 1 ms with one connection; with eight,
  >= 0.25 x the same server's `/healthz` requests/s;
- `giant` (10,000 facts in the full log) as of random days: p50 <= 20 ms;
- `mid` known at random past positions: p50 within 1.5 x of the head's;
- chronology pages of 100, p50 <= 2 ms: without a window, continued from cursors spread over
  the range, and with one-month `from`/`to` windows spread over it;
- 8: the server's resident memory after all of that: anonymous <= 300 MB (the file-backed
  part, SQLite's mmap of the database, is reported apart).
"""

from __future__ import annotations

import random
import statistics
from datetime import date, timedelta

from bench.data import DAYS, FIRST_DAY, MID
from bench.harness import Check, Context, Figure
from bench.machine import Server, WrkRun
from bench.workloads.imports import imported
from projections.chronology import Cursor, page_filters

PATHS = 64  # distinct paths per kind: the server's caches see varied requests


def _days(rng: random.Random) -> list[str]:
    return [(FIRST_DAY + timedelta(days=rng.randrange(DAYS))).isoformat() for _ in range(PATHS)]


def _spread(count: int) -> list[date]:
    return [FIRST_DAY + timedelta(days=DAYS * i // count) for i in range(count)]


def _path_sets(head: int) -> dict[str, list[str]]:
    rng = random.Random(5)
    days = _days(rng)
    anywhere = page_filters(None, None, [], [])
    cursors = [
        Cursor(head, day.isoformat(), day.isoformat(), 0, anywhere).encode()
        for day in _spread(PATHS)
    ]
    windows = []
    for day in _spread(PATHS):
        first = day.replace(day=1)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        windows.append(f"/v1/chronology?from={first}&to={last}&limit=100")
    return {
        "mid": [f"/v1/companies/{MID}?as_of={day}" for day in days],
        "giant": [f"/v1/companies/giant?as_of={day}" for day in days],
        "known": [
            f"/v1/companies/{MID}?as_of={day}&known_at={rng.randrange(head // 10, head // 2)}"
            for day in days
        ],
        "healthz": ["/healthz"],
        # What changed in the company, as of a day, since a point of the log's first half;
        # and a page of the log's changes from anywhere in it.
        "diff": [
            f"/v1/companies/{MID}/changes?since={rng.randrange(head // 10, head // 2)}&as_of={day}"
            for day in days
        ],
        "changes": [
            f"/v1/changes?since={rng.randrange(0, max(1, head - 100))}&limit=100"
            for _ in range(PATHS)
        ],
        # One company's (300 of the log's entries): a filtered read of the log's indexes.
        "company-changes": [
            f"/v1/changes?since={rng.randrange(0, max(1, head // 2))}&company={MID}&limit=100"
            for _ in range(PATHS)
        ],
        "pages": [f"/v1/chronology?limit=100&cursor={cursor}" for cursor in cursors],
        "windows": windows,
    }


def run(context: Context) -> list[Figure]:
    return context.each_pinning(_one_pinning)


def _one_pinning(context: Context, pin: bool) -> list[Figure]:
    done = imported(context)
    sizes, label = context.sizes, "pinned" if pin else "unpinned"
    with context.ours(done.url, f"reads-{label}", pin) as server:
        head = int(server.get_json("/healthz")["head"])
        files = {}
        for name, paths in _path_sets(head).items():
            files[name] = context.scratch / f"paths-{name}.txt"
            files[name].write_text("\n".join(paths) + "\n", encoding="utf-8")
            _check_answers(server, paths[:3], context.token)
        wrk = context.wrk(pin)

        def load(name: str, connections: int) -> WrkRun:
            return wrk.run(
                server,
                "/",
                script="wrk.lua",
                script_args=["get", str(files[name])],
                connections=connections,
                seconds=sizes.seconds,
            )

        plan = [
            ("mid", 1),
            ("mid", 8),
            ("healthz", 8),
            ("giant", 1),
            ("known", 1),
            ("pages", 1),
            ("windows", 1),
            ("diff", 1),
            ("changes", 1),
            ("company-changes", 1),
        ]
        if sizes.warmup:
            for name, connections in plan:
                load(name, connections)
        runs: dict[tuple[str, int], list[WrkRun]] = {key: [] for key in plan}
        for _ in range(sizes.runs):
            for key in plan:
                runs[key].append(load(*key))
        memory = server.memory()

    def p50(key: tuple[str, int]) -> float:
        return statistics.median(run.latency_us["p50"] for run in runs[key]) / 1000

    def p99(key: tuple[str, int]) -> float:
        return statistics.median(run.latency_us["p99"] for run in runs[key]) / 1000

    def rps(key: tuple[str, int]) -> float:
        return statistics.median(run.rps for run in runs[key])

    def disturbed(*keys: tuple[str, int]) -> int:
        return sum(run.cpu.disturbed for key in keys for run in runs[key])

    log = f"{head:,}"
    common = {"pinned": pin, "runs": sizes.runs, "log": log}
    mid, mid8, health = p50(("mid", 1)), rps(("mid", 8)), rps(("healthz", 8))
    known = p50(("known", 1))
    anon, files_kb = memory.get("RssAnon", 0) / 1024, memory.get("RssFile", 0) / 1024
    return [
        Figure(
            "5 as-of, 300 facts, 1 conn.",
            "p50 ms",
            mid,
            checks=[Check("p50 ms", mid, "<=", 1.0)],
            disturbed=disturbed(("mid", 1)),
            note=f"p99 {p99(('mid', 1)):.2f} ms",
            **common,
        ),
        Figure(
            "5 as-of, 300 facts, 8 conn.",
            "requests/s",
            mid8,
            limit=health,
            checks=[Check("ours/healthz", mid8 / health, ">=", 0.25)],
            disturbed=disturbed(("mid", 8), ("healthz", 8)),
            note="limit: /healthz of the same server",
            **common,
        ),
        Figure(
            f"5 as-of, {done.log.giant:,} facts, 1 conn.",
            "p50 ms",
            p50(("giant", 1)),
            checks=[Check("p50 ms", p50(("giant", 1)), "<=", 20.0)],
            disturbed=disturbed(("giant", 1)),
            **common,
        ),
        Figure(
            "5 as-of known_at past, 300 facts",
            "p50 ms",
            known,
            limit=mid,
            checks=[Check("past/head", known / mid, "<=", 1.5)],
            disturbed=disturbed(("known", 1)),
            note="limit: the same company at the head",
            **common,
        ),
        Figure(
            "5 chronology page of 100, cursors",
            "p50 ms",
            p50(("pages", 1)),
            checks=[Check("p50 ms", p50(("pages", 1)), "<=", 2.0)],
            disturbed=disturbed(("pages", 1)),
            note=f"{PATHS} cursors spread over 2019-2025",
            **common,
        ),
        Figure(
            "5 chronology page of 100, windows",
            "p50 ms",
            p50(("windows", 1)),
            checks=[Check("p50 ms", p50(("windows", 1)), "<=", 2.0)],
            disturbed=disturbed(("windows", 1)),
            note=f"{PATHS} one-month from/to windows spread over 2019-2025",
            **common,
        ),
        Figure(
            "5 company changes since S1, 300 facts",
            "p50 ms",
            p50(("diff", 1)),
            disturbed=disturbed(("diff", 1)),
            note=f"p99 {p99(('diff', 1)):.2f} ms; two as-of reads and their difference",
            **common,
        ),
        Figure(
            "5 log changes page of 100",
            "p50 ms",
            p50(("changes", 1)),
            disturbed=disturbed(("changes", 1)),
            note=f"p99 {p99(('changes', 1)):.2f} ms; {PATHS} since spread over the log",
            **common,
        ),
        Figure(
            "5 log changes of one company (300 entries), page",
            "p50 ms",
            p50(("company-changes", 1)),
            disturbed=disturbed(("company-changes", 1)),
            note=f"p99 {p99(('company-changes', 1)):.2f} ms; since in the log's first half",
            **common,
        ),
        Figure(
            "8 server memory after the reads",
            "anon. MB",
            anon,
            checks=[Check("anonymous MB", anon, "<=", 300.0)],
            note=f"file-backed {files_kb:.0f} MB apart",
            **common,
        ),
    ]


def _check_answers(server: Server, paths: list[str], token: str) -> None:
    """The paths are answered (200) before they are measured: a 4xx would be fast and wrong."""
    for path in paths:
        server.get_json(path, token)
