"""What the benchmarks share: server processes, wrk runs, CPU accounting, pinning, memory.

A server is any command that prints `port <n>` on its first stdout line once it listens on
127.0.0.1 (bench/server.py, bench/peer.py); it is killed with its process group whatever
happens. A wrk run reports what wrk measured and the CPU every part of the machine used
meanwhile, so that a run disturbed by something else on the machine can be flagged.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import resource
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
SERVER_CPU, CLIENT_CPU = 0, 1
OTHER_CPU_WARNING = 0.15  # of one core: more than this, and something else shared the machine
_TICK = os.sysconf("SC_CLK_TCK")
_schemas = itertools.count(1)


class BenchError(RuntimeError):
    """A workload that cannot give a figure: a server died, a request failed, wrk failed."""


def pinned(command: Sequence[str], cpu: int | None) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if cpu is not None else list(command)


def cpu_seconds(pid: int) -> float:
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
    """Cumulative CPU seconds: the whole machine (busy, steal), the servers, the children this
    process waited for (wrk, commands), this process itself and PostgreSQL's processes."""

    wall: float
    busy: float
    steal: float
    server: float
    children: float
    own: float
    database: float

    @classmethod
    def take(cls, server_pids: Sequence[int]) -> CpuSnapshot:
        busy = steal = 0.0
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
            # user nice system idle iowait irq softirq steal ...
            busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / _TICK
            steal = fields[7] / _TICK
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        return cls(
            wall=time.monotonic(),
            busy=busy,
            steal=steal,
            server=sum(cpu_seconds(pid) for pid in server_pids),
            children=children.ru_utime + children.ru_stime,
            own=own.ru_utime + own.ru_stime,
            database=sum(cpu_seconds(pid) for pid in _postgres_pids()),
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
        client = (b.children - a.children + b.own - a.own) / wall
        database = max(0.0, b.database - a.database) / wall  # a backend that ended is lost
        other = max(0.0, (b.busy - a.busy) / wall - server - client - database)
        return cls(server, client, database, other, (b.steal - a.steal) / wall)

    @property
    def disturbed(self) -> bool:
        return self.other > OTHER_CPU_WARNING or self.steal > OTHER_CPU_WARNING


@contextlib.contextmanager
def watched(server_pids: Sequence[int]) -> Iterator[list[CpuUse]]:
    """CPU use of the block, appended to the yielded list when it ends."""
    found: list[CpuUse] = []
    before = CpuSnapshot.take(server_pids)
    yield found
    found.append(CpuUse.between(before, CpuSnapshot.take(server_pids)))


@contextlib.contextmanager
def on_cpu(cpu: int | None) -> Iterator[None]:
    """This process on `cpu` for the block (None: wherever it was)."""
    before = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


class Server:
    """A server process (`python -m MODULE ARGS`), in its own process group, killed on exit;
    run in `cwd` (default: this checkout), whose code it then imports."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        *,
        token: str,
        cpu: int | None,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.command = [sys.executable, "-m", module, *args]
        self.cwd = cwd or ROOT  # where `-m MODULE` and the code it imports are found
        self.env = {**os.environ, **(env or {}), "TIMELINE_BOOTSTRAP_TOKEN": token}
        self.env.pop("TIMELINE_DB", None)
        self.cpu = cpu
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None else []

    def __enter__(self) -> Server:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                pinned(self.command, self.cpu),
                cwd=self.cwd,
                stdout=subprocess.PIPE,
                stderr=log,
                env=self.env,
                start_new_session=True,
            )
        try:
            self.port = self._read_port(self.process, timeout=120)
        except BaseException:
            self.stop()
            raise
        return self

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
                    raise BenchError(f"the server did not start in {timeout:.0f} s{self.tail()}")
                chunk = os.read(process.stdout.fileno(), 4096)
                if not chunk:
                    raise BenchError(f"the server exited before listening{self.tail()}")
                buffer += chunk
        line = buffer.split(b"\n", 1)[0].decode()
        if not line.startswith("port "):
            raise BenchError(f"unexpected server output {line!r}{self.tail()}")
        return int(line.split()[1])

    def tail(self) -> str:
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
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get_json(self, path: str, token: str | None = None) -> Any:
        request = urllib.request.Request(self.url(path))
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise BenchError(f"the server died{self.tail()}")

    def memory(self) -> dict[str, int]:
        """Resident kilobytes of the server: anonymous (heap) and file-backed (mmap) apart."""
        found = {}
        for line in Path(f"/proc/{self.pids[0]}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                found[name] = int(value.split()[0])
        return found


@dataclass
class WrkRun:
    """One wrk run: what it counted, its latency percentiles (µs) and the CPU around it."""

    requests: int
    seconds: float
    errors: dict[str, int]
    latency_us: dict[str, float]
    cpu: CpuUse
    events_per_request: int = 1
    log: tuple[int, int] = (0, 0)  # the log's size before and after, where it grows

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
class Wrk:
    """wrk with one thread, pinned to CLIENT_CPU unless `cpu` is None."""

    token: str
    cpu: int | None
    extra_env: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        server: Server,
        url_path: str,
        *,
        script: str,
        script_args: Sequence[str] = (),
        connections: int,
        seconds: float,
        events_per_request: int = 1,
        env: dict[str, str] | None = None,
    ) -> WrkRun:
        command = pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "--latency",
                "-s",
                str(Path(__file__).resolve().parent / script),
                server.url(url_path),
                "--",
                *script_args,
            ],
            self.cpu,
        )
        server.check_alive()
        with watched(server.pids) as cpu:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env={**os.environ, **self.extra_env, **(env or {}), "BENCH_TOKEN": self.token},
                timeout=seconds + 120,
                check=False,
            )
        server.check_alive()
        if completed.returncode != 0:
            raise BenchError(f"wrk failed ({completed.returncode}):\n{completed.stderr}")
        result = _parse_wrk(completed.stdout)
        run = WrkRun(
            requests=int(result["requests"]),
            seconds=result["duration_us"] / 1e6,
            errors={key: int(value) for key, value in result["errors"].items()},
            latency_us={key: float(value) for key, value in result["latency_us"].items()},
            cpu=cpu[0],
            events_per_request=events_per_request,
        )
        if run.error_count:
            raise BenchError(
                f"{run.error_count} of {run.requests} requests to {url_path} failed "
                f"({run.errors}){server.tail()}"
            )
        if run.requests == 0:
            raise BenchError(f"no request to {url_path} completed in {seconds} s")
        return run


def _parse_wrk(stdout: str) -> dict[str, Any]:
    for line in stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            value: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return value
    raise BenchError(f"wrk printed no BENCH_RESULT line:\n{stdout}")


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql:", "postgres:"))


@contextlib.contextmanager
def fresh_schema(dsn: str, prefix: str = "bench") -> Iterator[str]:
    """A new, empty PostgreSQL schema, dropped with everything in it afterwards."""
    import psycopg

    name = f"{prefix}_{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(f"DROP SCHEMA {name} CASCADE")


def schema_url(dsn: str, schema: str) -> str:
    """`dsn` with `schema` as its search_path (how a Timeline URL names a schema)."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-csearch_path={schema}')}"


COUNT = "SELECT COUNT(*), MAX(position) FROM events"


def count_events(url: str) -> tuple[int, int]:
    """COUNT(*) and MAX(position), read straight from the database: the head is the log size
    only if positions are gapless, and this checks it."""
    if is_postgres(url):
        import psycopg

        with psycopg.connect(url) as db:
            row = db.execute(COUNT).fetchone()
            assert row is not None
            count, head = row
    else:
        connection = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
        try:
            count, head = connection.execute(COUNT).fetchone()
        finally:
            connection.close()
    return int(count), int(head or 0)
