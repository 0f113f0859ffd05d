"""Bad input to the projection endpoints: each gets its problem document, never a 500. (A
malformed parameter's 400, and an unknown one's: tests/timeline/test_routes.py.)"""

from __future__ import annotations

import base64

from tests.api import Api, problem
from tests.factories import event_in


async def test_bad_cursors_positions_and_companies(api: Api) -> None:
    await api.append({"events": [event_in(company="baidu"), event_in(company="tencent")]})
    forged = base64.urlsafe_b64encode(b'[1, 99, "2023-01-01", "2023-02-01", 1]').decode()
    cases = [
        ("/v1/chronology?cursor=not-a-cursor", 400, "bad-request", "cursor"),
        ("/v1/chronology?cursor=" + forged, 400, "bad-request", "cursor"),
        ("/v1/chronology?from=2023-06-01&to=2023-01-01", 400, "bad-request", "from"),
        ("/v1/companies/baidu?known_at=3", 409, "position-conflict", None),
        ("/v1/companies/baidu?known_at=2999-01-01T00:00:00Z", 409, "position-conflict", None),
        ("/v1/companies?known_at=17", 409, "position-conflict", None),
        ("/v1/chronology?known_at=17", 409, "position-conflict", None),
        ("/v1/companies/alibaba", 404, "not-found", None),
        ("/v1/companies/Not_A_Slug", 404, "not-found", None),
        ("/v1/companies/alibaba/timeline", 404, "not-found", None),
        ("/v1/companies/tencent?known_at=1", 404, "not-found", None),
    ]
    for path, status, name, where in cases:
        body = await problem(await api.client.get(path), status, name)
        if where is not None:
            assert body["errors"][0]["loc"] == ["query", where], path


async def test_known_at_before_the_first_event(api: Api) -> None:
    await api.append(event_in(company="baidu"))
    response = await api.client.get("/v1/companies?known_at=2001-01-01T00:00:00Z")
    body = await response.json()
    assert body == {"companies": [], "known_at": {"position": 0, "recorded": None}}
    response = await api.client.get("/v1/companies/baidu?known_at=0")
    await problem(response, 404, "not-found")


async def test_a_chronology_cursor_continues_only_its_own_filters(api: Api) -> None:
    await api.append(
        {
            "events": [
                event_in(company=c, occurred=f"2023-0{m}")
                for c in ("baidu", "tencent")
                for m in range(1, 6)
            ]
        }
    )
    query = "from=2023-02-01&company=baidu&company=tencent&limit=2"
    first = await (await api.client.get(f"/v1/chronology?{query}")).json()
    cursor = first["next_cursor"]
    assert cursor is not None
    # The same filters, in another order and with another limit, continue the pages.
    same = "company=tencent&company=baidu&from=2023-02-01&limit=3"
    response = await api.client.get(f"/v1/chronology?{same}&cursor={cursor}")
    assert response.status == 200
    for other in [
        "from=2023-03-01&company=baidu&company=tencent",
        "from=2023-02-01&company=baidu",
        "from=2023-02-01&company=baidu&company=tencent&to=2023-04-01",
        "from=2023-02-01&company=baidu&company=tencent&type=model.launched",
        "company=baidu&company=tencent",
    ]:
        response = await api.client.get(f"/v1/chronology?{other}&cursor={cursor}")
        body = await problem(response, 400, "bad-request")
        assert body["errors"][0]["loc"] == ["query", "cursor"], other


async def test_a_known_at_beside_a_cursor_must_be_the_one_it_pins(api: Api) -> None:
    await api.append({"events": [event_in(company="baidu") for _ in range(3)]})
    first = await (await api.client.get("/v1/chronology?limit=1&known_at=2")).json()
    cursor = first["next_cursor"]
    response = await api.client.get(f"/v1/chronology?limit=1&known_at=2&cursor={cursor}")
    assert response.status == 200  # the same position: the same listing
    response = await api.client.get(f"/v1/chronology?limit=1&known_at=3&cursor={cursor}")
    body = await problem(response, 400, "bad-request")
    assert body["errors"][0]["loc"] == ["query", "known_at"]
