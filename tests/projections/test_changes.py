"""projections/changes.py through the API: what changed in a company's state, and in the log,
between two points of transaction time (tests/projections/test_oracle.py holds both to the
reference on generated logs; here, named cases and the refusals)."""

from __future__ import annotations

from typing import Any

from projections.changes import ChangesCursor
from projections.cursors import fingerprint
from tests.api import Api, problem
from tests.factories import event_in


async def _get(api: Api, path: str) -> Any:
    response = await api.client.get(path)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_correction_retraction_and_newly_definite_event_are_told_apart(api: Api) -> None:
    launch = event_in(company="baidu", occurred="2023-03", data={"model": "ERNIE Bot"})
    soon = event_in(company="baidu", occurred="2023-Q4", data={"model": "ERNIE 4.0"})
    team = event_in(company="baidu", type="team.formed", occurred="2023-02", data={"name": "T"})
    await api.append({"events": [launch, soon, team]})
    since = 3
    fix = {"target": launch["id"], "data": {"model": "ERNIE Bot", "stage": "public"}}
    await api.append(
        event_in(company="baidu", type="event.corrected", occurred="2023-04", data=fix)
    )
    gone = {"target": team["id"], "reason": "never was"}
    await api.append(
        event_in(company="baidu", type="event.retracted", occurred="2023-05", data=gone)
    )
    added = event_in(company="baidu", occurred="2023-06", data={"model": "ERNIE 3.5"})
    await api.append(added)

    found = await _get(api, f"/v1/companies/baidu/changes?since={since}&as_of=2023-11-15")
    assert (found["since"]["position"], found["until"]["position"]) == (3, 6)
    assert found["as_of"] == "2023-11-15"
    assert [(c["list"], c["item"]["id"]) for c in found["added"]] == [("models", added["id"])]
    assert [(c["list"], c["item"]["id"]) for c in found["removed"]] == [("teams", team["id"])]
    (changed,) = found["changed"]
    assert (changed["list"], changed["before"]["id"]) == ("models", launch["id"])
    assert "stage" not in changed["before"] and changed["after"]["stage"] == "public"
    # As of a day when 2023-Q4 is over, ERNIE 4.0 has left `possible` for `models`: but it
    # did so at both points, so only what the log learned between them shows.
    later = await _get(api, f"/v1/companies/baidu/changes?since={since}&as_of=2024-01-01")
    assert soon["id"] not in [c["item"]["id"] for c in later["added"] + later["removed"]]
    # Valid time moving is not a change of knowledge: since = until changes nothing.
    same = await _get(api, "/v1/companies/baidu/changes?since=6&until=6&as_of=2024-01-01")
    assert (same["added"], same["removed"], same["changed"]) == ([], [], [])
    # Known at nothing, a company's every item is added.
    first = await _get(api, "/v1/companies/baidu/changes?since=0&until=3&as_of=2024-01-01")
    assert {c["item"]["id"] for c in first["added"]} == {launch["id"], soon["id"], team["id"]}

    page = await _get(api, f"/v1/changes?since={since}")
    assert (page["since"]["position"], page["until"]["position"]) == (3, 6)
    kinds = [(c["position"], c["kind"], c["target"]) for c in page["changes"]]
    assert kinds == [
        (4, "corrected", launch["id"]),
        (5, "retracted", team["id"]),
        (6, "added", None),
    ]
    corrected, retracted, new = page["changes"]
    assert "stage" not in corrected["before"]["data"]
    assert corrected["after"]["data"]["stage"] == "public"
    assert corrected["after"]["position"] == 1 and corrected["event"]["position"] == 4
    assert retracted["before"]["id"] == team["id"] and retracted["after"] is None
    assert new["before"] is None and new["after"] == new["event"]
    assert page["next_cursor"] is None


async def test_pages_pin_until_and_filters_follow_amendments(api: Api) -> None:
    launch = event_in(company="alibaba", occurred="2023-04", data={"model": "Tongyi"})
    team = event_in(company="alibaba", type="team.formed", occurred="2023-02", data={"name": "T"})
    await api.append({"events": [launch, team]})
    for n in range(5):
        fix = {"target": launch["id"], "confidence": ["confirmed", "reported"][n % 2]}
        await api.append(
            event_in(company="alibaba", type="event.corrected", occurred="2023-05", data=fix)
        )
    # A type filter passes the corrections of a launch, not the team.
    path = "/v1/changes?since=0&type=model.launched&limit=2"
    seen, cursor = [], None
    while True:
        page = await _get(api, path + (f"&cursor={cursor}" if cursor else ""))
        seen += [change["position"] for change in page["changes"]]
        if cursor is None:
            # Appended after the first page: the cursor pins until, so it is not in them.
            await api.append(
                event_in(company="alibaba", occurred="2023-09", data={"model": "Tongyi 2"})
            )
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [1, 3, 4, 5, 6, 7]
    # A cursor goes with the filters it was made with, and the until it pins.
    first = await _get(api, "/v1/changes?since=0&limit=1")
    other = await api.client.get(f"/v1/changes?since=1&limit=1&cursor={first['next_cursor']}")
    assert (await problem(other, 400, "bad-request"))["errors"][0]["loc"] == ["query", "cursor"]
    pinned = await api.client.get(f"/v1/changes?since=0&until=3&cursor={first['next_cursor']}")
    assert (await problem(pinned, 400, "bad-request"))["errors"][0]["loc"] == ["query", "until"]
    made_up = await api.client.get("/v1/changes?since=0&cursor=bm9wZQ")
    await problem(made_up, 400, "bad-request")
    # A cursor of the right filters but a position before since is not one this server made.
    filters = fingerprint([3, [], []])
    forged = ChangesCursor(7, 1, filters).encode()
    before = await api.client.get(f"/v1/changes?since=3&cursor={forged}")
    assert (await problem(before, 400, "bad-request"))["errors"][0]["loc"] == ["query", "cursor"]


async def test_changes_refuse_what_they_cannot_answer(api: Api) -> None:
    await api.append(event_in(company="tencent"))
    for path, name in [
        ("/v1/changes", "since"),
        ("/v1/companies/tencent/changes", "since"),
        ("/v1/changes?since=soon", "since"),
        ("/v1/changes?since=0&until=later", "until"),
        ("/v1/companies/tencent/changes?since=0&as_of=2023-13", "as_of"),
    ]:
        body = await problem(await api.client.get(path), 400, "bad-request")
        assert body["errors"][0]["loc"] == ["query", name], path
    body = await problem(await api.client.get("/v1/changes?since=1&until=0"), 400, "bad-request")
    assert body["errors"][0]["loc"] == ["query", "since"]
    await problem(await api.client.get("/v1/changes?since=2"), 409, "position-conflict")
    missing = await api.client.get("/v1/companies/nobody/changes?since=0")
    await problem(missing, 404, "not-found")
    # Unknown at until, known later: still 404 at until.
    early = await api.client.get("/v1/companies/tencent/changes?since=0&until=0")
    await problem(early, 404, "not-found")
