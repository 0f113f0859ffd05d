"""Reading the temporal index (projections/state.py): known_at resolved to a position (a time:
the last position recorded by then, found by a binary search), and company state, timeline,
company list and event detail, each equal to the oracle's (projections/reference.py), on each
backend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest

from events.entries import LogEntry
from events.errors import PositionConflict
from events.store import EventStore
from projections import reference, state
from projections.state import LogPoint, resolve
from tests.factories import batch, event_in, history


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
async def log(store: EventStore) -> list[LogEntry]:
    """tests.factories.history (amendments of each kind), then the report retracted."""
    entries = await history(store)
    (report,) = [e for e in entries if e.type == "financial.report"]
    retraction = event_in(
        company="tencent", type="event.retracted", data={"target": report.id, "reason": "x"}
    )
    await store.append(batch(retraction))
    return await store.read(limit=1000)


def _known(log: list[LogEntry], position: int) -> LogPoint:
    return LogPoint(position, log[position - 1].recorded if position else None)


async def test_a_time_resolves_to_the_last_position_recorded_by_then(store: EventStore) -> None:
    assert await resolve(store, datetime(2001, 1, 1, tzinfo=UTC)) == LogPoint(0, None)
    # Groups of 1 to 7 entries: the entries of one group share their `recorded` time.
    for size in (3, 1, 7, 2, 5, 1, 4):
        await store.append(batch(*(event_in(company="baidu") for _ in range(size))))
    log = await store.read(limit=1000)
    for entry in log:
        last = max(e.position for e in log if e.recorded <= entry.recorded)
        assert await resolve(store, _time(entry.recorded)) == LogPoint(last, entry.recorded)
        just_before = _time(entry.recorded) - timedelta(microseconds=1)
        earlier = [e for e in log if e.recorded < entry.recorded]
        expected = LogPoint(earlier[-1].position, earlier[-1].recorded) if earlier else None
        assert await resolve(store, just_before) == (expected or LogPoint(0, None))
    head = await resolve(store, datetime.now(UTC))
    assert head == LogPoint(log[-1].position, log[-1].recorded)


async def test_a_position_none_and_zero_resolve_and_what_lies_past_the_head_conflicts(
    store: EventStore,
) -> None:
    assert await resolve(store, None) == LogPoint(0, None)  # the head of an empty log
    assert await resolve(store, 0) == LogPoint(0, None)
    with pytest.raises(PositionConflict) as caught:
        await resolve(store, 1)
    assert caught.value.extra == {"head": 0}
    await store.append(batch(event_in(company="baidu"), event_in(company="tencent")))
    await store.append(batch(event_in(company="baidu")))
    log = await store.read()
    assert await resolve(store, None) == _known(log, 3)
    assert await resolve(store, 0) == LogPoint(0, None)  # before the first entry, not the head
    for position in (1, 2, 3):
        assert await resolve(store, position) == _known(log, position)
    for past in (4, 2**63 - 1, 2**64):
        with pytest.raises(PositionConflict) as caught:
            await resolve(store, past)
        assert caught.value.extra == {"head": 3}
    # A time yet to come: nothing is known there yet, however close.
    for ahead in (timedelta(minutes=1), timedelta(days=365 * 1000)):
        with pytest.raises(PositionConflict) as caught:
            await resolve(store, datetime.now(UTC) + ahead)
        assert caught.value.extra == {"head": 3}
    # The first moment of the calendar (what a time before it is taken for): before any entry.
    assert await resolve(store, datetime.min.replace(tzinfo=UTC)) == LogPoint(0, None)


# Days around the log's ranges: on and either side of their first and last days, and the
# ends of the calendar.
AS_OF = [
    date.min,
    date(1999, 12, 31),
    date(2000, 1, 1),
    date(2000, 12, 31),  # the last day of the registration's year
    date(2023, 3, 15),
    date(2023, 3, 16),  # the launch's day, before its correction to the month
    date(2023, 3, 31),  # the last day of that month
    date(2023, 4, 1),
    date(2023, 4, 30),
    date(2023, 5, 31),
    date(2023, 11, 15),
    date(2024, 1, 1),
    date.max,
]


async def test_company_state_is_the_fold_of_the_oracle(
    store: EventStore, log: list[LogEntry]
) -> None:
    for company in ("baidu", "tencent", "alibaba", "nobody"):
        for position in range(len(log) + 1):
            known = _known(log, position)
            for as_of in AS_OF:
                for possible in (False, True):
                    found = await state.company_state(
                        store, company, as_of, known, include_possible=possible
                    )
                    expected = reference.company_state(
                        log, company, as_of, position, include_possible=possible
                    )
                    where = (company, position, as_of, possible)
                    if expected is None:
                        assert found is None, where
                        continue
                    assert found is not None, where
                    assert orjson.loads(found) == {
                        **expected,
                        "as_of": as_of.isoformat(),
                        "known_at": known.as_json(),
                    }, where


async def test_a_company_state_at_the_edges_of_its_ranges(
    store: EventStore, log: list[LogEntry]
) -> None:
    async def baidu(as_of: date, position: int = len(log), possible: bool = False) -> object:
        text = await state.company_state(
            store, "baidu", as_of, _known(log, position), include_possible=possible
        )
        assert text is not None
        return orjson.loads(text)

    launch = log[0]
    # Corrected to 2023-03 (at position 4): possible within March, definite on its last day.
    mid = await baidu(date(2023, 3, 15))
    assert (mid["models"], [p["id"] for p in mid["possible"]]) == ([], [launch.id])
    folded = await baidu(date(2023, 3, 15), possible=True)
    assert [m["id"] for m in folded["models"]] == [launch.id]
    end = await baidu(date(2023, 3, 31))
    assert ([m["id"] for m in end["models"]], end["possible"]) == ([launch.id], [])
    # Known at 3, before the correction: a day, 2023-03-16, definite by its own end.
    assert (await baidu(date(2023, 3, 15), 3))["possible"] == []
    assert [m["id"] for m in (await baidu(date(2023, 3, 16), 3))["models"]] == [launch.id]
    # Known at 6 it was retracted; the name is the registration's from the end of 2000 on.
    assert (await baidu(date.max, 6))["models"] == []
    assert (await baidu(date(2000, 12, 30)))["name"] == "baidu"
    assert (await baidu(date(2000, 12, 31)))["name"] == "Baidu"
    assert (await baidu(date.max))["version"] == 5  # baidu's entries: 1, 3, 4, 6 and 7


async def test_timeline_statuses_and_effective_forms_are_the_oracle_s(
    store: EventStore, log: list[LogEntry]
) -> None:
    for company in ("baidu", "tencent", "alibaba", "nobody"):
        for position in range(len(log) + 1):
            facts = reference.effective(log, position)
            for as_of in AS_OF:
                found = await state.timeline(store, company, as_of, _known(log, position))
                expected = reference.timeline(log, company, as_of, position)
                where = (company, position, as_of)
                if expected is None:
                    assert found is None, where
                    continue
                assert found is not None, where
                assert [(event.id, status) for event, status in found] == expected, where
                for event, _ in found:
                    fact = facts[event.id]
                    assert fact is not None
                    effective = (event.occurred, event.data, event.confidence)
                    assert effective == (fact.occurred, fact.data, fact.confidence), where
    # By name: the corrected launch is possible within its month, definite on its last day.
    march = await state.timeline(store, "baidu", date(2023, 3, 15), _known(log, len(log)))
    assert march is not None
    assert [(e.type, status) for e, status in march] == [
        ("company.registered", "definite"),
        ("model.launched", "possible"),
    ]
    end = await state.timeline(store, "baidu", date(2023, 3, 31), _known(log, len(log)))
    assert end is not None
    (_, (launch, status)) = end
    assert status == "definite"
    assert launch.occurred["value"] == "2023-03"  # its effective form, not the log's


async def test_companies_at_the_head_and_at_older_positions(
    store: EventStore, log: list[LogEntry]
) -> None:
    head = _known(log, len(log))
    known, listed = await state.companies(store, None)  # the summaries kept at the head
    assert (known, listed) == (head, reference.companies(log, len(log)))
    assert await state.companies(store, len(log)) == (head, listed)
    for position in range(len(log)):  # recounted from the facts in effect then
        assert await state.companies(store, position) == (
            _known(log, position),
            reference.companies(log, position),
        ), position
    # At the head the report is retracted; known at 5 it was in effect, corrected.
    tencent = {c["company"]: c for c in listed}["tencent"]
    assert (tencent["events"], tencent["first"], tencent["last"]) == (0, None, None)
    older = {c["company"]: c for c in (await state.companies(store, 5))[1]}
    assert older["tencent"]["events"] == 1
    assert older["baidu"]["name"] == "Baidu"
    # A time resolves first: before the log began, nothing was known.
    assert await state.companies(store, datetime(2001, 1, 1, tzinfo=UTC)) == (
        LogPoint(0, None),
        [],
    )
    with pytest.raises(PositionConflict):
        await state.companies(store, len(log) + 1)


async def test_event_detail_of_a_retracted_a_reinstated_and_an_amendment(
    store: EventStore, log: list[LogEntry]
) -> None:
    def amendments_of(event: LogEntry) -> list[LogEntry]:
        return [e for e in log if e.target == event.id]

    (report,) = [e for e in log if e.type == "financial.report"]
    effective, amendments = await state.event_detail(store, report)
    assert effective is None  # retracted at the head
    assert amendments == amendments_of(report)
    assert [a.type for a in amendments] == ["event.corrected", "event.retracted"]

    launch = log[0]
    effective, amendments = await state.event_detail(store, launch)
    assert [a.type for a in amendments] == [
        "event.corrected",
        "event.retracted",
        "event.reinstated",
    ]
    assert amendments == amendments_of(launch)
    assert effective is not None  # reinstated: the correction holds again
    assert effective.occurred["value"] == "2023-03"
    assert (effective.id, effective.position, effective.hash) == (
        launch.id,
        launch.position,
        launch.hash,
    )
    assert effective.data == launch.data

    (registered,) = [e for e in log if e.type == "company.registered"]
    assert await state.event_detail(store, registered) == (registered, [])
    for amendment in amendments:
        assert await state.event_detail(store, amendment) == (None, [])
