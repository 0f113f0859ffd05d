"""Numbers and dates at the ends of their ranges, in every query parameter that takes one: a
position past the head is 409 however large (or, where it is a lower bound, an empty page); any
calendar day from 0001-01-01 to 9999-12-31 is answered; never a 5xx."""

from __future__ import annotations

import pytest

from tests.api import Api, problem
from tests.factories import event_in
from timeline import models

HUGE = ["9223372036854775807", "9223372036854775808", "1" + "0" * 40]
DAYS = ["0001-01-01", "9999-12-31"]
# RFC 3339 times whose UTC lies before year 1 or after year 9999.
EDGE_TIMES = ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00Z"]
READS = [
    "/v1/companies/baidu",
    "/v1/companies/baidu/timeline",
    "/v1/companies",
    "/v1/chronology",
]


@pytest.fixture
async def logged(api: Api) -> Api:
    await api.append({"events": [event_in(company="baidu", occurred="2023-03")]})
    return api


@pytest.mark.parametrize("value", HUGE)
async def test_positions_past_64_bits_are_past_the_head(logged: Api, value: str) -> None:
    client, auth = logged.client, logged.auth("read")
    for path in READS:
        response = await client.get(path, params={"known_at": value}, headers=auth)
        body = await problem(response, 409, "position-conflict")
        assert body["head"] == 1
    response = await client.get("/v1/stream", params={"after": value}, headers=auth)
    await problem(response, 409, "position-conflict")
    response = await client.get("/v1/stream", headers={**auth, "Last-Event-ID": value})
    await problem(response, 409, "position-conflict")
    response = await client.get("/v1/events", params={"after": value}, headers=auth)
    assert response.status == 200
    assert await response.json() == {"events": [], "next": None, "head": 1}


@pytest.mark.parametrize("day", DAYS)
async def test_every_calendar_day_is_answered(logged: Api, day: str) -> None:
    client, auth = logged.client, logged.auth("read")
    launched = day == "9999-12-31"  # by then the launch of March 2023 is over
    response = await client.get("/v1/companies/baidu", params={"as_of": day}, headers=auth)
    assert response.status == 200, await response.text()
    assert (await response.json())["as_of"] == day
    response = await client.get("/v1/companies/baidu/timeline", params={"as_of": day}, headers=auth)
    assert response.status == 200, await response.text()
    assert len((await response.json())["events"]) == (1 if launched else 0)
    for bound in ("from", "to"):
        response = await client.get("/v1/chronology", params={bound: day}, headers=auth)
        assert response.status == 200, await response.text()
        events = (await response.json())["events"]
        # from 0001-01-01 and to 9999-12-31 hold it; from 9999-12-31 and to 0001-01-01 do not.
        assert len(events) == (1 if (bound == "from") != launched else 0), (bound, day)


@pytest.mark.parametrize("moment", EDGE_TIMES)
async def test_times_at_the_ends_of_the_calendar(logged: Api, moment: str) -> None:
    client, auth = logged.client, logged.auth("read")
    response = await client.get("/v1/companies", params={"known_at": moment}, headers=auth)
    if moment.startswith("9999"):  # later than now: nothing is known there yet
        await problem(response, 409, "position-conflict")
    else:  # before the log began: nothing was known
        assert response.status == 200, await response.text()
        assert await response.json() == {
            "companies": [],
            "known_at": {"position": 0, "recorded": None},
        }


async def test_a_range_reaching_the_calendars_last_day(api: Api) -> None:
    """The last day, 9999-12-31, is a day like any other: a range holding it ends the day
    after, 10000-01-01; it is over as of that day and not before, and in a window from it."""
    client, auth = api.client, api.auth("read")
    events = await api.append(
        {
            "events": [
                event_in(company="baidu", occurred="9999-12-31"),
                event_in(company="baidu", occurred="[2023..9999-12-31]", data={"model": "Long"}),
                event_in(company="baidu", occurred="9999-12-30", data={"model": "Eve"}),
            ]
        }
    )
    occurred = [models.Occurred.model_validate(event["occurred"]) for event in events]
    assert [(o.lo, o.hi) for o in occurred] == [
        ("9999-12-31", "10000-01-01"),
        ("2023-01-01", "10000-01-01"),
        ("9999-12-30", "9999-12-31"),
    ]
    ids = [event["id"] for event in events]

    async def launches(as_of: str) -> tuple[list[str], list[str]]:
        response = await client.get("/v1/companies/baidu", params={"as_of": as_of}, headers=auth)
        assert response.status == 200, await response.text()
        state = await response.json()
        return [item["id"] for item in state["models"]], [p["id"] for p in state["possible"]]

    assert await launches("9999-12-31") == ([ids[1], ids[2], ids[0]], [])  # (lo, hi, position)
    assert await launches("9999-12-30") == ([ids[2]], [ids[1]])
    response = await client.get("/v1/chronology", params={"from": "9999-12-31"}, headers=auth)
    assert [e["id"] for e in (await response.json())["events"]] == [ids[1], ids[0]]
    response = await client.get("/v1/chronology", params={"to": "9999-12-30"}, headers=auth)
    assert [e["id"] for e in (await response.json())["events"]] == [ids[1], ids[2]]
