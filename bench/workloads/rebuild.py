"""Workload 6: rebuilding the projections of the imported log, against the peer's rebuild.

Ours: `timeline rebuild` on the imported log (wall clock of the command). The peer: its store
filled with as many events over as many companies, then what its users do to rebuild a
projection: read the notification log into domain events and fold them per company
(bench/peer.py `rebuild_rate`), in this process. Both on CPU 0 when pinned. Target: ours
>= 2 x the peer's.
"""

from __future__ import annotations

from bench import peer
from bench.harness import Check, Context, Figure
from bench.machine import SERVER_CPU, BenchError, on_cpu, watched
from bench.workloads.imports import imported


def run(context: Context) -> list[Figure]:
    done = imported(context)
    sizes = context.sizes
    with watched([]) as cpu:
        seconds = context.command(["timeline.cli", "rebuild", "--db", done.url])
    ours = done.log.events / seconds
    with context.peer_store("rebuild") as (url, schema):
        peer.load(url, schema, done.log.events, sizes.companies)
        with on_cpu(SERVER_CPU), watched([]) as peer_cpu:
            read, rate = peer.rebuild_rate(url, schema)
    if read != done.log.events:
        raise BenchError(f"the peer's rebuild read {read} events, not {done.log.events}")
    return [
        Figure(
            "6 rebuild of the log",
            "events/s",
            ours,
            peer=rate,
            checks=[Check("ours/peer", ours / rate, ">=", 2.0)],
            log=f"{done.log.events:,} (peer {read:,})",
            disturbed=int(cpu[0].disturbed) + int(peer_cpu[0].disturbed),
            runs=1,
            note=f"ours {seconds:.1f} s, start included",
        )
    ]
