"""Property: for generated logs (late, fuzzy, approximate, corrected, retracted, reinstated
events over several companies) the HTTP answers equal the from-scratch oracle's, at random
as-of dates and known-at positions, before and after a rebuild."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.dates import FuzzyDate
from projections import reference
from projections.fold import STATE_LISTS
from projections.rebuild import projections, rebuild
from tests.databases import backend_params, fresh
from tests.factories import event_in
from timeline.app import create_app
from timeline.config import Settings
from timeline.keys import STORE

TOKEN = "tl_oracle"
COMPANIES = ["alibaba", "baidu", "tencent", "pinduoduo", "kuaishou"]
KINDS = [
    "company.registered",
    "model.launched",
    "team.formed",
    "ceo.letter",
    "financial.report",
    "executive.appointed",
    "executive.departed",
    "executive.appointed",
    "executive.departed",
    "event.corrected",
    "event.retracted",
    "event.reinstated",
]


@st.composite
def points(draw: st.DrawFn) -> str:
    """YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD, without a mark."""
    year = draw(st.integers(2021, 2024))
    precision = draw(st.sampled_from(["year", "quarter", "month", "day"]))
    month = draw(st.integers(1, 12))
    if precision == "year":
        return f"{year}"
    if precision == "quarter":
        return f"{year}-Q{(month - 1) // 3 + 1}"
    if precision == "month":
        return f"{year}-{month:02d}"
    return f"{year}-{month:02d}-{draw(st.integers(1, 28)):02d}"


END_FORMS = ["9999", "9999?", "9999-12-31", "9999-12-31~", "999X", "[2023..9999-12-31]"]


@st.composite
def fuzzy_dates(draw: st.DrawFn) -> str:
    """Every form: a point, a decade, each perhaps marked; on or before a point (from the
    calendar's first day); between two points."""
    form = draw(st.sampled_from(["point"] * 6 + ["decade", "on_or_before", "between", "end"]))
    mark = draw(st.sampled_from(["", "", "", "~", "?"]))
    if form == "end":  # ranges reaching the calendar's last day
        return draw(st.sampled_from(END_FORMS))
    if form == "decade":
        return draw(st.sampled_from(["201X", "202X"])) + mark
    if form == "on_or_before":
        return f"[..{draw(points())}]"
    if form == "between":
        # In order of their first days, so that the second ends after the first begins.
        first, last = sorted([draw(points()), draw(points())], key=lambda p: FuzzyDate.parse(p).lo)
        return f"[{first}..{last}]"
    return draw(points()) + mark


def payload(kind: str, n: int) -> dict[str, Any]:
    return {
        "company.registered": {"name": f"Name {n}", "aliases": [f"alias {n}"]},
        "model.launched": {"model": f"Model {n % 7}", "stage": "public"},
        "team.formed": {"name": f"Team {n}", "headcount": n},
        "ceo.letter": {"author": f"CEO {n}", "summary": f"letter {n}"},
        "financial.report": {
            "period": "2023-Q3",
            "metrics": [{"name": "revenue", "value": n + 0.5, "yoy_pct": 20}],
        },
        # Few people and roles, so that departures meet appointments.
        "executive.appointed": {"person": f"Person {n % 3}", "role": ["CEO", "CTO"][n % 2]},
        "executive.departed": {
            "person": f"Person {n % 3}",
            "role": ["CEO", "CTO"][n // 3 % 2],
            **({"successor": f"Person {n % 5}"} if n % 2 else {}),
        },
    }[kind]


Op = tuple[str, int, str, str, int, int]
ops = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, len(COMPANIES) - 1),
    fuzzy_dates(),
    st.sampled_from(["confirmed", "reported", "rumored"]),
    st.integers(0, 10**6),
    st.integers(0, 2),
)


def build_log(plan: list[Op]) -> list[list[dict[str, Any]]]:
    """Turn drawn operations into EventIn batches; amendments pick an existing target."""
    originals: dict[str, list[tuple[str, str]]] = {c: [] for c in COMPANIES}
    batches: list[list[dict[str, Any]]] = [[]]
    for n, (kind, company_index, occurred, confidence, pick, split) in enumerate(plan):
        company = COMPANIES[company_index]
        targets = originals[company]
        if kind.startswith("event.") and targets:
            target_id, target_kind = targets[pick % len(targets)]
            if kind == "event.corrected":
                change: dict[str, Any] = {"target": target_id}
                if pick % 3 != 1:
                    change["occurred"] = occurred
                if pick % 3 != 0:
                    change["data"] = payload(target_kind, n)
                if pick % 4 == 0:
                    change["confidence"] = confidence
                data = change
            else:
                data = {"target": target_id, "reason": f"reason {n}"}
            body = event_in(company=company, type=kind, occurred=occurred, data=data)
        else:
            kind = kind if not kind.startswith("event.") else "model.launched"
            body = event_in(
                company=company,
                type=kind,
                occurred=occurred,
                data=payload(kind, n),
                confidence=confidence,
            )
            targets.append((body["id"], kind))
        batches[-1].append(body)
        if split == 0:
            batches.append([])
    return [batch for batch in batches if batch]


def strip(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in ("as_of", "known_at")}


async def check(backend: str, plan: list[Op], queries: list[tuple[date, int, int]]) -> None:
    with fresh(backend) as database:
        app = create_app(Settings(db=database.url, bootstrap_token=TOKEN))
        async with TestClient(TestServer(app)) as client:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            for batch in build_log(plan):
                response = await client.post("/v1/events", json={"events": batch}, headers=headers)
                assert response.status == 201, await response.text()
            log = await app[STORE].read(limit=100_000)
            assert len(log) == len(plan)

            async def answers() -> list[Any]:
                found = []
                for as_of, known_fraction, pick in queries:
                    known = len(log) * known_fraction // 100
                    found.append(await compare(client, log, as_of, known, pick))
                return found

            before = await answers()
            assert await rebuild(app[STORE], projections()) == len(log)
            assert await answers() == before


async def get(client: TestClient[Any, Any], path: str, **query: Any) -> tuple[int, Any]:
    response = await client.get(path, params={k: str(v) for k, v in query.items()})
    return response.status, await response.json()


async def compare(
    client: TestClient[Any, Any], log: list[Any], as_of: date, known: int, pick: int
) -> Any:
    answers: list[Any] = []
    company = [*COMPANIES, "nobody"][pick % (len(COMPANIES) + 1)]
    possible = pick % 2 == 0
    status, state = await get(
        client,
        f"/v1/companies/{company}",
        as_of=as_of,
        known_at=known,
        include_possible=str(possible).lower(),
    )
    expected = reference.company_state(log, company, as_of, known, include_possible=possible)
    if expected is None:
        assert status == 404
    else:
        assert status == 200, state
        assert strip(state) == expected
        assert state["known_at"]["position"] == known
        assert state["as_of"] == as_of.isoformat()
    answers.append(state)

    status, page = await get(
        client, f"/v1/companies/{company}/timeline", as_of=as_of, known_at=known
    )
    expected_timeline = reference.timeline(log, company, as_of, known)
    if expected_timeline is None:
        assert status == 404
    else:
        assert [(e["id"], e["status"]) for e in page["events"]] == expected_timeline
        facts = reference.effective(log, known)
        for event in page["events"]:
            fact = facts[event["id"]]
            assert fact is not None
            assert (event["occurred"], event["data"], event["confidence"]) == (
                fact.occurred,
                fact.data,
                fact.confidence,
            )
    answers.append(page)

    status, listing = await get(client, "/v1/companies", known_at=known)
    assert status == 200
    assert listing["companies"] == reference.companies(log, known)
    status, listing = await get(client, "/v1/companies")  # at the head: the kept summary
    assert listing["companies"] == reference.companies(log, len(log))
    answers.append(listing)

    # Windows beginning on a first of the month (where the calendar's ranges end) or on any
    # day, of a day to years, or open on either side.
    start = date(2022, 1 + pick % 12, 1 if pick % 4 else 1 + pick % 28) if pick % 3 else None
    end = start + timedelta(days=[0, 1, 30, 400][pick // 7 % 4]) if start else date(2023, 6, 30)
    end = end if pick % 5 else None
    if pick % 13 == 0:  # the calendar's last day
        start, end = date.max, None
    filters: dict[str, Any] = {"known_at": known, "limit": 7}
    if start:
        filters["from"] = start
    if end:
        filters["to"] = end
    types = ["model.launched", "team.formed"] if pick % 7 == 0 else []
    companies = [company] if pick % 11 == 0 and company != "nobody" else []
    query = [f"type={kind}" for kind in types] + [f"company={name}" for name in companies]
    path = "/v1/chronology" + ("?" + "&".join(query) if query else "")
    seen: list[str] = []
    while True:
        status, chunk = await get(client, path, **filters)
        assert status == 200, chunk
        seen += [event["id"] for event in chunk["events"]]
        if chunk["next_cursor"] is None:
            break
        filters["cursor"] = chunk["next_cursor"]
    expected_ids = [
        fact.id
        for fact in reference.chronology(
            log, known, start=start, end=end, companies=companies, types=types
        )
    ]
    assert seen == expected_ids
    answers.append(seen)

    answers.append(await compare_changes(client, log, company, as_of, known, pick))

    event = log[pick % len(log)]
    status, detail = await get(client, f"/v1/events/{event.id}")
    facts = reference.effective(log, len(log))
    amendments = [e.id for e in log if e.type.startswith("event.") and e.data["target"] == event.id]
    assert [a["id"] for a in detail["amendments"]] == amendments
    if event.type.startswith("event.") or facts[event.id] is None:
        assert detail["effective"] is None
    else:
        fact = facts[event.id]
        assert fact is not None
        assert detail["effective"]["data"] == fact.data
        assert detail["effective"]["occurred"] == fact.occurred
    return answers


def state_diff(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    """Two states' difference: items matched by list and id."""
    added, removed, changed = [], [], []
    for listed in (*STATE_LISTS, "possible"):
        old = {item["id"]: item for item in (before or {}).get(listed, [])}
        new = {item["id"]: item for item in after[listed]}
        for item in after[listed]:
            if item["id"] not in old:
                added.append({"list": listed, "item": item})
            elif old[item["id"]] != item:
                changed.append({"list": listed, "before": old[item["id"]], "after": item})
        removed += [{"list": listed, "item": i} for i in old.values() if i["id"] not in new]
    return {"added": added, "removed": removed, "changed": changed}


def shown(fact: Any) -> Any:
    return None if fact is None else (fact.occurred, fact.data, fact.confidence)


async def compare_changes(
    client: TestClient[Any, Any], log: list[Any], company: str, as_of: date, known: int, pick: int
) -> Any:
    """The changes between S1 and S2 = known: the company diff against the difference of two
    reference folds, the log's changes against a replay of the log."""
    since = known * (pick % 4) // 4
    status, found = await get(
        client, f"/v1/companies/{company}/changes", since=since, until=known, as_of=as_of
    )
    after = reference.company_state(log, company, as_of, known)
    if after is None:
        assert status == 404, found
    else:
        assert status == 200, found
        before = reference.company_state(log, company, as_of, since)
        expected = state_diff(before, after)
        assert {key: found[key] for key in expected} == expected
        assert (found["since"]["position"], found["until"]["position"]) == (since, known)

    types = ["model.launched", "executive.appointed"] if pick % 3 == 0 else []
    companies = [company] if pick % 2 and company != "nobody" else []
    query = [f"type={kind}" for kind in types] + [f"company={name}" for name in companies]
    path = "/v1/changes" + ("?" + "&".join(query) if query else "")
    filters: dict[str, Any] = {"since": since, "until": known, "limit": 7}
    seen: list[Any] = []
    while True:
        status, page = await get(client, path, **filters)
        assert status == 200, page
        for change in page["changes"]:
            before, after = change["before"], change["after"]
            seen.append(
                (
                    change["position"],
                    change["kind"],
                    change["event"]["id"],
                    change["target"],
                    None
                    if before is None
                    else (before["occurred"], before["data"], before["confidence"]),
                    None
                    if after is None
                    else (after["occurred"], after["data"], after["confidence"]),
                )
            )
        if page["next_cursor"] is None:
            break
        filters["cursor"] = page["next_cursor"]
    by_id = {entry.id: entry for entry in log}
    replay = []
    for entry in log[since:known]:
        target = entry.target
        kind = entry.type if target is None else by_id[target].type
        if companies and entry.company not in companies:
            continue
        if types and entry.type not in types and kind not in types:
            continue
        if target is None:
            fact = reference.effective(log, entry.position)[entry.id]
            replay.append((entry.position, "added", entry.id, None, None, shown(fact)))
            continue
        was = reference.effective(log, entry.position - 1)[target]
        now = reference.effective(log, entry.position)[target]
        change = entry.type.removeprefix("event.")
        replay.append((entry.position, change, entry.id, target, shown(was), shown(now)))
    assert seen == replay
    return seen


@pytest.mark.parametrize("backend", backend_params())
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(
    plan=st.lists(ops, min_size=200, max_size=240),
    queries=st.lists(
        st.tuples(
            st.one_of(
                *[st.dates(date(2020, 6, 1), date(2025, 6, 1))] * 3,
                st.sampled_from([date.max - timedelta(days=1), date.max]),  # the calendar's end
            ),
            st.integers(0, 100),
            st.integers(0, 10**6),
        ),
        min_size=12,
        max_size=12,
    ),
)
def test_http_answers_equal_the_oracle(
    backend: str, plan: list[Op], queries: list[tuple[date, int, int]]
) -> None:
    asyncio.run(check(backend, plan, queries))
