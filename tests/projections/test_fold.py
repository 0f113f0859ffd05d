"""The fold (projections/fold.py): a company's effective facts → its state as of a date, and
when a range of days is definite, possible, or not yet begun. Pure: no store, no server."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from events.dates import END
from projections.fold import STATE_LISTS, Fact, fold, range_status

AS_OF = date(2023, 5, 17)


def _day(day: date) -> str:
    return day.isoformat()


def fact(
    lo: str,
    hi: str,
    *,
    type: str = "model.launched",
    position: int = 1,
    data: dict[str, Any] | None = None,
    confidence: str = "reported",
) -> Fact:
    """A fact over the days [lo, hi); its id names its position."""
    occurred = {"value": lo, "precision": "day", "lo": lo, "hi": hi}
    return Fact(
        id=f"id-{position}",
        type=type,
        company="baidu",
        occurred=occurred,
        data={"model": f"M{position}"} if data is None else data,
        confidence=confidence,
        position=position,
    )


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        # Over by the end of as_of: ended the day before, or exactly at the end of as_of.
        (date(2023, 5, 1), AS_OF, "definite"),
        (AS_OF, AS_OF + timedelta(days=1), "definite"),  # the day itself
        (date(2023, 5, 1), AS_OF + timedelta(days=1), "definite"),  # a range ending with it
        # Begun (on as_of or before) but not over by its end: one day more is enough.
        (AS_OF, AS_OF + timedelta(days=2), "possible"),
        (date(2023, 5, 1), date(2023, 6, 1), "possible"),
        (date(1, 1, 1), date.max, "possible"),
        # Wholly after: beginning the next day, or later.
        (AS_OF + timedelta(days=1), AS_OF + timedelta(days=2), None),
        (date(2024, 1, 1), date(2025, 1, 1), None),
    ],
)
def test_range_status_at_the_edges_of_as_of(lo: date, hi: date, expected: str | None) -> None:
    assert range_status(_day(lo), _day(hi), AS_OF) == expected


def test_at_the_ends_of_the_calendar() -> None:
    # As of the last day of the calendar every range is over, the widest one included: END,
    # the bound after it, ends the ranges that hold that day.
    for lo, hi in [("0001-01-01", END), ("9999-12-01", END), ("9999-12-31", END)]:
        assert range_status(lo, hi, date.max) == "definite", (lo, hi)
    assert range_status("2023-05-01", "2023-06-01", date.max) == "definite"
    # As of the day before, the ones ending with that day are over; those holding the last
    # day only begun, or not yet.
    eve = date.max - timedelta(days=1)
    assert range_status("9999-12-01", _day(date.max), eve) == "definite"
    assert range_status("0001-01-01", _day(date.max), eve) == "definite"
    assert range_status("0001-01-01", END, eve) == "possible"
    assert range_status("9999-12-31", END, eve) is None
    assert range_status("0001-01-01", _day(date.max), date(9999, 12, 29)) == "possible"
    assert range_status(_day(eve), _day(date.max), date(9999, 12, 29)) is None
    # As of the first day: a range of that day alone is over by its end.
    assert range_status("0001-01-01", "0001-01-02", date.min) == "definite"
    assert range_status("0001-01-01", "0001-01-03", date.min) == "possible"
    assert range_status("0001-01-02", "0001-01-03", date.min) is None


def test_fact_order_and_item() -> None:
    registered = fact("2023-05-01", "2023-06-01", type="company.registered", position=9)
    assert registered.order() == ("2023-05-01", "2023-06-01", 9)
    # Valid-time order: by first day, then last day (a shorter range first), then position.
    facts = [
        fact("2023-05-01", "2023-06-01", position=3),
        fact("2023-05-01", "2023-05-02", position=7),
        fact("2023-04-01", "2023-07-01", position=8),
        fact("2023-05-01", "2023-06-01", position=2),
    ]
    ordered = sorted(facts, key=Fact.order)
    assert [f.position for f in ordered] == [8, 7, 2, 3]
    item = fact("2023-05-01", "2023-05-02", data={"model": "ERNIE", "stage": "public"}).item()
    assert item == {
        "id": "id-1",
        "occurred": {
            "value": "2023-05-01",
            "precision": "day",
            "lo": "2023-05-01",
            "hi": "2023-05-02",
        },
        "confidence": "reported",
        "model": "ERNIE",
        "stage": "public",
    }
    assert list(item)[:3] == ["id", "occurred", "confidence"]  # then the data's own fields


def test_the_fold_of_no_facts_is_the_company_alone() -> None:
    state = fold("baidu", [], AS_OF)
    assert state == {
        "company": "baidu",
        "name": "baidu",
        "aliases": [],
        **{listed: [] for listed in STATE_LISTS},
        "possible": [],
    }


def test_definite_facts_are_listed_possible_ones_set_apart_later_ones_left_out() -> None:
    day = _day(AS_OF)
    next_day = _day(AS_OF + timedelta(days=1))
    over = fact("2023-05-01", next_day, position=1)  # ends exactly at the end of as_of
    team = fact(day, next_day, type="team.formed", position=2, data={"name": "Lab"})
    begun = fact("2023-05-01", "2023-06-01", position=3)
    later = fact(next_day, "2023-05-19", position=4)
    facts = [over, team, begun, later]
    state = fold("baidu", facts, AS_OF)
    assert state["models"] == [over.item()]
    assert state["teams"] == [team.item()]
    assert state["possible"] == [{"id": "id-3", "type": "model.launched", **begun.item()}]
    assert all(state[listed] == [] for listed in STATE_LISTS if listed not in ("models", "teams"))
    # Folded in when asked for: in its list and still among the possible ones.
    folded = fold("baidu", facts, AS_OF, include_possible=True)
    assert folded["models"] == [over.item(), begun.item()]
    assert folded["possible"] == state["possible"]
    # As of date.max every fact is over, the one of the day after as_of too.
    assert fold("baidu", facts, date.max)["models"] == [over.item(), begun.item(), later.item()]
    # As of the day before the first one begins, nothing at all.
    assert fold("baidu", facts, date(2023, 4, 30)) == fold("baidu", [], AS_OF)


def test_each_listed_type_has_its_list_in_the_order_given() -> None:
    types = {
        "model.launched": "models",
        "team.formed": "teams",
        "filing.passed": "filings",
        "ceo.letter": "letters",
        "statement.made": "statements",
        "product.integrated": "integrations",
        "financial.report": "financials",
    }
    # Every list but executives, which appointments and departures make (test_executives_*).
    assert sorted(types.values()) == sorted(set(STATE_LISTS) - {"executives"})
    facts = [
        fact("2023-01-01", "2023-01-02", type=kind, position=n, data={"n": n})
        for n, kind in enumerate([*types, *types], start=1)
    ]
    state = fold("baidu", reversed(facts), AS_OF)  # given in another order: kept as given
    for kind, listed in types.items():
        ids = [f.id for f in reversed(facts) if f.type == kind]
        assert [item["id"] for item in state[listed]] == ids, listed


def test_the_name_comes_from_the_last_definite_registration_only() -> None:
    def registered(lo: str, hi: str, position: int, name: str, **more: Any) -> Fact:
        data = {"name": name, **more}
        return fact(lo, hi, type="company.registered", position=position, data=data)

    first = registered("2000-01-01", "2001-01-01", 1, "Baidu Online", aliases=["百度"])
    renamed = registered("2005-01-01", "2006-01-01", 2, "Baidu, Inc.")
    pending = registered("2023-01-01", "2024-01-01", 3, "Baidu Group", aliases=["x"])
    facts = [first, renamed, pending]
    state = fold("baidu", facts, AS_OF)
    assert (state["name"], state["aliases"]) == ("Baidu, Inc.", [])
    assert [p["name"] for p in state["possible"]] == ["Baidu Group"]
    # A possible registration names nothing, even folded in: no list holds registrations.
    folded = fold("baidu", facts, AS_OF, include_possible=True)
    assert (folded["name"], folded["aliases"]) == ("Baidu, Inc.", [])
    assert all(folded[listed] == [] for listed in STATE_LISTS)
    assert fold("baidu", facts[:1], AS_OF)["aliases"] == ["百度"]
    assert fold("baidu", facts, date(2023, 12, 31))["name"] == "Baidu Group"
    assert fold("baidu", facts, date(1999, 12, 31))["name"] == "baidu"
    # The aliases are a copy: the state does not share the fact's list.
    copied = fold("baidu", facts[:1], AS_OF)
    copied["aliases"].append("changed")
    assert first.data["aliases"] == ["百度"]


def _tenure(lo: str, hi: str, kind: str, position: int, person: str, role: str) -> Fact:
    return fact(
        lo, hi, type=f"executive.{kind}", position=position, data={"person": person, "role": role}
    )


def _executives(facts: list[Fact], *, include_possible: bool = False) -> list[tuple[str, Any]]:
    state = fold("baidu", facts, AS_OF, include_possible=include_possible)
    return [(item["id"], item.get("departure", {}).get("id")) for item in state["executives"]]


def test_executives_hold_until_a_definite_departure_after_them() -> None:
    ceo = _tenure("2020-01-01", "2020-01-02", "appointed", 1, "Zhang", "CEO")
    cto = _tenure("2020-02-01", "2020-02-02", "appointed", 2, "Wang", "CTO")
    left = _tenure("2021-01-01", "2021-01-02", "departed", 3, "Zhang", "CEO")
    assert _executives([ceo, cto]) == [("id-1", None), ("id-2", None)]
    assert _executives([ceo, cto, left]) == [("id-2", None)]
    # The same person in another role, or another person in the role, is not ended.
    other = _tenure("2021-01-01", "2021-01-02", "departed", 3, "Zhang", "CTO")
    assert _executives([ceo, cto, other]) == [("id-1", None), ("id-2", None)]
    # A departure before the appointment (in valid-time order) ends nothing: a return.
    back = _tenure("2022-01-01", "2022-01-02", "appointed", 4, "Zhang", "CEO")
    assert _executives([ceo, cto, left, back]) == [("id-2", None), ("id-4", None)]
    # Departures are never items of a list; a definite one is in no list at all.
    state = fold("baidu", [ceo, left], AS_OF)
    assert all(item["id"] != "id-3" for listed in STATE_LISTS for item in state[listed])
    assert state["possible"] == []


def test_a_possible_departure_marks_the_appointments_it_would_end() -> None:
    ceo = _tenure("2020-01-01", "2020-01-02", "appointed", 1, "Zhang", "CEO")
    # Begun by AS_OF, over only after it: possible.
    maybe = _tenure("2023-05-01", "2023-06-01", "departed", 2, "Zhang", "CEO")
    state = fold("baidu", [ceo, maybe], AS_OF)
    assert state["executives"] == [
        {
            **ceo.item(),
            "departure": {"id": "id-2", "occurred": maybe.occurred, "confidence": "reported"},
        }
    ]
    assert [item["id"] for item in state["possible"]] == ["id-2"]
    # A later definite departure ends it whatever the possible one said; the first possible
    # departure is the one marked.
    later = _tenure("2023-05-10", "2023-06-10", "departed", 3, "Zhang", "CEO")
    assert _executives([ceo, maybe, later]) == [("id-1", "id-2")]
    gone = _tenure("2023-05-02", "2023-05-03", "departed", 4, "Zhang", "CEO")
    assert _executives([ceo, maybe, gone]) == []
    # A departure not yet begun by AS_OF does not count.
    future = _tenure("2023-06-01", "2023-06-02", "departed", 5, "Zhang", "CEO")
    assert _executives([ceo, future]) == [("id-1", None)]


def test_a_possible_appointment_is_possible_and_listed_only_when_asked() -> None:
    maybe = _tenure("2023-05-01", "2023-06-01", "appointed", 1, "Li", "CFO")
    assert _executives([maybe]) == []
    assert [i["id"] for i in fold("baidu", [maybe], AS_OF)["possible"]] == ["id-1"]
    assert _executives([maybe], include_possible=True) == [("id-1", None)]
    # A definite departure after a possible appointment ends it there too.
    left = _tenure("2023-05-10", "2023-05-11", "departed", 2, "Li", "CFO")
    assert _executives([maybe, left], include_possible=True) == []
