"""Two servers side by side: paired runs of the same load, for differences smaller than the noise.

On a shared machine two benchmark runs minutes apart can differ by more than the change
under test. This starts two servers at once (bench/server.py, each on a database of its own,
differing in the environment settings given with --a and --b, and in the code when --a-tree or
--b-tree names another checkout, a `git worktree` say) and alternates short runs of the same
load (bench/wrk.lua) between them, A then B, --pairs times. Each pair's B/A ratio is taken from
runs seconds apart, so drift cancels out; the median of those ratios is the answer.

    python -m bench.compare --a TIMELINE_COMMIT_LINGER_MS=0 --b TIMELINE_COMMIT_LINGER_MS=2
    python -m bench.compare --a ... --b ... --batch 1000 --connections 2 --no-pin
    python -m bench.compare --a-tree /tmp/tl-before --pairs 6
    python -m bench.compare --a-tree /tmp/tl-before --fill 50000 --connections 8 \\
        --get '/v1/companies/mid?as_of=2025-12-31'

The load is appends to fresh databases, unless --get or --fill is given: then it is GETs of the
--get paths (wrk takes them in turn), after the same log of --fill events (bench/data.py's, as
`make bench` makes it; one file for both) was imported into each database by `timeline import`
of that side's tree. Without --get, the paths are those of the harness's as-of row of the
300-fact company (bench/workloads/reads.py). A tree's server runs with the same interpreter,
from that tree's directory (whose packages it must import), on the same command line.

Pinning (the default) puts both servers (and the imports) on CPU 0 and wrk on CPU 1; only one
server has load at a time. Prints the tree and commit of each side, requests/s (events/s for
appends) and server CPU per event or request of every run, each server's groups per commit
(appends), and the log sizes. Needs wrk; run with the project's virtualenv.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from bench.data import MID_FACTS, Log, write_log
from bench.harness import FULL, QUICK, SMOKE
from bench.machine import (
    CLIENT_CPU,
    ROOT,
    SERVER_CPU,
    BenchError,
    Server,
    Wrk,
    WrkRun,
    count_events,
    pinned,
)
from bench.workloads.reads import _path_sets
from events.sqlite import Synchronous

DURABLE_PATH = "/v1/events"
PACKAGES = ("bench", "events", "projections", "timeline")  # what a tree's server must import


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("TIMELINE_"):
        raise argparse.ArgumentTypeError(f"expected TIMELINE_NAME=value, got {text!r}")
    return name, value


def _tree(text: str) -> Path:
    tree = Path(text).expanduser().resolve()
    if not (tree / "bench" / "server.py").is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a checkout (no bench/server.py)")
    return tree


def _get_path(text: str) -> str:
    if not text.startswith("/") or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"expected a path such as /healthz, got {text!r}")
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", type=_setting, action="append", default=[], help="setting of A")
    p.add_argument("--b", type=_setting, action="append", default=[], help="setting of B")
    p.add_argument("--a-tree", type=_tree, help="checkout whose code A runs (default: this one)")
    p.add_argument("--b-tree", type=_tree, help="checkout whose code B runs (default: this one)")
    p.add_argument("--pairs", type=int, default=8, help="A/B pairs of runs (median of ratios)")
    p.add_argument("--duration", type=int, default=3, help="seconds per run")
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds per server")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--batch", type=int, default=0, help="events per request (0: single)")
    p.add_argument(
        "--get",
        type=_get_path,
        action="append",
        default=[],
        metavar="PATH",
        help="read PATH instead of appending (repeat: taken in turn)",
    )
    p.add_argument(
        "--fill",
        type=int,
        default=0,
        metavar="N",
        help="import the benchmark's log of N events into both databases first, and read",
    )
    p.add_argument("--synchronous", default="FULL", choices=get_args(Synchronous))
    p.add_argument("--no-pin", action="store_true", help="do not pin servers/client to CPUs")
    p.add_argument("--dir", type=Path, help="where to make the temporary databases")
    return p


@dataclass(frozen=True)
class Side:
    name: str
    env: dict[str, str]
    tree: Path

    @property
    def slug(self) -> str:
        return self.name.lower()


def _git(tree: Path, *args: str) -> str:
    completed = subprocess.run(
        ["git", "-C", str(tree), *args], capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() if completed.returncode == 0 else ""


def _revision(tree: Path) -> str:
    """`git rev-parse --short HEAD` of the tree, and whether its files differ from it."""
    head = _git(tree, "rev-parse", "--short", "HEAD") or "not a git checkout"
    changed = _git(tree, "status", "--porcelain")
    return f"{head}, with changes not committed" if changed else head


def _check_tree(tree: Path) -> None:
    """The tree's own packages are the ones its server imports (not, say, this checkout's
    through the virtualenv's editable install)."""
    script = "import importlib.util as u, sys\nfor n in sys.argv[1:]: print(u.find_spec(n).origin)"
    completed = subprocess.run(
        [sys.executable, "-c", script, *PACKAGES],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchError(f"cannot find the packages from {tree}:\n{completed.stderr}")
    for package, origin in zip(PACKAGES, completed.stdout.splitlines(), strict=True):
        if not Path(origin).resolve().is_relative_to(tree):
            raise BenchError(f"from {tree}, `{package}` is imported from {origin}")


def _log_shape(size: int) -> tuple[int, int]:
    """Events of `giant` and the number of other companies: the harness's for a log of its
    sizes (the same file as `make bench` then), its quick ones otherwise."""
    for sizes in (SMOKE, QUICK, FULL):
        if sizes.log == size:
            return sizes.giant, sizes.companies
    return min(QUICK.giant, (size - MID_FACTS) // 5), QUICK.companies


def _import(side: Side, log: Log, db: str, cpu: int | None) -> float:
    """Wall-clock seconds of the side's `timeline import` of the log into `db`."""
    command = [sys.executable, "-m", "timeline.cli", "import", str(log.path), "--db", db]
    env = {**os.environ, **side.env}
    env.pop("TIMELINE_DB", None)
    started = time.perf_counter()
    completed = subprocess.run(
        pinned(command, cpu), cwd=side.tree, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise BenchError(
            f"{side.name}: timeline import exited {completed.returncode}:\n{completed.stderr}"
        )
    return elapsed


def _check_answers(server: Server, paths: Sequence[str], token: str) -> None:
    """Every path is answered 200 before it is measured: a 4xx would be fast and wrong."""
    for path in paths:
        request = urllib.request.Request(server.url(path))
        request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise BenchError(f"GET {path} was answered {error.code}{server.tail()}") from error


def _groups(server: Server) -> float:
    """Events per group commit so far, from the server's /metrics."""
    with urllib.request.urlopen(server.url("/metrics"), timeout=30) as response:
        values = {}
        for line in response.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition(" ")
                values[name] = float(value)
    groups = values.get("timeline_commit_groups_total", 0.0)
    return values.get("timeline_appended_events_total", 0.0) / groups if groups else 0.0


def _cpu_per_event(run: WrkRun) -> float:
    """Server CPU seconds per event appended, or per request read (CpuUse.server is in
    cores)."""
    return run.cpu.server * run.seconds / max(1, run.requests * run.events_per_request)


def _describe(run: WrkRun) -> str:
    per_event = _cpu_per_event(run) * 1e6
    return (
        f"{run.events_per_second:>9,.0f} ev/s  server {per_event:5.1f} us CPU/event  "
        f"log {run.log[0]:,} -> {run.log[1]:,}"
    )


def _describe_read(run: WrkRun) -> str:
    per_request = _cpu_per_event(run) * 1e6
    return (
        f"{run.rps:>9,.0f} req/s  p50 {run.latency_us['p50'] / 1000:6.2f} ms  "
        f"p99 {run.latency_us['p99'] / 1000:6.2f} ms  server {per_request:6.1f} us CPU/request"
    )


def _head(server: Server) -> int:
    return int(server.get_json("/healthz")["head"])


def _load(wrk: Wrk, server: Server, seconds: float, connections: int, batch: int) -> WrkRun:
    before = _head(server)
    run = wrk.run(
        server,
        DURABLE_PATH,
        script="wrk.lua",
        script_args=["batch", str(batch)] if batch else ["single"],
        connections=connections,
        seconds=seconds,
        events_per_request=batch or 1,
    )
    run.log = (before, _head(server))
    return run


def _read(wrk: Wrk, server: Server, seconds: float, connections: int, paths: Path) -> WrkRun:
    return wrk.run(
        server,
        "/",
        script="wrk.lua",
        script_args=["get", str(paths)],
        connections=connections,
        seconds=seconds,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    reading = bool(args.get or args.fill)
    if reading and args.batch:
        p.error("--batch is for appends; --get and --fill read")
    if args.fill and args.fill < MID_FACTS:
        p.error(f"--fill needs at least {MID_FACTS} events (the 300-fact company's)")
    token = "bench_" + secrets.token_urlsafe(24)
    wrk = Wrk(token, None if args.no_pin else CLIENT_CPU)
    cpu = None if args.no_pin else SERVER_CPU
    sides = [
        Side("A", dict(args.a), args.a_tree or ROOT),
        Side("B", dict(args.b), args.b_tree or ROOT),
    ]
    for side in sides:
        _check_tree(side.tree)
        print(f"{side.name}: tree {side.tree} ({_revision(side.tree)})")
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.dir)))
        dbs = {side.name: f"sqlite:///{directory / f'compare-{side.slug}.db'}" for side in sides}
        log = None
        if args.fill:
            giant, companies = _log_shape(args.fill)
            log = write_log(directory / "log.ndjson", args.fill, giant, companies)
            megabytes = log.path.stat().st_size / 1e6
            print(
                f"log: {log.events:,} events (bench/data.py: {MID_FACTS} of mid, {giant:,} of "
                f"giant, {companies:,} other companies; {megabytes:.1f} MB), one file for A and B"
            )
            for side in sides:
                seconds = _import(side, log, dbs[side.name], cpu)
                print(f"{side.name}: imported in {seconds:.1f} s by its tree's timeline import")
        servers = {}
        for side in sides:
            server_log = directory / f"compare-{side.slug}.log"
            command = ["--db", dbs[side.name], "--synchronous", args.synchronous, "--port", "0"]
            server = Server(
                "bench.server",
                command,
                token=token,
                cpu=cpu,
                log_path=server_log,
                env=side.env,
                cwd=side.tree,
            )
            servers[side.name] = stack.enter_context(server)
            print(f"{side.name}: {side.env or '(defaults)'}  pid {server.pids[0]}")
        runs: dict[str, list[WrkRun]] = {"A": [], "B": []}
        if reading:
            heads = {name: _head(server) for name, server in servers.items()}
            expected = log.events if log is not None else 0
            for name, head in heads.items():
                if head != expected:
                    raise BenchError(f"{name}'s log holds {head:,} events, not {expected:,}")
            paths = args.get or _path_sets(expected)["mid"]
            paths_file = directory / "paths.txt"
            paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
            for server in servers.values():
                _check_answers(server, paths, token)
            shown = paths[0] if len(paths) == 1 else f"{len(paths)} paths, {paths[0]} first"
            print(f"reads: GET {shown}")
            if args.warmup > 0:
                for server in servers.values():
                    _read(wrk, server, args.warmup, args.connections, paths_file)
            for index in range(args.pairs):
                for name, server in servers.items():
                    run = _read(wrk, server, args.duration, args.connections, paths_file)
                    runs[name].append(run)
                    print(f"   pair {index + 1} {name}: {_describe_read(run)}", flush=True)
        else:
            load = {"connections": args.connections, "batch": args.batch}
            if args.warmup > 0:
                for server in servers.values():
                    _load(wrk, server, args.warmup, **load)
            for index in range(args.pairs):
                for name, server in servers.items():
                    run = _load(wrk, server, args.duration, **load)
                    runs[name].append(run)
                    print(f"   pair {index + 1} {name}: {_describe(run)}", flush=True)
            per_group = {name: _groups(server) for name, server in servers.items()}
        sizes = {name: count_events(db)[0] for name, db in dbs.items()}
    pairs = list(zip(runs["A"], runs["B"], strict=True))
    ratios = [b.events_per_second / a.events_per_second for a, b in pairs]
    cpu_ratios = [_cpu_per_event(b) / _cpu_per_event(a) for a, b in pairs]
    print()
    for name in ("A", "B"):
        rates = [run.events_per_second for run in runs[name]]
        if reading:
            print(
                f"{name}: median {statistics.median(rates):,.0f} requests/s over {len(rates)} "
                f"runs, log {sizes[name]:,} events"
            )
        else:
            print(
                f"{name}: median {statistics.median(rates):,.0f} events/s over {len(rates)} runs, "
                f"{per_group[name]:.1f} events per commit, log {sizes[name]:,} events at the end"
            )
    unit, per = ("requests/s", "request") if reading else ("events/s", "event")
    print(
        f"B/A {unit}: median of paired ratios {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f})"
    )
    print(f"B/A server CPU per {per}: median of paired ratios {statistics.median(cpu_ratios):.3f}")
    print("pinned: servers on CPU 0, wrk on CPU 1" if not args.no_pin else "not pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
