"""Workload 4: `timeline import` of the benchmark's log into a fresh database.

The imported database is the log the reads and the rebuild workloads then use (made here on
first use, whichever of them runs first). Target: the import's rate (wall clock of the whole
command, interpreter start included) at least the HTTP batch rate of the same run (workload
3), as it skips HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.data import Log, write_log
from bench.harness import Check, Context, Figure


@dataclass(frozen=True)
class Imported:
    url: str
    log: Log
    seconds: float


def imported(context: Context) -> Imported:
    """The benchmark's log, imported once per harness run, kept until it ends."""
    if "imported" not in context.shared:
        sizes = context.sizes
        log = write_log(context.scratch / "log.ndjson", sizes.log, sizes.giant, sizes.companies)
        url = context.stack.enter_context(context.database("log"))
        seconds = context.command(["timeline.cli", "import", str(log.path), "--db", url])
        context.shared["imported"] = Imported(url, log, seconds)
    found: Imported = context.shared["imported"]
    return found


def run(context: Context) -> list[Figure]:
    done = imported(context)
    rate = done.log.events / done.seconds
    batch_rate = context.shared.get("batch_rate")
    checks = [Check("import/HTTP batches", rate / batch_rate, ">=", 1.0)] if batch_rate else []
    return [
        Figure(
            "4 timeline import",
            "events/s",
            rate,
            checks=checks,
            log=f"0-{done.log.events:,}",
            note=f"{done.seconds:.1f} s; HTTP batches {batch_rate:,.0f}/s" if batch_rate else "",
        )
    ]
