"""The temporal index (projections/temporal/): the span keys that group facts by the length of
their range (spans), the versions of an event's effective form and a company's summary
(versions), and the projection that writes them (index): what it writes group by group is
what a rebuild writes from the whole log, on each backend."""

from __future__ import annotations

import random
from dataclasses import astuple, replace
from datetime import date
from typing import Any

import orjson

from events.backends import open_store
from events.canonical import canonical
from events.dates import END, FuzzyDate, ordinal
from events.entries import LogEntry
from events.store import EventStore
from projections.fold import Fact
from projections.rebuild import projections, rebuild
from projections.temporal.reads import _lower_bound
from projections.temporal.spans import FROM_FIRST_DAY, MONTHS, earliest, span_key
from projections.temporal.tables import item_text
from projections.temporal.versions import CompanyTally, FactVersion, summarize
from tests.databases import Database
from tests.factories import batch, event_in, history, new
from tests.projections.raw_logs import raw_log

# spans


async def test_the_span_keys_the_database_writes_are_the_codes(database: Database) -> None:
    rng = random.Random(4)
    await raw_log(database, rng, 400)
    store = await open_store(database.url, projections=projections())
    try:
        assert await rebuild(store, projections()) == 400
        rows = await store.query("SELECT lo, hi, span FROM facts ORDER BY position")
        assert len(rows) == 400
        assert [span for _, _, span in rows] == [span_key(lo, hi) for lo, hi, _ in rows]
        # Every fact in effect on a day begins after the earliest day of its key.
        for lo, hi, span in rows:
            for day in (date.fromisoformat(lo), date.fromordinal(ordinal(hi) - 1)):
                first = earliest(span, day)
                assert first is None or first.isoformat() < lo
    finally:
        await store.close()


async def test_a_scan_of_the_first_days_facts_begins_at_the_first_in_effect(
    database: Database,
) -> None:
    """The facts beginning on the calendar's first day ([..F]) are ordered by their ends: the
    scan of their key from a day passes over none that ended before it, and misses none."""
    rng = random.Random(9)
    await raw_log(database, rng, 400)
    store = await open_store(database.url, projections=projections())
    try:
        await rebuild(store, projections())
        rows = await store.query(
            "SELECT lo, hi, position FROM facts WHERE span = ? ORDER BY lo, hi, position",
            (FROM_FIRST_DAY,),
        )
        assert len(rows) > 20 and all(lo == "0001-01-01" for lo, _, _ in rows)
        for day in [date(1, 1, 1), date(2019, 6, 1), date(2022, 1, 1), date.max]:
            bound = _lower_bound(day, FROM_FIRST_DAY, None)
            passed = [hi for lo, hi, position in rows if (lo, hi, position) <= bound]
            scanned = [hi for lo, hi, position in rows if (lo, hi, position) > bound]
            assert all(hi <= day.isoformat() for hi in passed), day  # over before the day
            assert all(hi > day.isoformat() for hi in scanned), day  # in effect on it
    finally:
        await store.close()


def test_span_keys_at_the_bounds_of_their_classes() -> None:
    assert span_key("2023-05-17", "2023-05-18") == 0
    assert span_key("2023-05-17", "2023-05-19") == 1
    assert span_key("2023-05-16", "2023-05-19") == 2  # a widened day
    assert span_key("2023-05-16", "2023-05-20") == 2
    assert span_key("2023-05-16", "2023-05-21") == 3
    assert span_key("2023-05-01", "2023-06-01") == MONTHS + 1  # a month
    assert span_key("2023-04-01", "2023-07-01") == MONTHS + 3  # a widened month, a quarter
    assert span_key("2022-01-01", "2025-01-01") == MONTHS + 36  # a widened year
    assert span_key("2023-05-01", "2023-05-31") == 5  # 30 days, not from a first to a first
    assert span_key("0001-01-02", "9999-12-31") == 22
    assert span_key("0001-01-02", END) == 22  # all but the first day of the calendar
    assert span_key("0001-02-01", "9999-12-01") == 300 + 17
    assert span_key("0001-02-01", END) == 300 + 17
    # Every range beginning on the calendar's first day, whatever its length.
    for hi in ("0001-01-02", "0001-02-01", "2023-06-01", "2023-06-17", "9999-12-31", END):
        assert span_key("0001-01-01", hi) == FROM_FIRST_DAY, hi
    assert earliest(FROM_FIRST_DAY, date(2023, 1, 1)) is None  # they are bounded by their ends
    assert span_key("9999-12-01", END) == MONTHS + 1  # the calendar's last month
    assert span_key("9999-12-31", END) == 0  # its last day
    assert earliest(MONTHS + 12, date(2023, 1, 1)) == date(2022, 1, 1)
    assert earliest(MONTHS + 12, date(2023, 1, 31)) == date(2022, 1, 1)
    assert earliest(0, date(2023, 1, 1)) == date(2022, 12, 31)
    assert earliest(22, date(2023, 1, 1)) is None
    assert earliest(300 + 17, date(2023, 1, 1)) is None


# versions

RECORDED = "2026-01-01T00:00:00.000000Z"


def _entry(position: int, **fields: Any) -> LogEntry:
    """An event (see tests.factories.event_in) as the log entry at `position`."""
    return new(**fields).recorded_as(position, position, RECORDED)


def _first_version(entry: LogEntry) -> FactVersion:
    """An event's first version, as the index reads it back (its own occurred and data)."""
    return FactVersion(
        entry.id,
        entry.company,
        entry.type,
        entry.position,
        entry.lo,
        entry.hi,
        entry.occurred_json,
        entry.data_json,
        entry.confidence,
        0,
        entry.position,
    )


LAUNCH = _entry(1, company="baidu", occurred="2023-03-16", data={"model": "ERNIE Bot"})


def _amendment(position: int, type: str, **data: Any) -> LogEntry:
    return _entry(position, company="baidu", type=type, data={"target": LAUNCH.id, **data})


def test_a_retraction_and_a_reinstatement_open_versions_that_differ_in_that_alone() -> None:
    first = _first_version(LAUNCH)
    retracted = first.amended_by(_amendment(2, "event.retracted", reason="denied"))
    assert retracted == replace(first, retracted=1, sys_from=2)
    reinstated = retracted.amended_by(_amendment(3, "event.reinstated"))
    assert reinstated == replace(first, sys_from=3)
    # The version amended is left as it was: closing it is the index's to do.
    assert (first.retracted, first.sys_from, first.sys_to) == (0, 1, None)
    # A retraction of a retracted version, a reinstatement of a live one: no change but sys_from.
    again = retracted.amended_by(_amendment(4, "event.retracted", reason="still"))
    assert again == replace(retracted, sys_from=4)
    assert first.amended_by(_amendment(5, "event.reinstated")) == replace(first, sys_from=5)


def test_a_correction_changes_what_it_names_and_nothing_else() -> None:
    first = _first_version(LAUNCH)
    moved = FuzzyDate.parse("2023-03~")
    by_date = first.amended_by(_amendment(2, "event.corrected", occurred="2023-03~"))
    assert by_date == replace(
        first,
        lo="2023-02-01",
        hi="2023-05-01",
        occurred=canonical(moved.as_json()),
        sys_from=2,
    )
    data = {"model": "ERNIE 4.0", "stage": "public"}
    by_data = first.amended_by(_amendment(3, "event.corrected", data=data))
    assert by_data == replace(first, data='{"model":"ERNIE 4.0","stage":"public"}', sys_from=3)
    by_confidence = first.amended_by(_amendment(4, "event.corrected", confidence="rumored"))
    assert by_confidence == replace(first, confidence="rumored", sys_from=4)
    everything = _amendment(
        5, "event.corrected", occurred="2023-03~", data=data, confidence="rumored"
    )
    assert first.amended_by(everything) == replace(
        by_date, data=by_data.data, confidence="rumored", sys_from=5
    )
    # A correction of a retracted version keeps it retracted; a closed one opens a new one.
    retracted = replace(first, retracted=1, sys_from=6, sys_to=9)
    corrected = retracted.amended_by(_amendment(9, "event.corrected", confidence="rumored"))
    assert corrected == replace(retracted, confidence="rumored", sys_from=9, sys_to=None)


def test_a_version_s_row_leaves_a_first_version_s_occurred_and_data_to_the_log() -> None:
    first = _first_version(LAUNCH)
    corrected = first.amended_by(_amendment(2, "event.corrected", occurred="2023-Q1"))
    for version, stored in [(first, (None, None)), (corrected, (corrected.occurred, first.data))]:
        row = version.values()
        (company, type_, position, lo, hi, occurred, data, confidence, retracted, sys_from,
         sys_to, span, event_id, item) = row  # fmt: skip
        assert (occurred, data) == stored
        assert (company, type_, position, event_id) == ("baidu", "model.launched", 1, LAUNCH.id)
        assert (lo, hi, confidence, retracted) == (version.lo, version.hi, "reported", 0)
        assert (sys_from, sys_to, span) == (version.sys_from, None, span_key(lo, hi))
        # The list item the company state shows: fold's, of this version.
        fact = Fact(
            id=LAUNCH.id,
            type=type_,
            company=company,
            occurred=orjson.loads(version.occurred),
            data=orjson.loads(version.data),
            confidence=confidence,
            position=position,
        )
        assert item == item_text(version.occurred, confidence, version.data)
        assert orjson.loads(f'{{"id":"{LAUNCH.id}",{item}') == fact.item()


def _version(
    position: int, lo: str, hi: str, type: str = "model.launched", name: str | None = None
) -> FactVersion:
    data = canonical({"name": name} if name is not None else {"model": f"M{position}"})
    occurred = canonical({"value": lo, "precision": "day", "lo": lo, "hi": hi})
    return FactVersion(
        f"id-{position}", "baidu", type, position, lo, hi, occurred, data, "reported", 0, position
    )


EARLIEST = _version(6, "1999-01-01", "2000-01-01", "company.registered", "Baidu Online")
NAMED = _version(5, "2005-01-01", "2006-01-01", "company.registered", "Baidu, Inc.")
MIDDLE = _version(2, "2023-01-01", "2023-02-01")
LATER = _version(1, "2023-03-01", "2023-04-01")
LATEST = _version(3, "2023-03-01", "2023-04-01")  # LATER's range, a later position
FACTS = [LATER, MIDDLE, LATEST, NAMED, EARLIEST]


def _summary(facts: list[FactVersion] = FACTS) -> CompanyTally:
    summary = CompanyTally("baidu")
    for fact in facts:
        summary.add(fact)
    return summary


def _key(version: FactVersion) -> tuple[str, str, int, str]:
    return (version.lo, version.hi, version.position, version.occurred)


def test_a_summary_keeps_the_first_and_last_facts_and_the_last_registered_name() -> None:
    summary = _summary()
    assert summary.events == 5
    assert summary.first == _key(EARLIEST)
    assert summary.last == _key(LATEST)
    assert (summary.name, summary.name_key) == ("Baidu, Inc.", _key(NAMED)[:3])
    # Valid-time order, whatever the order the facts arrive in.
    assert _summary(list(reversed(FACTS))) == summary
    assert CompanyTally.from_row(summary.values()) == summary
    assert CompanyTally.from_row(CompanyTally("baidu").values()) == CompanyTally("baidu")


def test_a_summary_cannot_follow_the_first_last_or_name_fact_leaving() -> None:
    for holder in (EARLIEST, LATEST, NAMED):
        summary = _summary()
        assert summary.remove(holder) is False, holder  # only a recount can replace it
        assert summary.events == 4
        retracted = replace(holder, retracted=1, sys_from=9)
        assert _summary().change(holder, retracted) is False, holder
        corrected = replace(holder, lo="2023-02-01", hi="2023-03-01", sys_from=9)
        assert _summary().change(holder, corrected) is False, holder
    summary = _summary()
    assert summary.remove(MIDDLE) is True
    assert summary == replace(_summary(), events=4)


def test_a_summary_follows_any_other_fact_s_transitions() -> None:
    summary = _summary()
    # A correction moving a fact past the last one: it is the last now.
    moved = replace(MIDDLE, lo="2024-01-01", hi="2024-02-01", sys_from=7)
    assert summary.change(MIDDLE, moved) is True
    assert (summary.events, summary.last) == (5, _key(moved))
    # A retraction, then its reinstatement.
    retracted = replace(LATER, retracted=1, sys_from=8)
    assert summary.change(LATER, retracted) is True
    assert summary.events == 4
    assert summary.change(retracted, replace(LATER, sys_from=9)) is True
    assert summary.events == 5
    # A correction of a retracted fact changes nothing; a new fact (no version before) enters.
    assert summary.change(retracted, replace(retracted, confidence="rumored")) is True
    assert summary.events == 5
    renamed = _version(10, "2010-01-01", "2011-01-01", "company.registered", "Baidu Group")
    assert summary.change(None, renamed) is True
    assert (summary.events, summary.name) == (6, "Baidu Group")
    assert summary.first == _key(EARLIEST)


def test_summarize_counts_the_live_facts_of_each_company() -> None:
    tencent = replace(_version(20, "2023-05-01", "2023-06-01"), company="tencent")
    rows = [astuple(version) for version in [*FACTS, tencent]]
    summaries = summarize(["alibaba", "baidu", "tencent"], rows)
    assert list(summaries) == ["alibaba", "baidu", "tencent"]
    assert summaries["alibaba"] == CompanyTally("alibaba")  # known, with no live fact
    assert summaries["baidu"] == _summary()
    assert summaries["tencent"] == CompanyTally(
        "tencent", 1, _key(tencent), _key(tencent), None, None
    )


# index


def _fuzzy(rng: random.Random) -> str:
    year = rng.randint(1998, 2025)
    mark = rng.choice(["", "", "~", "?"])
    form = rng.randrange(4)
    if form == 0:
        return f"{year}{mark}"
    if form == 1:
        return f"{year}-Q{rng.randint(1, 4)}{mark}"
    if form == 2:
        return f"{year}-{rng.randint(1, 12):02d}{mark}"
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}{mark}"


def _payload(kind: str, n: int) -> dict[str, Any]:
    return {
        "company.registered": {"name": f"Name {n}", "aliases": [f"alias {n}"]},
        "model.launched": {"model": f"Model {n % 5}", "stage": "public"},
        "team.formed": {"name": f"Team {n}", "headcount": n},
        "ceo.letter": {"author": f"CEO {n}", "summary": f"letter {n}"},
    }[kind]


async def _amended_log(store: EventStore, rng: random.Random, groups: int) -> None:
    """Groups of new events and amendments of every kind, of events of earlier groups or of
    earlier in the same batch, several of one event in one batch among them."""
    companies = ["baidu", "tencent", "alibaba", "didi"]
    originals: dict[str, list[tuple[str, str]]] = {company: [] for company in companies}
    n = 0
    for _ in range(groups):
        bodies = []
        for _ in range(rng.randint(1, 8)):
            n += 1
            company = rng.choice(companies)
            targets = originals[company]
            if targets and rng.random() < 0.5:
                target, kind = rng.choice(targets)
                amendment = rng.choice(["event.corrected", "event.retracted", "event.reinstated"])
                data: dict[str, Any] = {"target": target}
                if amendment == "event.corrected":
                    fields = rng.choice(
                        [["occurred"], ["data"], ["confidence"], ["occurred", "data", "confidence"]]
                    )
                    if "occurred" in fields:
                        data["occurred"] = _fuzzy(rng)
                    if "data" in fields:
                        data["data"] = _payload(kind, n)
                    if "confidence" in fields:
                        data["confidence"] = rng.choice(["confirmed", "reported", "rumored"])
                else:
                    data["reason"] = f"reason {n}"
                bodies.append(event_in(company=company, type=amendment, data=data))
                continue
            kind = rng.choice(["company.registered", "model.launched", "team.formed", "ceo.letter"])
            body = event_in(
                company=company, type=kind, occurred=_fuzzy(rng), data=_payload(kind, n)
            )
            targets.append((body["id"], kind))
            bodies.append(body)
        await store.append(batch(*bodies))


async def _rows(store: EventStore) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    facts = await store.query("SELECT * FROM facts ORDER BY position, sys_from")
    companies = await store.query("SELECT * FROM companies ORDER BY company")
    return facts, companies


async def test_what_appends_write_group_by_group_is_what_a_rebuild_writes(
    database: Database,
) -> None:
    store = await open_store(database.url, projections=projections())
    try:
        log = await history(store)
        # An event amended four times in its own batch, then its company's first, last and
        # named facts retracted (the summary is recounted), then one reinstated.
        launch = event_in(company="kuaishou", occurred="2023-07", data={"model": "Kwai"})
        named = event_in(
            company="kuaishou", type="company.registered", occurred="2011", data={"name": "K"}
        )
        late = event_in(company="kuaishou", occurred="2024-Q1", data={"model": "Kling"})

        def amend(kind: str, target: dict[str, Any], **data: Any) -> dict[str, Any]:
            return event_in(
                company="kuaishou", type=kind, data={"target": target["id"], "reason": "r", **data}
            )

        await store.append(
            batch(
                launch,
                named,
                late,
                event_in(
                    company="kuaishou",
                    type="event.corrected",
                    data={"target": launch["id"], "occurred": "2023-08"},
                ),
                amend("event.retracted", launch),
                amend("event.reinstated", launch),
                event_in(
                    company="kuaishou",
                    type="event.corrected",
                    data={"target": named["id"], "data": {"name": "Kuaishou"}},
                ),
            )
        )
        await store.append(
            batch(
                amend("event.retracted", named),
                amend("event.retracted", late),
                amend("event.retracted", launch),
            )
        )
        await store.append(batch(amend("event.reinstated", named)))
        await _amended_log(store, random.Random(5), groups=60)
        kept = await _rows(store)
        facts, companies = kept
        # Not a vacuous comparison: versions were closed, some are retracted now.
        assert any(row[10] is not None for row in facts)  # sys_to
        assert any(row[8] == 1 and row[10] is None for row in facts)  # retracted, open
        assert len(companies) == 5 and len(facts) > len(log)
        head = (await store.head()).position
        assert await rebuild(store, projections()) == head
        assert await _rows(store) == kept
    finally:
        await store.close()
