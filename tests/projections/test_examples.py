"""Worked examples from the seed article, through a real server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import AiohttpClient, Api, make_api
from tests.databases import Database
from tests.factories import event_in

LETTER = event_in(
    company="alibaba",
    type="ceo.letter",
    occurred="2023-09-12",
    data={
        "author": "Wu Yongming",
        "role": "CEO",
        "summary": 'Two strategic focuses: "user first, AI-driven"',
    },
    confidence="confirmed",
)
TEAM = event_in(
    company="pinduoduo",
    type="team.formed",
    occurred="2023-05",
    data={"name": "large model team", "location": "Shanghai", "headcount": 30},
    confidence="reported",
)
DIDI = event_in(
    company="didi",
    type="team.formed",
    occurred="2023-Q3",
    data={"name": "big model team"},
    confidence="rumored",
)


@pytest.fixture
async def seeded(database: Database, aiohttp_client: AiohttpClient) -> Api:
    api = await make_api(aiohttp_client, database.url)
    await api.append({"events": [LETTER, TEAM, DIDI]})
    return api


async def state(api: Api, company: str, **query: Any) -> Any:
    response = await api.client.get(
        f"/v1/companies/{company}", params={k: str(v) for k, v in query.items()}
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def test_the_ceo_letter_appears_on_its_day(seeded: Api) -> None:
    before = await state(seeded, "alibaba", as_of="2023-09-11")
    assert before["letters"] == []
    assert before["possible"] == []
    on_the_day = await state(seeded, "alibaba", as_of="2023-09-12")
    assert [letter["author"] for letter in on_the_day["letters"]] == ["Wu Yongming"]
    assert on_the_day["letters"][0]["id"] == LETTER["id"]
    assert on_the_day["letters"][0]["occurred"]["value"] == "2023-09-12"


async def test_a_month_is_possible_within_it_and_definite_after(seeded: Api) -> None:
    assert (await state(seeded, "pinduoduo", as_of="2023-04-30"))["possible"] == []
    mid = await state(seeded, "pinduoduo", as_of="2023-05-15")
    assert mid["teams"] == []
    assert [(p["id"], p["type"], p["name"]) for p in mid["possible"]] == [
        (TEAM["id"], "team.formed", "large model team")
    ]
    folded = await state(seeded, "pinduoduo", as_of="2023-05-15", include_possible="true")
    assert [t["name"] for t in folded["teams"]] == ["large model team"]
    after = await state(seeded, "pinduoduo", as_of="2023-06-01")
    assert [t["location"] for t in after["teams"]] == ["Shanghai"]
    assert after["possible"] == []
    timeline = await (
        await seeded.client.get("/v1/companies/pinduoduo/timeline?as_of=2023-05-15")
    ).json()
    assert [e["status"] for e in timeline["events"]] == ["possible"]


async def test_a_retracted_rumor_is_known_before_and_gone_after(seeded: Api) -> None:
    (retraction,) = await seeded.append(
        event_in(
            company="didi",
            type="event.retracted",
            occurred="2023-10-20",
            data={"target": DIDI["id"], "reason": "Didi denied forming the team"},
        )
    )
    before = await state(seeded, "didi", as_of="2023-12-31", known_at=retraction["position"] - 1)
    assert [t["name"] for t in before["teams"]] == ["big model team"]
    assert before["teams"][0]["confidence"] == "rumored"
    after = await state(seeded, "didi", as_of="2023-12-31", known_at=retraction["position"])
    assert after["teams"] == []
    assert after["version"] == 2
    # By time as well as by position: the moment it was recorded.
    by_time = await state(seeded, "didi", as_of="2023-12-31", known_at=retraction["recorded"])
    assert by_time["teams"] == []
    assert by_time["known_at"] == {"position": 4, "recorded": retraction["recorded"]}
    detail = await (await seeded.client.get(f"/v1/events/{DIDI['id']}")).json()
    assert detail["effective"] is None
    assert [a["id"] for a in detail["amendments"]] == [retraction["id"]]
    chronology = await (await seeded.client.get("/v1/chronology")).json()
    assert DIDI["id"] not in [e["id"] for e in chronology["events"]]


async def test_a_correction_moves_the_date_and_a_reinstatement_brings_it_back(
    seeded: Api,
) -> None:
    await seeded.append(
        event_in(
            company="pinduoduo",
            type="event.corrected",
            occurred="2023-11-01",
            data={"target": TEAM["id"], "occurred": "2023-10", "confidence": "confirmed"},
        )
    )
    june = await state(seeded, "pinduoduo", as_of="2023-06-01")
    assert june["teams"] == []
    november = await state(seeded, "pinduoduo", as_of="2023-11-01")
    (team,) = november["teams"]
    assert (team["occurred"]["value"], team["confidence"]) == ("2023-10", "confirmed")
    detail = await (await seeded.client.get(f"/v1/events/{TEAM['id']}")).json()
    assert detail["event"]["occurred"]["value"] == "2023-05"  # the log is never rewritten
    assert detail["effective"]["occurred"]["value"] == "2023-10"

    await seeded.append(
        event_in(
            company="pinduoduo",
            type="event.retracted",
            occurred="2023-11-02",
            data={"target": TEAM["id"], "reason": "unconfirmed"},
        )
    )
    assert (await state(seeded, "pinduoduo", as_of="2023-12-01"))["teams"] == []
    await seeded.append(
        event_in(
            company="pinduoduo",
            type="event.reinstated",
            occurred="2023-11-03",
            data={"target": TEAM["id"], "reason": "confirmed after all"},
        )
    )
    (back,) = (await state(seeded, "pinduoduo", as_of="2023-12-01"))["teams"]
    assert back["occurred"]["value"] == "2023-10"  # the correction still holds


async def test_company_list_and_chronology(seeded: Api) -> None:
    await seeded.append(
        event_in(
            company="alibaba",
            type="company.registered",
            occurred="1999",
            data={"name": "Alibaba Group", "aliases": ["阿里巴巴"]},
        )
    )
    listing = await (await seeded.client.get("/v1/companies")).json()
    assert [(c["company"], c["name"], c["events"]) for c in listing["companies"]] == [
        ("alibaba", "Alibaba Group", 2),
        ("didi", "didi", 1),
        ("pinduoduo", "pinduoduo", 1),
    ]
    assert listing["companies"][0]["first"]["value"] == "1999"
    assert listing["companies"][0]["last"]["value"] == "2023-09-12"
    alibaba = await state(seeded, "alibaba", as_of="2023-12-31")
    assert (alibaba["name"], alibaba["aliases"]) == ("Alibaba Group", ["阿里巴巴"])
    page = await (await seeded.client.get("/v1/chronology?from=2023-06-01&to=2023-12-31")).json()
    assert [e["id"] for e in page["events"]] == [DIDI["id"], LETTER["id"]]
    first = await (await seeded.client.get("/v1/chronology?limit=2")).json()
    assert first["next_cursor"] is not None
    # Appending does not disturb a pinned cursor.
    await seeded.append(event_in(company="baidu", occurred="1990"))
    rest = await (
        await seeded.client.get(f"/v1/chronology?limit=2&cursor={first['next_cursor']}")
    ).json()
    ids = [e["id"] for e in first["events"] + rest["events"]]
    assert ids[0] != ids[1]
    assert len(ids) == 4
    assert rest["next_cursor"] is None
