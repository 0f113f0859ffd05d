"""Append throughput and latency over HTTP, against the durable path and its limit.

For each SQLite `synchronous` setting (FULL, the default, then NORMAL) this starts its own
server (bench/server.py, the real application plus `POST /bench/validate`) on a fresh database
in a temporary directory, and drives it with wrk (one thread, its own process):

1. single-event durable appends: `POST /v1/events`, one new event per request (no id, so the
   server makes one), 64 connections: requests/s, p50/p99 latency;
2. the limit: `POST /bench/validate` on the same server, 64 connections. It runs the same
   token check, size check, JSON parsing and pydantic validation (`read_events`) and answers
   201 with a body of the same shape, but stores nothing;
3. the ratio durable/limit (target >= 0.75);
4. batch appends, 1000 events per request, with 1, 2 and 4 connections: events/s (target
   >= 60,000), and the same batches to `POST /bench/validate` (the batch limit);
5. the log size (events in the database, i.e. the head position) before and after each run.

Each figure is the median of --runs runs after a warm-up. Durable and limit runs alternate, and
so do the batch connection counts, so that drift and the growing log affect them alike. By
default the server is pinned to CPU 0 and wrk to CPU 1 (taskset); --no-pin lets the scheduler
place them. Each run also reports the CPU used by the server, by wrk and by anything else on
the machine: a run where other processes took more than 15% of a core is flagged DISTURBED.

    python bench/append.py                 # under 3 minutes
    python bench/append.py --duration 10 --runs 5 --modes FULL

Needs wrk (`apt-get install -y wrk`). Run it with the project's virtualenv's python.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import secrets
import selectors
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.py"
LUA = HERE / "append.lua"
SERVER_CPU = 0
CLIENT_CPU = 1
DURABLE_PATH = "/v1/events"
LIMIT_PATH = "/bench/validate"
RATIO_TARGET = 0.75
BATCH_TARGET = 60_000


class BenchError(RuntimeError):
    pass


_TICK = os.sysconf("SC_CLK_TCK")
OTHER_CPU_WARNING = 0.15  # of one core: more than this, and something else shared the machine


@dataclass(frozen=True)
class CpuSnapshot:
    """Cumulative CPU seconds: the whole machine (busy, steal), the server, the children this
    process waited for (wrk) and this process itself."""

    wall: float
    busy: float
    steal: float
    server: float
    children: float
    own: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSnapshot:
        busy = steal = server = 0.0
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            # user nice system idle iowait irq softirq steal ...
            busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / _TICK
            steal = fields[7] / _TICK
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()
            server = (int(stat[11]) + int(stat[12])) / _TICK  # utime, stime
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return cls(
            wall=time.monotonic(),
            busy=busy,
            steal=steal,
            server=server,
            children=children.ru_utime + children.ru_stime,
            own=own.ru_utime + own.ru_stime,
        )


@dataclass(frozen=True)
class CpuUse:
    """CPU used during a run, in cores (1.0 = one core busy the whole time)."""

    server: float
    client: float
    other: float
    steal: float

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
        wall = max(b.wall - a.wall, 1e-9)
        server = (b.server - a.server) / wall
        client = (b.children - a.children) / wall
        own = (b.own - a.own) / wall
        other = max(0.0, (b.busy - a.busy) / wall - server - client - own)
        return cls(server, client, other, (b.steal - a.steal) / wall)

    def text(self) -> str:
        note = f" steal {self.steal:.0%}" if self.steal >= 0.01 else ""
        return f"cpu: server {self.server:.0%} wrk {self.client:.0%} other {self.other:.0%}{note}"

    @property
    def disturbed(self) -> bool:
        return self.other > OTHER_CPU_WARNING or self.steal > OTHER_CPU_WARNING


@dataclass
class Run:
    """One wrk run and the log size around it."""

    requests: int
    seconds: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    log_before: int
    log_after: int
    cpu: CpuUse
    events_per_request: int = 1

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def events_per_second(self) -> float:
        return self.rps * self.events_per_request

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class Measurement:
    """Several runs of one kind of load; figures are medians over the runs."""

    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(run.rps for run in self.runs)

    @property
    def events_per_second(self) -> float:
        return statistics.median(run.events_per_second for run in self.runs)

    def latency_ms(self, key: str) -> float:
        return statistics.median(run.latency_us[key] for run in self.runs) / 1000

    @property
    def log_start(self) -> int:
        return self.runs[0].log_before

    @property
    def log_end(self) -> int:
        return self.runs[-1].log_after

    @property
    def errors(self) -> int:
        return sum(run.error_count for run in self.runs)

    def cpu(self, part: str) -> float:
        value: float = statistics.median(getattr(run.cpu, part) for run in self.runs)
        return value

    @property
    def disturbed(self) -> int:
        return sum(run.cpu.disturbed for run in self.runs)


@dataclass
class ModeResult:
    synchronous: str
    durable: Measurement
    limit: Measurement
    batches: dict[int, Measurement]
    batch_limit: Measurement | None
    final_count: int
    final_head: int

    @property
    def ratio(self) -> float:
        return self.durable.rps / self.limit.rps

    @property
    def measurements(self) -> list[Measurement]:
        extra = [self.batch_limit] if self.batch_limit is not None else []
        return [self.durable, self.limit, *self.batches.values(), *extra]

    @property
    def best_batch(self) -> tuple[int, Measurement]:
        return max(self.batches.items(), key=lambda item: item[1].events_per_second)


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else list(command)


class Server:
    """bench/server.py in its own process, killed on exit whatever happens."""

    def __init__(
        self,
        script: Path,
        db: Path,
        synchronous: str,
        token: str,
        cpu: int | None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env or {}
        self.script = script
        self.db = db
        self.synchronous = synchronous
        self.token = token
        self.cpu = cpu
        self.log_path = db.with_suffix(f".{synchronous.lower()}.log")
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Server:
        env = {**os.environ, **self.env, "TIMELINE_BOOTSTRAP_TOKEN": self.token}
        env.pop("TIMELINE_DB", None)
        command = pinned(
            [
                sys.executable,
                str(self.script),
                "--db",
                f"sqlite:///{self.db}",
                "--synchronous",
                self.synchronous,
            ],
            self.cpu,
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
            )
        try:
            self.port = self._read_port(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_port(self, timeout: float) -> int:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise BenchError(f"the server did not start in {timeout:.0f} s{self._tail()}")
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    raise BenchError(f"the server exited before listening{self._tail()}")
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode()
        if not line.startswith("port "):
            raise BenchError(f"unexpected server output {line!r}{self._tail()}")
        return int(line.split()[1])

    def _tail(self) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip()
            if text:
                return ":\n" + "\n".join(text.splitlines()[-20:])
        return ""

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def head(self) -> int:
        with urllib.request.urlopen(self.url("/healthz"), timeout=30) as response:
            return int(json.load(response)["head"])

    def settled_head(self, quiet: float) -> int:
        """The head once the appends still in flight when wrk stopped are committed: the
        first value that stays unchanged for `quiet` seconds (at most 15 s of waiting)."""
        head, since, deadline = self.head(), time.monotonic(), time.monotonic() + 15
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            time.sleep(min(0.05, quiet))
            again = self.head()
            if again != head:
                head, since = again, time.monotonic()
        return head

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"the server died{self._tail()}")


def count_events(db: Path) -> tuple[int, int]:
    """COUNT(*) and MAX(position), read straight from the file: the head is the log size only
    if positions are gapless, and this checks it."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        count, head = connection.execute("SELECT COUNT(*), MAX(position) FROM events").fetchone()
    finally:
        connection.close()
    return int(count), int(head or 0)


class Bench:
    def __init__(self, args: argparse.Namespace, pin: bool) -> None:
        self.args = args
        self.client_cpu = CLIENT_CPU if pin else None
        self.server_cpu = SERVER_CPU if pin else None
        self.token = "bench_" + secrets.token_urlsafe(24)

    def wrk(
        self,
        server: Server,
        path: str,
        *,
        connections: int,
        seconds: int,
        batch: int = 0,
    ) -> Run:
        script_args = ["batch", str(batch)] if batch else ["single"]
        command = pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, seconds)}s",
                "--timeout",
                "30s",
                "--latency",
                "-s",
                str(LUA),
                server.url(path),
                "--",
                *script_args,
            ],
            self.client_cpu,
        )
        server.check_alive()
        before = server.head()
        pid = server.process.pid if server.process else 0
        cpu_before = CpuSnapshot.take(pid)
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "BENCH_TOKEN": self.token},
            timeout=seconds + 120,
            check=False,
        )
        cpu = CpuUse.between(cpu_before, CpuSnapshot.take(pid))
        server.check_alive()
        if completed.returncode != 0:
            raise BenchError(f"wrk failed ({completed.returncode}):\n{completed.stderr}")
        result = _parse_wrk(completed.stdout)
        # Requests cut off by wrk's stop still finish on the server, within about a latency.
        quiet = min(2.0, max(0.2, result["latency_us"]["max"] / 1e6))
        after = server.settled_head(quiet)
        run = Run(
            requests=int(result["requests"]),
            seconds=result["duration_us"] / 1e6,
            errors={key: int(value) for key, value in result["errors"].items()},
            latency_us={key: float(value) for key, value in result["latency_us"].items()},
            log_before=before,
            log_after=after,
            cpu=cpu,
            events_per_request=batch or 1,
        )
        if self.args.verbose:
            print(f"      {completed.stdout.strip()}")
        return run

    def single_pair(self, server: Server) -> tuple[Measurement, Measurement]:
        durable, limit = Measurement("durable"), Measurement("limit")
        c, warm = self.args.connections, self.args.warmup
        if warm > 0:
            self.wrk(server, DURABLE_PATH, connections=c, seconds=warm)
            self.wrk(server, LIMIT_PATH, connections=c, seconds=warm)
        for index in range(self.args.runs):
            for measurement, path in ((durable, DURABLE_PATH), (limit, LIMIT_PATH)):
                run = self.wrk(server, path, connections=c, seconds=self.args.duration)
                measurement.runs.append(run)
                _print_run(measurement.name, index, run)
        return durable, limit

    def batches(self, server: Server) -> tuple[dict[int, Measurement], Measurement | None]:
        """Rounds of one run per connection count (then the limit), so that every count sees
        the log at about the same sizes: append cost grows with the log."""
        size = self.args.batch_size
        if self.args.warmup > 0:
            self.wrk(server, DURABLE_PATH, connections=1, seconds=self.args.warmup, batch=size)
        plan = [(c, DURABLE_PATH, Measurement(f"batch c={c}")) for c in self.args.batch_connections]
        limit = None
        if self.args.batch_limit_connections > 0:
            c = self.args.batch_limit_connections
            limit = Measurement(f"b.limit c={c}")
            plan.append((c, LIMIT_PATH, limit))
        for index in range(self.args.runs):
            for connections, path, measurement in plan:
                run = self.wrk(
                    server,
                    path,
                    connections=connections,
                    seconds=self.args.batch_duration,
                    batch=size,
                )
                measurement.runs.append(run)
                _print_run(measurement.name, index, run)
        durable = {c: m for c, path, m in plan if path == DURABLE_PATH}
        return durable, limit

    def mode(self, directory: Path, synchronous: str) -> ModeResult:
        db = directory / f"bench-{synchronous.lower()}.db"
        print(f"\n== synchronous={synchronous}: fresh database, server on 127.0.0.1", flush=True)
        with Server(self.args.server, db, synchronous, self.token, self.server_cpu) as server:
            pid = server.process.pid if server.process else "?"
            print(f"   server pid {pid}, port {server.port}")
            durable, limit = self.single_pair(server)
            batches, batch_limit = self.batches(server)
            server.check_alive()
        count, head = count_events(db)
        result = ModeResult(synchronous, durable, limit, batches, batch_limit, count, head)
        _print_mode(result, self.args)
        return result


def _parse_wrk(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            value: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return value
    raise BenchError(f"no result line in wrk's output:\n{stdout}")


def _print_run(name: str, index: int, run: Run) -> None:
    errors = f"  ERRORS {run.errors}" if run.error_count else ""
    if run.events_per_request > 1:
        rate = f"{run.events_per_second:>9,.0f} events/s ({run.rps:,.1f} req/s)"
    else:
        rate = f"{run.rps:>9,.0f} req/s"
    print(
        f"   {name:<10} run {index + 1}: {rate}  p50 {run.latency_us['p50'] / 1000:7.2f} ms"
        f"  p99 {run.latency_us['p99'] / 1000:7.2f} ms  log {run.log_before:,} -> "
        f"{run.log_after:,}  {run.cpu.text()}{' DISTURBED' if run.cpu.disturbed else ''}{errors}",
        flush=True,
    )


def _print_mode(result: ModeResult, args: argparse.Namespace) -> None:
    sync = result.synchronous
    print(f"\n   -- medians of {args.runs} runs, synchronous={sync}")
    for m in (result.durable, result.limit):
        path = DURABLE_PATH if m is result.durable else LIMIT_PATH
        print(
            f"   {m.name:<8} POST {path:<15} c={args.connections}: {m.rps:>9,.0f} req/s"
            f"  p50 {m.latency_ms('p50'):6.2f} ms  p99 {m.latency_ms('p99'):6.2f} ms"
            f"  log {m.log_start:,} -> {m.log_end:,}  server cpu {m.cpu('server'):.0%}"
        )
    verdict = "meets" if result.ratio >= RATIO_TARGET else "BELOW"
    print(f"   ratio durable/limit: {result.ratio:.2f} ({verdict} target {RATIO_TARGET})")
    for connections, m in result.batches.items():
        print(
            f"   batch {args.batch_size} c={connections}: {m.events_per_second:>9,.0f} events/s"
            f"  ({m.rps:,.1f} req/s, p50 {m.latency_ms('p50'):6.1f} ms,"
            f" p99 {m.latency_ms('p99'):6.1f} ms)  log {m.log_start:,} -> {m.log_end:,}"
            f"  server cpu {m.cpu('server'):.0%}"
        )
    best_c, best = result.best_batch
    verdict = "meets" if best.events_per_second >= BATCH_TARGET else "BELOW"
    print(
        f"   best batch: {best.events_per_second:,.0f} events/s at c={best_c}"
        f" ({verdict} target {BATCH_TARGET:,})"
    )
    if result.batch_limit is not None:
        m = result.batch_limit
        print(
            f"   batch limit (POST {LIMIT_PATH}, {args.batch_size} events,"
            f" c={args.batch_limit_connections}): {m.events_per_second:,.0f} events/s"
            f" ({m.rps:,.1f} req/s, p50 {m.latency_ms('p50'):.1f} ms); best durable batch /"
            f" batch limit {best.events_per_second / m.events_per_second:.2f}"
        )
    gapless = "gapless" if result.final_count == result.final_head else "NOT GAPLESS"
    print(f"   database: {result.final_count:,} events, head {result.final_head:,} ({gapless})")
    disturbed = sum(m.disturbed for m in result.measurements)
    if disturbed:
        print(
            f"   WARNING: in {disturbed} runs other processes used more than"
            f" {OTHER_CPU_WARNING:.0%} of a core: those figures are disturbed"
        )
    errors = sum(m.errors for m in result.measurements)
    if errors:
        print(f"   WARNING: {errors} failed requests (non-2xx, timeouts or socket errors)")


def _print_summary(results: list[ModeResult], args: argparse.Namespace, pin_note: str) -> None:
    print(f"\n== Summary (medians of {args.runs} runs; {pin_note})")
    header = (
        f"{'synchronous':<11} | {'durable req/s':>13} | {'p50 ms':>6} | {'p99 ms':>6} | "
        f"{'limit req/s':>11} | {'p50 ms':>6} | {'p99 ms':>6} | {'ratio':>5} | "
        f"{'batch events/s (c=' + ','.join(map(str, args.batch_connections)) + ')':<30} | "
        f"{'best':<17} | batch limit"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        each = " / ".join(f"{m.events_per_second:,.0f}" for m in r.batches.values())
        best_c, best = r.best_batch
        best_text = f"{best.events_per_second:,.0f} (c={best_c})"
        limit_text = f"{r.batch_limit.events_per_second:,.0f}" if r.batch_limit else "-"
        print(
            f"{r.synchronous:<11} | {r.durable.rps:>13,.0f} | {r.durable.latency_ms('p50'):>6.2f}"
            f" | {r.durable.latency_ms('p99'):>6.2f} | {r.limit.rps:>11,.0f}"
            f" | {r.limit.latency_ms('p50'):>6.2f} | {r.limit.latency_ms('p99'):>6.2f}"
            f" | {r.ratio:>5.2f} | {each:<30} | {best_text:<17} | {limit_text}"
        )
    disturbed = sum(m.disturbed for r in results for m in r.measurements)
    total = sum(len(m.runs) for r in results for m in r.measurements)
    if disturbed:
        print(
            f"WARNING: {disturbed} of {total} runs shared the machine with other processes"
            f" (> {OTHER_CPU_WARNING:.0%} of a core): rerun on a quiet machine to trust them"
        )
    print("\nLog size (events in the database) at the start and end of each measurement:")
    for r in results:
        parts = [
            f"durable {r.durable.log_start:,}->{r.durable.log_end:,}",
            f"limit {r.limit.log_start:,}->{r.limit.log_end:,}",
            *(f"batch c={c} {m.log_start:,}->{m.log_end:,}" for c, m in r.batches.items()),
        ]
        if r.batch_limit is not None:
            parts.append(f"batch limit {r.batch_limit.log_start:,}->{r.batch_limit.log_end:,}")
        print(f"  {r.synchronous}: " + "; ".join(parts))


def _machine() -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def _code_state() -> str:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(HERE), "status", "--porcelain", "--untracked-files=no", "--", ".."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    changed = [line[3:] for line in dirty if len(line) > 3]
    return f"git {head}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def _wrk_version() -> str:
    completed = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (completed.stdout or completed.stderr).splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def _positive_ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError("expected positive integers separated by commas")
    return values


def _modes(text: str) -> list[str]:
    modes = [part.strip().upper() for part in text.split(",") if part.strip()]
    allowed = {"OFF", "NORMAL", "FULL", "EXTRA"}
    if not modes or any(mode not in allowed for mode in modes):
        raise argparse.ArgumentTypeError(f"expected some of {sorted(allowed)}, comma-separated")
    return modes


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Append throughput/latency over HTTP: durable vs. validation-only limit.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=int, default=5, help="seconds per single-event run")
    p.add_argument("--batch-duration", type=int, default=3, help="seconds per batch run")
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds (0 = none)")
    p.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    p.add_argument("--connections", type=int, default=64, help="connections, single events")
    p.add_argument("--batch-size", type=int, default=1000, help="events per batch request")
    p.add_argument(
        "--batch-connections",
        type=_positive_ints,
        default="1,2,4",
        help="connection counts for batches, comma-separated",
    )
    p.add_argument(
        "--batch-limit-connections",
        type=int,
        default=1,
        help="connections for the batch limit (POST /bench/validate, 1000 events; 0 = skip)",
    )
    p.add_argument(
        "--modes",
        type=_modes,
        default="FULL,NORMAL",
        help="SQLite synchronous settings to measure, comma-separated",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin server/client to CPUs")
    p.add_argument("--dir", type=Path, help="where to make the temporary database directory")
    p.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    p.add_argument(
        "--server",
        type=Path,
        default=SERVER.relative_to(HERE.parent),
        help="server script to start (for experiments: it must take --db and --synchronous "
        "and print `port <n>` like bench/server.py)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print wrk's raw result lines")
    return p


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so every `finally` runs and every child is stopped."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.server.exists():
        args.server = HERE.parent / args.server  # relative to the repository
    if args.runs < 1 or args.batch_size < 1 or args.batch_size > 1000:
        print("--runs must be >= 1 and --batch-size between 1 and 1000", file=sys.stderr)
        return 2
    if importlib.util.find_spec("timeline") is None or importlib.util.find_spec("aiohttp") is None:
        print(
            "run this with the project's virtualenv (make .venv/.installed):"
            " .venv/bin/python bench/append.py",
            file=sys.stderr,
        )
        return 2
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    pin = not args.no_pin
    pin_note = "not pinned (--no-pin)"
    if pin:
        cpus = os.sched_getaffinity(0)
        if shutil.which("taskset") is None or not {SERVER_CPU, CLIENT_CPU} <= cpus:
            pin = False
            pin_note = "not pinned: taskset or CPUs 0 and 1 unavailable"
        else:
            pin_note = f"server pinned to CPU {SERVER_CPU}, wrk to CPU {CLIENT_CPU} (taskset)"
            os.sched_setaffinity(0, {CLIENT_CPU})  # this orchestrator stays off the server's CPU
    print("Timeline append benchmark")
    print(f"machine: {_machine()}")
    print(f"code: {_code_state()}")
    print(f"client: {_wrk_version()}, 1 thread, its own process; {pin_note}")
    print(
        f"runs: {args.runs} x {args.duration:g} s (single), {args.runs} x "
        f"{args.batch_duration:g} s (batch), after {args.warmup:g} s warm-up; "
        f"single: {args.connections} connections; batch: {args.batch_size} events/request, "
        f"connections {','.join(map(str, args.batch_connections))}"
    )
    started = time.monotonic()
    bench = Bench(args, pin)
    results: list[ModeResult] = []
    directory = Path(tempfile.mkdtemp(prefix="timeline-bench-", dir=args.dir))
    print(f"databases in {directory}")
    try:
        with _terminate_as_interrupt():
            for synchronous in args.modes:
                results.append(bench.mode(directory, synchronous))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BenchError as exc:
        print(f"\nbench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    _print_summary(results, args, pin_note)
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
