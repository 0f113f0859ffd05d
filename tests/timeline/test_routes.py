"""The parameters of the API (timeline/params.py) and the guard every endpoint runs first
(timeline/endpoints.py), through a real server: each parser's 400 names the parameter and
says why; the guard answers 401 and 403 before it names an unknown parameter, and enforces the
scope an endpoint declares without its handler asking for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from tests.api import AiohttpClient, Api, make_api, problem
from tests.factories import event_in
from timeline.openapi import Endpoint, Param
from timeline.routes import ENDPOINTS


async def _refused(api: Api, path: str, name: str, **request: Any) -> str:
    """GET `path`: a 400 naming the query parameter `name`; its message."""
    body = await problem(await api.client.get(path, **request), 400, "bad-request")
    assert body["errors"][0]["loc"] == ["query", name], path
    message: str = body["errors"][0]["msg"]
    assert message in body["detail"]
    return message


async def test_400_for_bad_query_parameters(api: Api) -> None:
    for query, name in [
        ("after=-1", "after"),
        ("after=one", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("company=Not_A_Slug", "company"),
        ("type=model.retired", "type"),
    ]:
        response = await api.client.get(f"/v1/events?{query}")
        body = await problem(response, 400, "bad-request")
        assert body["errors"][0]["loc"] == ["query", name]


async def test_integers_are_ascii_digits_within_their_bounds(api: Api) -> None:
    # Digits of other scripts too: Arabic-Indic and full-width ones.
    for value in ["-1", "one", "1.5", "", " 1", "+1", "1e3", "\u0661", "\uff11"]:
        message = await _refused(api, "/v1/events", "after", params={"after": value})
        assert message == "expected a non-negative integer", value
    for value in ["0", "1001", "99999999999999999999999999"]:
        message = await _refused(api, f"/v1/events?limit={value}", "limit")
        assert message == "must be between 1 and 1000", value
    assert await _refused(api, "/v1/chronology?limit=0", "limit") == "must be between 1 and 1000"
    # The bounds themselves, and leading zeros, are taken.
    for query in ["limit=1", "limit=1000", "limit=0001", "after=0", "after=00"]:
        assert (await api.client.get(f"/v1/events?{query}")).status == 200, query


async def test_known_at_is_a_position_or_an_rfc_3339_time_with_its_offset(api: Api) -> None:
    (first,) = await api.append(event_in(company="baidu"))
    await api.append(event_in(company="baidu"))
    recorded = first["recorded"]  # 2026-01-02T03:04:05.123456Z, say
    day, clock = recorded[:10], recorded[11:-1]

    async def known(value: str) -> Any:
        response = await api.client.get("/v1/companies", params={"known_at": value})
        assert response.status == 200, (value, await response.text())
        return (await response.json())["known_at"]

    at_first = {"position": 1, "recorded": recorded}
    assert await known("1") == at_first
    assert await known("0001") == at_first
    # The moment of the first group, however it is written: its position.
    hour = int(clock[:2])
    for form in [
        f"{day}T{clock}Z",
        f"{day}t{clock}z",
        f"{day} {clock}Z",
        f"{day}T{clock}+00:00",
        f"{day}T{clock}-00:00",
        # The same instant an hour east: the hour after, unless that is the next day.
        *([f"{day}T{hour + 1:02d}{clock[2:]}+01:00"] if hour < 23 else []),
    ]:
        assert await known(form) == at_first, form
    assert await known("2001-01-01T00:00:00Z") == {"position": 0, "recorded": None}
    assert await known("2001-01-01T00:00:00.5+08:00") == {"position": 0, "recorded": None}
    for value in [
        "soon",
        "-1",
        "1.5",
        "2023-05-01",  # a day is no time
        "2023-05-01T10:00:00",  # no offset
        "2023-05-01T10:00Z",  # no seconds
        "2023-05-01T10:00:00.1234567Z",  # past microseconds
        "2023-05-01T10:00:00+0800",
    ]:
        message = await _refused(api, f"/v1/companies?known_at={value}", "known_at")
        assert message == "expected a log position or an RFC 3339 time with offset", value
    for value in ["2023-02-30T10:00:00Z", "2023-05-01T24:00:00Z", "2023-05-01T10:00:00+24:00"]:
        message = await _refused(api, "/v1/companies", "known_at", params={"known_at": value})
        assert message == f"{value!r} is not a valid time"


async def test_dates_are_calendar_days_or_coarser_dates(api: Api) -> None:
    await api.append(event_in(company="baidu"))
    for value in ["2023-02-30", "2023-04-31", "2023-13-01", "2023-00-10", "0000-01-01", "2023-13"]:
        for path, name in [
            (f"/v1/companies/baidu?as_of={value}", "as_of"),
            (f"/v1/companies/baidu/timeline?as_of={value}", "as_of"),
            (f"/v1/chronology?from={value}", "from"),
            (f"/v1/chronology?to={value}", "to"),
        ]:
            assert await _refused(api, path, name) == f"{value!r} is not a calendar date"
    for value in ["yesterday", "20230501", "2023-5-1", "2023-Q5", "202X", "2023~", "[..2023]"]:
        message = await _refused(api, f"/v1/companies/baidu?as_of={value}", "as_of")
        assert message == "expected a date as YYYY-MM-DD, YYYY-MM, YYYY-Qn or YYYY", value
    for value in ["2023-05-01T00:00:00Z"]:
        await _refused(api, f"/v1/companies/baidu?as_of={value}", "as_of")
    # A coarser as_of is its last day, echoed; every day of the calendar is a day.
    for value, day in [
        ("2024-02-29", "2024-02-29"),
        ("2023", "2023-12-31"),
        ("2023-Q3", "2023-09-30"),
        ("2024-02", "2024-02-29"),
        ("0001-01-01", "0001-01-01"),
        ("9999", "9999-12-31"),
    ]:
        response = await api.client.get(f"/v1/companies/baidu?as_of={value}")
        assert response.status == 200, value
        assert (await response.json())["as_of"] == day


async def test_bad_projection_parameters_name_themselves(api: Api) -> None:
    await api.append({"events": [event_in(company="baidu"), event_in(company="tencent")]})
    cases = [
        ("/v1/companies/baidu?as_of=yesterday", "as_of"),
        ("/v1/companies/baidu?as_of=2023-02-30", "as_of"),
        ("/v1/companies/baidu?as_of=20230501", "as_of"),
        ("/v1/companies/baidu?known_at=soon", "known_at"),
        ("/v1/companies/baidu?known_at=2023-05-01T10:00:00", "known_at"),
        ("/v1/companies/baidu?known_at=-1", "known_at"),
        ("/v1/companies/baidu?include_possible=maybe", "include_possible"),
        ("/v1/companies/baidu/timeline?as_of=2023-Q0", "as_of"),
        ("/v1/companies?known_at=x", "known_at"),
        ("/v1/chronology?limit=0", "limit"),
        ("/v1/chronology?type=rumor", "type"),
    ]
    for path, where in cases:
        await _refused(api, path, where)
    assert await _refused(api, "/v1/chronology?company=Baidu", "company") == (
        "'Baidu' is not a company slug"
    )
    for value in ["true", "TRUE", "1", "false", "0"]:
        response = await api.client.get(f"/v1/companies/baidu?include_possible={value}")
        assert response.status == 200, value
    message = await _refused(api, "/v1/companies/baidu?include_possible=yes", "include_possible")
    assert message == "expected true or false"


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


async def test_a_credential_is_checked_before_the_parameters(api: Api) -> None:
    # An append's token first: without one, or with one of too small a scope, the unknown
    # parameter is not even looked at.
    body = event_in(company="baidu")
    response = await api.client.post("/v1/events?dry_run=1", json=body)
    await problem(response, 401, "unauthorized")
    response = await api.client.post("/v1/events?dry_run=1", json=body, headers=api.auth("read"))
    await problem(response, 403, "forbidden")
    response = await api.client.get("/v1/webhooks?x=1", headers=api.auth("append"))
    await problem(response, 403, "forbidden")
    await _refused(api, "/v1/webhooks?x=1", "x", headers=api.auth("admin"))
    # A read is open, but a credential sent with it is checked all the same, first.
    response = await api.client.get(
        "/v1/events?compnay=baidu", headers={"Authorization": "Bearer nope"}
    )
    await problem(response, 401, "unauthorized")
    await _refused(api, "/v1/events?compnay=baidu", "compnay")
    assert (await api.client.get("/healthz")).status == 200
    assert (await (await api.client.get("/v1/digest")).json())["position"] == 0  # nothing stored


async def test_reads_under_read_auth_are_refused_before_their_parameters(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    api = await make_api(aiohttp_client, tmp_path, read_auth=True)
    await problem(await api.client.get("/v1/events?compnay=baidu"), 401, "unauthorized")
    await problem(await api.client.get("/v1/digest?x="), 401, "unauthorized")
    await _refused(api, "/v1/events?compnay=baidu", "compnay", headers=api.auth("read"))


def _example(path: str) -> str:
    return path.replace("{id}", "00000000-0000-4000-8000-000000000000").replace(
        "{company}", "baidu"
    )


async def test_a_declared_scope_is_enforced_though_the_handler_never_asks(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:  # no authorization of its own
        calls.append(f"{request.method} {request.path_qs}")
        return web.Response(text="ran")

    count = Param("n", {"type": "integer"}, "A number")
    endpoints = [
        Endpoint("GET", "/v1/test/admin", handler, "Admin only", {200: None}, params=(count,),
                 scope="admin"),
        Endpoint("POST", "/v1/test/append", handler, "Appenders", {200: None}, scope="append"),
        Endpoint("GET", "/test/read", handler, "Outside /v1", {200: None}, scope="read"),
    ]  # fmt: skip
    api = await make_api(aiohttp_client, tmp_path, endpoints=endpoints)
    client = api.client
    unknown = {"Authorization": "Bearer nope"}
    refusals = [({}, 401, "unauthorized"), (unknown, 401, "unauthorized")]
    refusals.append((api.auth("read"), 403, "forbidden"))
    for headers, status, name in [*refusals, (api.auth("append"), 403, "forbidden")]:
        await problem(await client.get("/v1/test/admin?m=1", headers=headers), status, name)
    for headers, status, name in refusals:
        await problem(await client.post("/v1/test/append?m=1", headers=headers), status, name)
    assert calls == []  # the handler never ran
    # With the scope, the guard goes on to the parameters, then lets the handler run.
    message = await _refused(api, "/v1/test/admin?m=1", "m", headers=api.auth("admin"))
    assert message == "this endpoint takes no such parameter (it takes: n)"
    response = await client.post("/v1/test/append?m=1", headers=api.auth("append"))
    body = await problem(response, 400, "bad-request")
    assert body["errors"][0]["msg"] == "this endpoint takes no such parameter (it takes: none)"
    assert (await client.get("/v1/test/admin?n=1", headers=api.auth("admin"))).status == 200
    assert (await client.post("/v1/test/append", headers=api.auth("append"))).status == 200
    # Outside /v1 reads are open and their parameters free; a credential sent is checked.
    assert (await client.get("/test/read?anything=1")).status == 200
    await problem(await client.get("/test/read", headers=unknown), 401, "unauthorized")
    assert calls == ["GET /v1/test/admin?n=1", "POST /v1/test/append", "GET /test/read?anything=1"]
    # And so for every endpoint of the API that needs more than a read.
    for endpoint in ENDPOINTS:
        if endpoint.scope in ("append", "admin"):
            path = _example(endpoint.path)
            response = await client.request(endpoint.method, path)
            await problem(response, 401, "unauthorized")
            response = await client.request(endpoint.method, path, headers=api.auth("read"))
            await problem(response, 403, "forbidden")
