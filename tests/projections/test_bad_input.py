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
