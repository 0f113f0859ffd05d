"""Bad input to the projection endpoints: each gets its problem document, never a 500."""

from __future__ import annotations

import base64

from tests.api import Api, problem
from tests.factories import event_in


async def test_bad_as_of_known_at_company_and_cursor(api: Api) -> None:
    await api.append({"events": [event_in(company="baidu"), event_in(company="tencent")]})
    forged = base64.urlsafe_b64encode(b'[1, 99, "2023-01-01", "2023-02-01", 1]').decode()
    cases = [
        ("/v1/companies/baidu?as_of=yesterday", 400, "bad-request", "as_of"),
        ("/v1/companies/baidu?as_of=2023-02-30", 400, "bad-request", "as_of"),
        ("/v1/companies/baidu?as_of=20230501", 400, "bad-request", "as_of"),
        ("/v1/companies/baidu?known_at=soon", 400, "bad-request", "known_at"),
        ("/v1/companies/baidu?known_at=2023-05-01T10:00:00", 400, "bad-request", "known_at"),
        ("/v1/companies/baidu?known_at=-1", 400, "bad-request", "known_at"),
        ("/v1/companies/baidu?include_possible=maybe", 400, "bad-request", "include_possible"),
        ("/v1/companies/baidu/timeline?as_of=2023", 400, "bad-request", "as_of"),
        ("/v1/companies?known_at=x", 400, "bad-request", "known_at"),
        ("/v1/chronology?cursor=not-a-cursor", 400, "bad-request", "cursor"),
        ("/v1/chronology?cursor=" + forged, 400, "bad-request", "cursor"),
        ("/v1/chronology?from=2023-06-01&to=2023-01-01", 400, "bad-request", "from"),
        ("/v1/chronology?limit=0", 400, "bad-request", "limit"),
        ("/v1/chronology?type=rumor", 400, "bad-request", "type"),
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


async def test_an_unknown_query_parameter_is_named_not_ignored(api: Api) -> None:
    await api.append(event_in(company="baidu"))
    for path, name in [
        ("/v1/events?compnay=baidu", "compnay"),
        ("/v1/companies/baidu?asof=2023-05-01", "asof"),
        ("/v1/companies/baidu/timeline?as_of=2023-05-01&knownat=1", "knownat"),
        ("/v1/companies?company=baidu", "company"),
        ("/v1/chronology?types=model.launched", "types"),
        ("/v1/stream?after=0&companies=baidu", "companies"),
        ("/v1/digest?x=", "x"),
        ("/v1/events/00000000-0000-4000-8000-000000000000?verbose=1", "verbose"),
    ]:
        body = await problem(await api.client.get(path), 400, "bad-request")
        assert body["errors"][0]["loc"] == ["query", name], path
        assert "takes" in body["errors"][0]["msg"]
    # The dashboard's bearer token in the query is known to every GET ...
    response = await api.client.get(f"/v1/companies/baidu?access_token={api.tokens['read']}")
    assert response.status == 200
    # ... and only to a GET; and an append's query takes nothing else.
    response = await api.client.post(
        "/v1/events?dry_run=1", json=event_in(company="baidu"), headers=api.auth()
    )
    body = await problem(response, 400, "bad-request")
    assert body["errors"][0]["loc"] == ["query", "dry_run"]
    # Outside /v1 nothing is refused: probes and scrapers add what they like.
    assert (await api.client.get("/healthz?probe=1")).status == 200


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
