"""`make bench`: every workload against the limit and the peer, one table, bench/results.json.

    python -m bench                       # quick: small logs, about 5 minutes
    python -m bench --full                # the 1M-event log
    python -m bench --smoke               # tiny sizes, one run each: the harness works
    python -m bench --db postgresql://postgres@127.0.0.1:5432/test
    python -m bench --only appends,reads --pin both

Each workload (a module in bench/workloads/) starts its own servers on fresh databases (SQLite:
files in a temporary directory; PostgreSQL: fresh schemas, dropped afterwards): ours
(bench/server.py: `timeline serve`'s application plus `POST /bench/validate`, the limit) and
the peer (bench/peer.py: the same validation in front of the `eventsourcing` library). Pinned
runs put servers on CPU 0 and wrk or the client on CPU 1; a run during which other processes
used more than 15% of a core is counted as disturbed. Figures are medians of --runs runs,
alternated between ours, the limit and the peer so that drift affects them alike.

A workload that fails (a server dies, any request fails, a command exits non-zero) prints no
figure; the harness goes on with the others and exits 1 at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import (
    CLIENT_CPU,
    ROOT,
    SERVER_CPU,
    BenchError,
    Server,
    Wrk,
    fresh_schema,
    is_postgres,
    schema_url,
)

WORKLOADS = ("appends", "imports", "reads", "rebuild", "feed")


@dataclass(frozen=True)
class Sizes:
    name: str
    runs: int
    seconds: float  # per wrk run
    warmup: float
    log: int  # events of the log that imports, reads and rebuild use
    giant: int  # events of its biggest company
    companies: int
    feed_subscribers: int
    feed_rate: float
    feed_seconds: float


SMOKE = Sizes("smoke", 1, 1, 0, 3_000, 1_000, 100, 20, 20, 2)
QUICK = Sizes("quick", 3, 3, 1, 50_000, 10_000, 500, 1_000, 200, 10)
FULL = Sizes("full", 5, 5, 2, 1_000_000, 10_000, 10_000, 1_000, 200, 20)


@dataclass(frozen=True)
class Check:
    """One target: `value op bound`, e.g. ours/limit >= 0.75."""

    what: str
    value: float
    op: str
    bound: float

    @property
    def met(self) -> bool:
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound

    def text(self) -> str:
        return f"{self.what} {_number(self.value)} ({self.op} {_number(self.bound)})"


@dataclass
class Figure:
    """One row of the table: a median of our figure, with the limit's and the peer's."""

    workload: str
    metric: str
    ours: float
    limit: float | None = None
    peer: float | None = None
    checks: list[Check] = field(default_factory=list)
    log: str = ""  # the log's size (events) while measured
    pinned: bool = True
    runs: int = 1
    disturbed: int = 0  # runs during which something else used the machine
    note: str = ""


@dataclass
class Context:
    """What every workload gets: sizes, the backend, scratch space, the token, the CPUs."""

    sizes: Sizes
    db: str | None  # a PostgreSQL URL, or None for SQLite
    scratch: Path
    pin_modes: tuple[bool, ...]
    token: str = field(default_factory=lambda: "bench_" + secrets.token_urlsafe(24))
    shared: dict[str, Any] = field(default_factory=dict)  # what one workload leaves another
    # What outlives one workload (the imported log's database), closed when the harness ends.
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def backend(self) -> str:
        return "postgresql" if self.db else "sqlite"

    def log_path(self, name: str) -> Path:
        return self.scratch / f"{name}.log"

    @contextlib.contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A fresh database URL: a new SQLite file, or a new PostgreSQL schema."""
        if self.db is None:
            yield f"sqlite:///{self.scratch / f'{name}.db'}"
            return
        with fresh_schema(self.db) as schema:
            yield schema_url(self.db, schema)

    @contextlib.contextmanager
    def peer_store(self, name: str) -> Iterator[tuple[str, str | None]]:
        """The peer's fresh store: (URL, PostgreSQL schema or None)."""
        if self.db is None:
            yield f"sqlite:///{self.scratch / f'{name}.peer.db'}", None
            return
        with fresh_schema(self.db, "peer") as schema:
            yield self.db, schema

    def ours(self, url: str, name: str, pin: bool = True) -> Server:
        args = ["--db", url, "--port", "0"]
        cpu = SERVER_CPU if pin else None
        return Server("bench.server", args, token=self.token, cpu=cpu, log_path=self.log_path(name))

    def peer(self, url: str, schema: str | None, name: str, pin: bool = True) -> Server:
        args = ["--db", url, "--port", "0", *(["--schema", schema] if schema else [])]
        cpu = SERVER_CPU if pin else None
        return Server("bench.peer", args, token=self.token, cpu=cpu, log_path=self.log_path(name))

    def each_pinning(self, measure: Callable[[Context, bool], list[Figure]]) -> list[Figure]:
        """The figures of `measure`, once per pinning asked for (pinned first)."""
        return [figure for pin in self.pin_modes for figure in measure(self, pin)]

    def wrk(self, pin: bool = True) -> Wrk:
        return Wrk(self.token, CLIENT_CPU if pin else None)

    def command(self, args: Sequence[str], pin: bool = True) -> float:
        """Wall-clock seconds of `python -m ARGS` (a `timeline` command, say), which must
        succeed."""
        command = [sys.executable, "-m", *args]
        if pin:
            command = ["taskset", "-c", str(SERVER_CPU), *command]
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if completed.returncode != 0:
            raise BenchError(f"{' '.join(args)} exited {completed.returncode}:\n{completed.stderr}")
        return elapsed


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _print_table(figures: list[Figure], failed: dict[str, str], context: Context) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Timeline benchmarks: {context.sizes.name}, {context.backend}",
        caption="ratios are ours/other within one run; pinned: servers on CPU 0, client on CPU 1",
    )
    for column in ("workload", "metric", "ours", "limit", "peer", "targets", "log", "pin", "dist."):
        table.add_column(column, justify="right" if column in ("ours", "limit", "peer") else "left")
    for figure in figures:
        marks = [("ok " if c.met else "MISS ") + c.text() for c in figure.checks]
        table.add_row(
            figure.workload,
            figure.metric,
            _number(figure.ours),
            _number(figure.limit) if figure.limit is not None else "",
            _number(figure.peer) if figure.peer is not None else "",
            "\n".join(marks) + (f"\n{figure.note}" if figure.note else ""),
            figure.log,
            "yes" if figure.pinned else "no",
            f"{figure.disturbed}/{figure.runs}" if figure.disturbed else "",
        )
    for name, error in failed.items():
        table.add_row(name, "FAILED", "", "", "", error.splitlines()[0][:80], "", "", "")
    Console(width=200).print(table)


def _machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "commit": commit,
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the 1M-event log, 5 runs of 5 s")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, one run each")
    p.add_argument("--db", help="a PostgreSQL URL: run every workload on PostgreSQL")
    p.add_argument("--only", help=f"comma-separated workloads, of {', '.join(WORKLOADS)}")
    p.add_argument("--pin", choices=("yes", "no", "both"), help="default: both with --full")
    p.add_argument("--runs", type=int, help="runs per figure (median)")
    p.add_argument("--seconds", type=float, help="seconds per run")
    p.add_argument("--output", type=Path, default=ROOT / "bench" / "results.json")
    p.add_argument("--dir", type=Path, help="where to make the temporary databases")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sizes = FULL if args.full else SMOKE if args.smoke else QUICK
    overrides = {"runs": args.runs, "seconds": args.seconds}
    sizes = Sizes(**{**asdict(sizes), **{k: v for k, v in overrides.items() if v is not None}})
    if args.db and not is_postgres(args.db):
        parser().error("--db takes a postgresql:// URL (SQLite is the default)")
    chosen = args.only.split(",") if args.only else list(WORKLOADS)
    if unknown := set(chosen) - set(WORKLOADS):
        parser().error(f"unknown workloads {sorted(unknown)}: choose from {', '.join(WORKLOADS)}")
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"bench needs {tool} (Debian: apt-get install -y {tool})", file=sys.stderr)
            return 2
    pin = args.pin or ("both" if args.full else "yes")
    pin_modes = {"yes": (True,), "no": (False,), "both": (True, False)}[pin]
    figures: list[Figure] = []
    failed: dict[str, str] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="timeline-bench-", dir=args.dir) as scratch:
        context = Context(sizes, args.db, Path(scratch), pin_modes)
        with context.stack:
            for name in (name for name in WORKLOADS if name in chosen):
                _run_one(context, name, figures, failed)
        _print_table(figures, failed, context)
    report = {
        "sizes": asdict(sizes),
        "backend": context.backend,
        "machine": _machine(),
        "seconds": round(time.monotonic() - started, 1),
        "figures": [asdict(f) | {"met": all(c.met for c in f.checks)} for f in figures],
        "failed": failed,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.output}; took {report['seconds']:.0f} s", file=sys.stderr)
    return 1 if failed else 0


def _run_one(context: Context, name: str, figures: list[Figure], failed: dict[str, str]) -> None:
    """One workload's figures, or its error: a failed workload gives no figure at all."""
    print(f"== {name}", file=sys.stderr, flush=True)
    module = importlib.import_module(f"bench.workloads.{name}")
    try:
        found: list[Figure] = module.run(context)
    except (BenchError, OSError, subprocess.SubprocessError) as error:
        failed[name] = str(error)
        print(f"{name} FAILED: {error}", file=sys.stderr, flush=True)
        return
    except Exception as error:  # a workload's bug: its trace, then the next workload
        failed[name] = f"{type(error).__name__}: {error}"
        traceback.print_exc()
        return
    for figure in found:
        print(f"   {figure.workload}: {_number(figure.ours)} {figure.metric}", file=sys.stderr)
    figures.extend(found)
