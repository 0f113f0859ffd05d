"""Two server settings side by side: paired append runs, for differences smaller than the noise.

On a shared machine two benchmark runs minutes apart can differ by more than the change
under test. This starts two servers at once (bench/server.py, each on a fresh database,
differing only in the environment settings given with --a and --b) and alternates short runs
of the same load (bench/wrk.lua) between them, A then B, --pairs times. Each pair's B/A ratio
is taken from runs seconds apart, so drift cancels out; the median of those ratios is the
answer.

    python -m bench.compare --a TIMELINE_COMMIT_LINGER_MS=0 --b TIMELINE_COMMIT_LINGER_MS=2
    python -m bench.compare --a ... --b ... --batch 1000 --connections 2 --no-pin

Pinning (the default) puts both servers on CPU 0 and wrk on CPU 1; only one server has load at
a time. Prints requests/s (events/s for batches) and server CPU per event of every run, each
server's groups per commit, and the log sizes. Needs wrk; run with the project's virtualenv.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from bench.machine import CLIENT_CPU, SERVER_CPU, Server, Wrk, WrkRun, count_events

DURABLE_PATH = "/v1/events"


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("TIMELINE_"):
        raise argparse.ArgumentTypeError(f"expected TIMELINE_NAME=value, got {text!r}")
    return name, value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--a", type=_setting, action="append", default=[], help="setting of A")
    p.add_argument("--b", type=_setting, action="append", default=[], help="setting of B")
    p.add_argument("--pairs", type=int, default=8, help="A/B pairs of runs (median of ratios)")
    p.add_argument("--duration", type=int, default=3, help="seconds per run")
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds per server")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--batch", type=int, default=0, help="events per request (0: single)")
    p.add_argument("--synchronous", default="FULL", choices=("OFF", "NORMAL", "FULL", "EXTRA"))
    p.add_argument("--no-pin", action="store_true", help="do not pin servers/client to CPUs")
    p.add_argument("--dir", type=Path, help="where to make the temporary databases")
    return p


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
    """Server CPU seconds per event appended (CpuUse.server is in cores)."""
    return run.cpu.server * run.seconds / max(1, run.requests * run.events_per_request)


def _describe(run: WrkRun) -> str:
    per_event = _cpu_per_event(run) * 1e6
    return (
        f"{run.events_per_second:>9,.0f} ev/s  server {per_event:5.1f} us CPU/event  "
        f"log {run.log[0]:,} -> {run.log[1]:,}"
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    token = "bench_" + secrets.token_urlsafe(24)
    wrk = Wrk(token, None if args.no_pin else CLIENT_CPU)
    cpu = None if args.no_pin else SERVER_CPU
    a_env, b_env = dict(args.a), dict(args.b)
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.dir)))
        servers = {}
        for name, env in (("A", a_env), ("B", b_env)):
            db = f"sqlite:///{directory / f'compare-{name.lower()}.db'}"
            log = directory / f"compare-{name.lower()}.log"
            command = ["--db", db, "--synchronous", args.synchronous, "--port", "0"]
            server = Server("bench.server", command, token=token, cpu=cpu, log_path=log, env=env)
            servers[name] = stack.enter_context(server)
            print(f"{name}: {env or '(defaults)'}  pid {server.pids[0]}")
        load = {"connections": args.connections, "batch": args.batch}
        if args.warmup > 0:
            for server in servers.values():
                _load(wrk, server, args.warmup, **load)
        runs: dict[str, list[WrkRun]] = {"A": [], "B": []}
        for index in range(args.pairs):
            for name, server in servers.items():
                run = _load(wrk, server, args.duration, **load)
                runs[name].append(run)
                print(f"   pair {index + 1} {name}: {_describe(run)}", flush=True)
        per_group = {name: _groups(server) for name, server in servers.items()}
        dbs = {name: f"sqlite:///{directory / f'compare-{name.lower()}.db'}" for name in servers}
        sizes = {name: count_events(db)[0] for name, db in dbs.items()}
    pairs = list(zip(runs["A"], runs["B"], strict=True))
    ratios = [b.events_per_second / a.events_per_second for a, b in pairs]
    cpu = [_cpu_per_event(b) / _cpu_per_event(a) for a, b in pairs]
    print()
    for name in ("A", "B"):
        rates = [run.events_per_second for run in runs[name]]
        print(
            f"{name}: median {statistics.median(rates):,.0f} events/s over {len(rates)} runs, "
            f"{per_group[name]:.1f} events per commit, log {sizes[name]:,} events at the end"
        )
    print(
        f"B/A events/s: median of paired ratios {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f})"
    )
    print(f"B/A server CPU per event: median of paired ratios {statistics.median(cpu):.3f}")
    print("pinned: servers on CPU 0, wrk on CPU 1" if not args.no_pin else "not pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
