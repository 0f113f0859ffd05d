"""Append throughput and latency over HTTP, against the durable path and its limit.

For each SQLite `synchronous` setting (FULL, the default, then NORMAL), and with --db for
PostgreSQL with each --workers count, this starts its own server (bench/server.py, the real
application plus `POST /bench/validate`; N processes on one port for N workers) on a fresh
database (a file in a temporary directory; a new schema, dropped afterwards) and drives it
with wrk (one thread, its own process):

1. single-event durable appends: `POST /v1/events`, one new event per request (no id, so the
   server makes one), 64 connections: requests/s, p50/p99 latency;
2. the limit: `POST /bench/validate` on the same server, 64 connections. It runs the same
   token check, size check, JSON parsing and pydantic validation (`read_events`) and answers
   201 with a body of the same shape, but stores nothing;
3. the ratio durable/limit (target >= 0.75);
4. batch appends, 1000 events per request, with 1, 2 and 4 connections: events/s, and the
   same batches to `POST /bench/validate` (the batch limit);
5. the log size (events in the database, i.e. the head position) before and after each run.

With --db it also measures the peer, the `eventsourcing` library's PostgreSQL recorder, in
process on the same database (saves of 1000 events, as bench/inprocess.py), and checks the
PostgreSQL targets: single-event appends >= 5,000/s with 2 workers, batches >= 2x the peer.

Each figure is the median of --runs runs after a warm-up. Durable and limit runs alternate, and
so do the batch connection counts, so that drift and the growing log affect them alike. By
default a one-process server is pinned to CPU 0 and wrk to CPU 1 (taskset); a server of
several processes is not pinned (they share both cores with wrk); --no-pin lets the scheduler
place everything. Each run also reports the CPU used by the server, by wrk and by anything
else on the machine: a run where other processes took more than 15% of a core is flagged
DISTURBED (PostgreSQL's processes are counted as the database's, not as other).

    python bench/append.py                 # under 3 minutes
    python bench/append.py --duration 10 --runs 5 --modes FULL
    python bench/append.py --modes FULL --db postgresql://postgres@127.0.0.1/test --workers 1,2

Needs wrk (`apt-get install -y wrk`). Run it with the project's virtualenv's python; the peer
needs `pip install -e '.[bench]'`.
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
import socket
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
sys.path.insert(0, str(HERE))
import inprocess  # noqa: E402 (beside this file: fresh PostgreSQL schemas, the peer)

SERVER = HERE / "server.py"
LUA = HERE / "append.lua"
SERVER_CPU = 0
CLIENT_CPU = 1
DURABLE_PATH = "/v1/events"
LIMIT_PATH = "/bench/validate"
RATIO_TARGET = 0.75
PG_SINGLE_TARGET = 5_000  # single-event appends/s with 2 workers on PostgreSQL
PEER_BATCH_TARGET = 2.0  # batch events/s against the eventsourcing PostgreSQL recorder


class BenchError(RuntimeError):
    pass


_TICK = os.sysconf("SC_CLK_TCK")
OTHER_CPU_WARNING = 0.15  # of one core: more than this, and something else shared the machine


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of one process so far (0 if it is gone)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / _TICK  # utime, stime
    return 0.0


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


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
    database: float

    @classmethod
    def take(cls, server_pids: Sequence[int]) -> CpuSnapshot:
        busy = steal = server = 0.0
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            # user nice system idle iowait irq softirq steal ...
            busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / _TICK
            steal = fields[7] / _TICK
        server = sum(_cpu_seconds(pid) for pid in server_pids)
        database = sum(_cpu_seconds(pid) for pid in _postgres_pids())
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return cls(
            wall=time.monotonic(),
            busy=busy,
            steal=steal,
            server=server,
            children=children.ru_utime + children.ru_stime,
            own=own.ru_utime + own.ru_stime,
            database=database,
        )


@dataclass(frozen=True)
class CpuUse:
    """CPU used during a run, in cores (1.0 = one core busy the whole time)."""

    server: float
    client: float
    database: float
    other: float
    steal: float

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
        wall = max(b.wall - a.wall, 1e-9)
        server = (b.server - a.server) / wall
        client = (b.children - a.children) / wall
        own = (b.own - a.own) / wall
        database = max(0.0, b.database - a.database) / wall  # a backend that ended is lost
        other = max(0.0, (b.busy - a.busy) / wall - server - client - own - database)
        return cls(server, client, database, other, (b.steal - a.steal) / wall)

    def text(self) -> str:
        note = f" steal {self.steal:.0%}" if self.steal >= 0.01 else ""
        database = f" postgres {self.database:.0%}" if self.database >= 0.01 else ""
        return (
            f"cpu: server {self.server:.0%} wrk {self.client:.0%}{database}"
            f" other {self.other:.0%}{note}"
        )

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


@dataclass(frozen=True)
class Target:
    """What one server set-up measures: a fresh database of one backend, N server processes."""

    label: str
    url: str  # the backend's base URL (PostgreSQL: each target gets a fresh schema of it)
    synchronous: str = "FULL"
    workers: int = 1

    @property
    def postgres(self) -> bool:
        return self.url.startswith("postgresql:")


@dataclass
class ModeResult:
    target: Target
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
    """bench/server.py in `workers` processes sharing one port, killed on exit whatever
    happens."""

    def __init__(
        self,
        script: Path,
        url: str,
        synchronous: str,
        token: str,
        cpu: int | None,
        log_path: Path,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = env or {}
        self.script = script
        self.db = url
        self.synchronous = synchronous
        self.token = token
        self.cpu = cpu
        self.log_path = log_path
        self.workers = workers
        self.processes: list[subprocess.Popen[bytes]] = []
        self.port = 0

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def __enter__(self) -> Server:
        try:
            with socket.socket() as reserved:
                port = 0  # one process: any free port
                if self.workers > 1:  # held (bound, not listening) until every worker listens
                    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                    reserved.bind(("127.0.0.1", 0))
                    port = reserved.getsockname()[1]
                for _ in range(self.workers):  # the first one creates the schema alone
                    self.port = self._start(port)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, port: int) -> int:
        env = {**os.environ, **self.env, "TIMELINE_BOOTSTRAP_TOKEN": self.token}
        env.pop("TIMELINE_DB", None)
        command = [sys.executable, str(self.script), "--db", self.db]
        command += ["--synchronous", self.synchronous, "--port", str(port)]
        command += ["--reuse-port"] if self.workers > 1 else []
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                pinned(command, self.cpu),
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        self.processes.append(process)
        return self._read_port(process, timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_port(self, process: subprocess.Popen[bytes], timeout: float) -> int:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise BenchError(f"the server did not start in {timeout:.0f} s{self._tail()}")
                chunk = os.read(process.stdout.fileno(), 4096)
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
        processes, self.processes = self.processes, []
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
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
        if not self.processes or any(process.poll() is not None for process in self.processes):
            raise BenchError(f"the server died{self._tail()}")


COUNT = "SELECT COUNT(*), MAX(position) FROM events"


def count_events(url: str) -> tuple[int, int]:
    """COUNT(*) and MAX(position), read straight from the database: the head is the log size
    only if positions are gapless, and this checks it."""
    if url.startswith("postgresql:"):
        import psycopg

        with psycopg.connect(url) as db:
            row = db.execute(COUNT).fetchone()
            assert row is not None
            count, head = row
    else:
        path = url.removeprefix("sqlite:///")
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            count, head = connection.execute(COUNT).fetchone()
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
        cpu_before = CpuSnapshot.take(server.pids)
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, "BENCH_TOKEN": self.token},
            timeout=seconds + 120,
            check=False,
        )
        cpu = CpuUse.between(cpu_before, CpuSnapshot.take(server.pids))
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

    def mode(self, directory: Path, target: Target) -> ModeResult:
        name = target.label.replace(" ", "-").replace("=", "")
        log_path = directory / f"{name}.log"
        with contextlib.ExitStack() as stack:
            if target.postgres:
                url = stack.enter_context(inprocess.fresh_url(target.url))
                where = "a fresh PostgreSQL schema"
            else:
                url, where = f"sqlite:///{directory / f'{name}.db'}", "a fresh SQLite file"
            # A server of several processes is not pinned: they share both cores with wrk.
            cpu = self.server_cpu if target.workers == 1 else None
            print(f"\n== {target.label}: {where}, server on 127.0.0.1", flush=True)
            server = stack.enter_context(
                Server(
                    self.args.server,
                    url,
                    target.synchronous,
                    self.token,
                    cpu,
                    log_path,
                    target.workers,
                )
            )
            pinning = "pinned" if cpu is not None else "not pinned"
            print(f"   server pids {server.pids} ({pinning}), port {server.port}")
            durable, limit = self.single_pair(server)
            batches, batch_limit = self.batches(server)
            server.check_alive()
            server.stop()
            count, head = count_events(url)
        result = ModeResult(target, durable, limit, batches, batch_limit, count, head)
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
    print(f"\n   -- medians of {args.runs} runs, {result.target.label}")
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
    print(f"   best batch: {best.events_per_second:,.0f} events/s at c={best_c}")
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
        f"{'server':<20} | {'durable req/s':>13} | {'p50 ms':>6} | {'p99 ms':>6} | "
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
            f"{r.target.label:<20} | {r.durable.rps:>13,.0f} | {r.durable.latency_ms('p50'):>6.2f}"
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
        print(f"  {r.target.label}: " + "; ".join(parts))


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
    if text.strip().lower() == "none":
        return []
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
        help="SQLite synchronous settings to measure, comma-separated (none: no SQLite)",
    )
    p.add_argument(
        "--db",
        metavar="POSTGRESQL_URL",
        help="also measure PostgreSQL (a fresh schema of this database per server), beside "
        "SQLite, and the eventsourcing PostgreSQL recorder's batches (the peer) on it",
    )
    p.add_argument(
        "--workers",
        type=_positive_ints,
        default="1",
        help="PostgreSQL: server processes sharing the port, comma-separated (e.g. 1,2)",
    )
    p.add_argument("--peer-runs", type=int, default=3, help="peer runs (median; 0 = skip)")
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


def _targets(args: argparse.Namespace) -> list[Target]:
    targets = [Target(f"SQLite {mode}", "sqlite:", synchronous=mode) for mode in args.modes]
    if args.db:
        for workers in args.workers:
            plural = "s" if workers > 1 else ""
            targets.append(Target(f"PostgreSQL {workers} worker{plural}", args.db, workers=workers))
    return targets


def _peer(args: argparse.Namespace) -> float | None:
    """The peer's batch rate (events/s, median), in process on the same PostgreSQL database:
    one save of an aggregate with 1000 pending events at a time. None if not installed."""
    if args.peer_runs < 1:
        return None
    if importlib.util.find_spec("eventsourcing") is None:
        print("\npeer: eventsourcing is not installed (pip install -e '.[bench]'): not measured")
        return None
    print(f"\n== peer: eventsourcing's PostgreSQL recorder, in process, {args.peer_runs} runs")
    rates = []
    for index in range(args.peer_runs):
        figures = inprocess.peer(args.db, 0)
        rates.append(figures.batch)
        print(f"   batch run {index + 1}: {figures.batch:>9,.0f} events/s (log 0 -> 10,000)")
    return statistics.median(rates)


def _print_targets(results: list[ModeResult], peer: float | None) -> None:
    print("\nTargets:")
    for r in results:
        if not r.target.postgres:
            verdict = "meets" if r.ratio >= RATIO_TARGET else "BELOW"
            print(f"  {r.target.label}: durable/limit {r.ratio:.2f} ({verdict} {RATIO_TARGET})")
            continue
        parts = []
        if r.target.workers == 2:
            verdict = "meets" if r.durable.rps >= PG_SINGLE_TARGET else "BELOW"
            parts.append(f"single {r.durable.rps:,.0f}/s ({verdict} {PG_SINGLE_TARGET:,}/s)")
        if peer:
            ratio = r.best_batch[1].events_per_second / peer
            verdict = "meets" if ratio >= PEER_BATCH_TARGET else "BELOW"
            parts.append(f"best batch / peer {ratio:.2f} ({verdict} {PEER_BATCH_TARGET:g}x)")
        print(f"  {r.target.label}: " + ("; ".join(parts) or "no target"))
    if peer:
        print(f"  peer batch: {peer:,.0f} events/s (median)")


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
            for target in _targets(args):
                results.append(bench.mode(directory, target))
            peer = _peer(args) if args.db else None
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
    _print_targets(results, peer)
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
