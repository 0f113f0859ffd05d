"""TemporalIndex, the projection that writes `facts` and `companies`: an appended group's
first versions and amendments' new versions, then the summaries of the companies it touched,
in the group's own transaction; or all of it from the log, in bulk, on a rebuild."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from events.entries import LogEntry
from events.store import Progress, Transaction, marks
from events.types import AMENDMENTS
from projections.temporal.tables import (
    AMENDMENT_TYPES,
    FACT_FIELDS,
    FACT_SELECT,
    INDEXES,
    SCHEMA,
    SUMMARY_COLUMNS,
    SUMMARY_FIELDS,
    first_versions,
)
from projections.temporal.versions import CompanyTally, FactVersion, summarize

# Company summaries a TemporalIndex keeps in memory between groups, at most.
MAX_CACHED = 100_000
# An event's first version, for the entries of one group: positions [?, ?].
_FIRST_VERSIONS = first_versions("position BETWEEN ? AND ?")
_CLOSE_FACT = "UPDATE facts SET sys_to = ? WHERE position = ? AND sys_to IS NULL"
_COMPANIES = "SELECT DISTINCT company FROM events"
_LIVE = f"SELECT {FACT_SELECT} WHERE f.sys_to IS NULL AND f.retracted = 0"

Transition = tuple[FactVersion | None, FactVersion]


class TemporalIndex:
    """The Projection keeping `facts` (versions of effective events) and `companies`."""

    def __init__(self) -> None:
        self._summaries: dict[str, CompanyTally] = {}
        self._summaries_at: int | None = None  # the log position they are the summaries at

    def tables(self) -> Sequence[str]:
        return ("facts", "companies")

    def rolled_back(self) -> None:
        # The summaries may hold facts of the group that failed (at its COMMIT, say), and
        # another writer may since have brought the log to the position they claim.
        self._summaries_at = None

    def schema(self) -> Sequence[str]:
        return SCHEMA

    def indexes(self) -> Sequence[str]:
        return INDEXES

    def drop(self) -> Sequence[str]:
        return ("DROP TABLE IF EXISTS facts", "DROP TABLE IF EXISTS companies")

    def apply(self, tx: Transaction, events: Sequence[LogEntry]) -> None:
        # The entries are in the log already (same transaction, consecutive positions): their
        # first versions are copied by the database itself, with nothing built or bound in
        # Python.
        first, last = events[0].position, events[-1].position
        tx.execute(_FIRST_VERSIONS, (first, last, *AMENDMENT_TYPES, last - first + 1))
        amendments = [event for event in events if event.type in AMENDMENTS]
        transitions: list[Transition] = []
        if amendments:
            # Every target's open version is in the table now, those of this group included.
            stored = _open_versions(tx, {e.data["target"] for e in amendments})
            closes: list[tuple[int, int]] = []
            transitions = _amend(amendments, dict(stored), stored, closes)
            _write_versions(tx, closes, [after for _, after in transitions])
        self._summarize(tx, events, transitions)

    def rebuild(self, tx: Transaction, progress: Progress | None = None) -> None:
        """Refill from the log in bulk: every event's first version in one INSERT ... SELECT,
        then the amendments' versions in log order, then the indexes, then the summaries in
        one pass. Gives the same rows as the appends built one group at a time."""
        self._summaries_at = None
        total = tx.fetch("SELECT COUNT(*) FROM events")[0][0]
        tx.execute(first_versions("position > 0"), (*AMENDMENT_TYPES, total))
        if progress is not None:
            progress(total // 2, total)
        # One page of amendments at a time, folded in memory; their versions written at the end.
        current: dict[str, FactVersion] = {}
        stored: dict[str, FactVersion] = {}
        closes: list[tuple[int, int]] = []
        opened: list[FactVersion] = []
        after = 0
        while page := tx.events(after, 10_000, types=AMENDMENT_TYPES):
            after = page[-1].position
            found = _open_versions(tx, {e.data["target"] for e in page} - stored.keys())
            stored.update(found)
            current.update(found)
            opened += [version for _, version in _amend(page, current, stored, closes)]
        _write_versions(tx, closes, opened)
        for statement in INDEXES:
            tx.execute(statement)
        if progress is not None:
            progress(total * 9 // 10, total)
        companies = [company for (company,) in tx.fetch(_COMPANIES)]
        summaries = summarize(companies, tx.fetch(_LIVE))
        tx.insert(
            "companies",
            SUMMARY_FIELDS,
            [summary.values() for summary in summaries.values()],
            upsert_on="company",
        )
        if progress is not None:
            progress(total, total)

    def _summarize(
        self, tx: Transaction, events: Sequence[LogEntry], transitions: Sequence[Transition]
    ) -> None:
        """Fold the group's new facts, then its amendments' transitions, into the summaries."""
        # Summaries stay in memory from one group to the next while this projection wrote the
        # group just before: a failed transaction, a rebuild or another process's appends
        # leave the log at another position, and the table is read again.
        if self._summaries_at != events[0].position - 1 or len(self._summaries) > MAX_CACHED:
            self._summaries = {}
        self._summaries_at = None  # until this group's summaries are complete
        summaries = self._summaries
        touched = sorted({event.company for event in events})
        missing = [company for company in touched if company not in summaries]
        if missing:
            stored = tx.fetch(
                f"SELECT {SUMMARY_COLUMNS} FROM companies WHERE company IN ({marks(missing)})",
                missing,
            )
            summaries.update((row[0], CompanyTally.from_row(row)) for row in stored)
            for company in missing:
                if company not in summaries:
                    summaries[company] = CompanyTally(company)
        for event in events:
            if event.type not in AMENDMENTS:
                summaries[event.company].add_fact(
                    event.lo,
                    event.hi,
                    event.position,
                    event.occurred_json,
                    event.type,
                    event.data_json,
                )
        recount: set[str] = set()
        for before, after in transitions:
            if after.company not in recount and not summaries[after.company].change(before, after):
                recount.add(after.company)
        chunks = sorted(recount)
        for start in range(0, len(chunks), 500):
            chunk = chunks[start : start + 500]
            live = tx.fetch(f"{_LIVE} AND f.company IN ({marks(chunk)})", chunk)
            summaries.update(summarize(chunk, live))
        tx.insert(
            "companies",
            SUMMARY_FIELDS,
            [summaries[company].values() for company in touched],
            upsert_on="company",
        )
        self._summaries_at = events[-1].position


def _open_versions(tx: Transaction, ids: Iterable[str]) -> dict[str, FactVersion]:
    """The open (latest) version of each event of `ids`, as the table holds it."""
    wanted = sorted(ids)
    if not wanted:
        return {}
    found = tx.fetch(
        f"SELECT {FACT_SELECT} WHERE f.sys_to IS NULL AND e.id IN ({marks(wanted)})", wanted
    )
    return {row[0]: FactVersion(*row) for row in found}


def _amend(
    amendments: Sequence[LogEntry],
    current: dict[str, FactVersion],
    stored: dict[str, FactVersion],
    closes: list[tuple[int, int]],
) -> list[Transition]:
    """The versions that `amendments` open, in log order, from the open versions `current`
    (updated as they change): a version read from the table (`stored`) is to be closed there
    (added to `closes`); one opened by an earlier amendment is closed in memory, to be
    inserted closed."""
    transitions: list[Transition] = []
    for amendment in amendments:
        target = amendment.data["target"]
        before = current[target]
        if stored.get(target) is before:
            closes.append((amendment.position, before.position))
        else:
            before.sys_to = amendment.position
        after = before.amended_by(amendment)
        transitions.append((before, after))
        current[target] = after
    return transitions


def _write_versions(
    tx: Transaction, closes: Sequence[tuple[int, int]], opened: Sequence[FactVersion]
) -> None:
    """Close the stored versions `closes` names, then insert the versions `opened`."""
    tx.executemany(_CLOSE_FACT, closes)
    tx.insert("facts", FACT_FIELDS, [version.values() for version in opened])
