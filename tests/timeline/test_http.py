"""The write/read half of API.md through a real aiohttp server."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

from projections.fold import STATE_LISTS
from tests.api import AiohttpClient, Api, make_api, problem
from tests.factories import event_in
from timeline import models
from timeline.keys import WRITER


async def test_append_one_and_read_it_back(api: Api) -> None:
    body = event_in(
        company="alibaba",
        type="ceo.letter",
        occurred="2023-09-12",
        data={"author": "Eddie Wu", "role": "CEO", "summary": "AI-driven and user-first"},
        source={"publisher": "Alibaba", "quote": "letter to all employees"},
        confidence="confirmed",
    )
    response = await api.client.post("/v1/events", json=body, headers=api.auth())
    assert response.status == 201
    created = models.EventsCreated.model_validate(await response.json()).events
    (event,) = created
    assert event.id == body["id"]
    assert (event.position, event.version) == (1, 1)
    assert event.occurred.model_dump() == {
        "value": "2023-09-12",
        "precision": "day",
        "lo": "2023-09-12",
        "hi": "2023-09-13",
    }
    assert event.data == body["data"]
    assert event.recorded.endswith("Z")
    assert len(event.recorded) == len("2026-11-25T14:39:27.123456Z")

    page = await (await api.client.get("/v1/events")).json()
    models.EventsPage.model_validate(page)
    assert page["events"] == (await response.json())["events"]
    assert (page["next"], page["head"]) == (None, 1)

    detail = await (await api.client.get(f"/v1/events/{event.id}")).json()
    models.EventDetail.model_validate(detail)
    assert detail["event"] == page["events"][0]
    assert detail["amendments"] == []

    digest = await (await api.client.get("/v1/digest")).json()
    assert digest == {"position": 1, "hash": event.hash, "recorded": event.recorded}
    assert await (await api.client.get("/healthz")).json() == {"status": "ok", "head": 1, "hub": 1}


async def test_empty_log_digest(api: Api) -> None:
    digest = await (await api.client.get("/v1/digest")).json()
    assert digest == {"position": 0, "hash": "0" * 64, "recorded": None}
    page = await (await api.client.get("/v1/events")).json()
    assert page == {"events": [], "next": None, "head": 0}


async def test_batch_is_stored_in_request_order(api: Api) -> None:
    bodies = [event_in(company=c) for c in ("baidu", "tencent", "baidu")]
    events = await api.append({"events": bodies})
    assert [e["id"] for e in events] == [b["id"] for b in bodies]
    assert [(e["position"], e["version"]) for e in events] == [(1, 1), (2, 1), (3, 2)]


async def test_the_chain_checks_out_from_the_api_alone(api: Api) -> None:
    await api.append({"events": [event_in(company=f"c{i % 3}") for i in range(7)]})
    await api.append(
        event_in(
            company="c1",
            type="financial.report",
            data={"period": "2023-Q3", "metrics": [{"name": "营收", "value": 1546.25}]},
        )
    )
    page = await (await api.client.get("/v1/events")).json()
    previous = bytes(32)
    for event in page["events"]:
        fields = {k: v for k, v in event.items() if k != "hash"}
        text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        entry = hashlib.sha256(text.encode()).digest()
        assert hashlib.sha256(previous + entry).hexdigest() == event["hash"]
        previous = bytes.fromhex(event["hash"])
    digest = await (await api.client.get("/v1/digest")).json()
    assert digest["hash"] == previous.hex()


async def test_retry_is_200_with_the_original_events(api: Api) -> None:
    body = {"events": [event_in(company="baidu", expected_version=0), event_in()]}
    first = await api.client.post("/v1/events", json=body, headers=api.auth())
    assert first.status == 201
    again = await api.client.post("/v1/events", json=body, headers=api.auth())
    assert again.status == 200
    assert await again.json() == await first.json()


async def test_401_without_or_with_an_unknown_token(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = await api.client.post("/v1/events", json=event_in(), headers=headers)
        await problem(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_401_comes_before_413(api: Api) -> None:
    response = await api.client.post("/v1/events", data=io.BytesIO(b"x" * (2 * 1024 * 1024)))
    await problem(response, 401, "unauthorized")


async def test_403_for_a_read_token(api: Api) -> None:
    response = await api.client.post("/v1/events", json=event_in(), headers=api.auth("read"))
    body = await problem(response, 403, "forbidden")
    assert "append" in body["detail"]
    admin = await api.client.post("/v1/events", json=event_in(), headers=api.auth("admin"))
    assert admin.status == 201


async def test_413_over_one_mebibyte(api: Api) -> None:
    big = {"events": [event_in(type="ceo.letter", data={"author": "a", "summary": "s" * 19_000})]}
    big["events"] *= 60
    response = await api.client.post(
        "/v1/events",
        data=io.BytesIO(json.dumps(big).encode()),
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    await problem(response, 413, "too-large")
    chunked = await api.client.post(
        "/v1/events",
        data=_chunks(json.dumps(big).encode()),
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    await problem(chunked, 413, "too-large")
    head = await (await api.client.get("/healthz")).json()
    assert head["head"] == 0


async def _chunks(data: bytes) -> Any:
    for start in range(0, len(data), 65536):
        yield data[start : start + 65536]


async def test_422_names_what_is_wrong(api: Api) -> None:
    cases: list[tuple[Any, list[Any]]] = [
        (b"{not json", ["body"]),
        (b'{"type": "model.launched", "value": NaN}', ["body"]),
        (b"[]", ["body"]),
        ({**event_in(), "colour": "red"}, ["body", "colour"]),
        ({**event_in(), "occurred": "sometime"}, ["body", "occurred"]),
        (event_in(data={"stage": "public"}), ["body", "data", "model"]),
        (
            {"events": [event_in(), {**event_in(), "company": "A"}]},
            ["body", "events", 1, "company"],
        ),
        ({"events": [event_in() for _ in range(1001)]}, ["body", "events"]),
    ]
    for body, loc in cases:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await api.client.post(
            "/v1/events", data=raw, headers={**api.auth(), "Content-Type": "application/json"}
        )
        found = await problem(response, 422, "validation")
        assert loc in [error["loc"] for error in found["errors"]], (body, found)
    twice = event_in()
    response = await api.client.post(
        "/v1/events", json={"events": [twice, twice]}, headers=api.auth()
    )
    found = await problem(response, 422, "validation")
    assert found["errors"][0]["loc"] == ["body", "events", 1, "id"]
    assert (await (await api.client.get("/healthz")).json())["head"] == 0


async def test_422_for_an_amendment_without_a_valid_target(api: Api) -> None:
    (launch,) = await api.append(event_in(company="baidu"))
    cases = [
        event_in(
            company="baidu",
            type="event.retracted",
            data={"target": event_in()["id"], "reason": "x"},
        ),
        event_in(
            company="alibaba", type="event.retracted", data={"target": launch["id"], "reason": "x"}
        ),
        event_in(
            company="baidu",
            type="event.corrected",
            data={"target": launch["id"], "data": {"model": "ERNIE", "stage": "gone"}},
        ),
    ]
    for body in cases:
        response = await api.client.post("/v1/events", json=body, headers=api.auth())
        found = await problem(response, 422, "validation")
        assert found["errors"][0]["loc"][:2] == ["body", "data"]


async def test_409_id_conflict(api: Api) -> None:
    body = event_in(company="baidu")
    await api.append(body)
    response = await api.client.post(
        "/v1/events", json={**body, "occurred": "2023-06"}, headers=api.auth()
    )
    await problem(response, 409, "id-conflict")
    mixed = {"events": [body, event_in()]}
    response = await api.client.post("/v1/events", json=mixed, headers=api.auth())
    await problem(response, 409, "id-conflict")
    assert (await (await api.client.get("/healthz")).json())["head"] == 1


async def test_409_version_conflict_names_company_and_version(api: Api) -> None:
    await api.append({"events": [event_in(company="baidu"), event_in(company="baidu")]})
    stale = event_in(company="baidu", expected_version=1)
    response = await api.client.post("/v1/events", json=stale, headers=api.auth())
    body = await problem(response, 409, "version-conflict")
    assert (body["company"], body["current_version"], body["id"]) == ("baidu", 2, stale["id"])
    ok = await api.client.post(
        "/v1/events", json=event_in(company="baidu", expected_version=2), headers=api.auth()
    )
    assert ok.status == 201


async def test_404s(api: Api) -> None:
    for path in ("/v1/events/not-a-uuid", f"/v1/events/{event_in()['id']}", "/v1/nothing"):
        await problem(await api.client.get(path), 404, "not-found")


async def test_405_is_a_problem_too(api: Api) -> None:
    response = await api.client.delete("/v1/events")
    await problem(response, 405, "bad-request")
    assert "POST" in response.headers["Allow"]


async def test_503_once_the_writer_has_stopped(api: Api) -> None:
    await api.client.app[WRITER].stop()
    response = await api.client.post("/v1/events", json=event_in(), headers=api.auth())
    await problem(response, 503, "unavailable")
    assert response.headers["Retry-After"] == "1"


async def test_paging_and_filters(api: Api) -> None:
    companies = ["baidu", "tencent", "alibaba"]
    await api.append({"events": [event_in(company=companies[i % 3]) for i in range(10)]})
    page = await (await api.client.get("/v1/events?limit=4")).json()
    assert [e["position"] for e in page["events"]] == [1, 2, 3, 4]
    assert (page["next"], page["head"]) == (4, 10)
    page = await (await api.client.get("/v1/events?after=8&limit=4")).json()
    assert [e["position"] for e in page["events"]] == [9, 10]
    assert page["next"] is None
    page = await (await api.client.get("/v1/events?company=baidu&company=alibaba&limit=3")).json()
    assert [e["position"] for e in page["events"]] == [1, 3, 4]
    assert page["next"] == 4
    page = await (await api.client.get("/v1/events?company=tencent&after=5")).json()
    assert [e["position"] for e in page["events"]] == [8]
    assert (page["next"], page["head"]) == (None, 10)


async def test_reads_can_require_a_token(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    api = await make_api(aiohttp_client, tmp_path, read_auth=True)
    await problem(await api.client.get("/v1/events"), 401, "unauthorized")
    assert (await api.client.get("/v1/events", headers=api.auth("read"))).status == 200
    assert (await api.client.get("/healthz")).status == 200


async def test_concurrent_appends_get_gapless_positions(api: Api) -> None:
    async def one(i: int) -> int:
        (event,) = await api.append(event_in(company=f"c{i % 7}"))
        return int(event["position"])

    positions = await asyncio.gather(*(one(i) for i in range(300)))
    assert sorted(positions) == list(range(1, 301))


async def test_openapi_describes_every_endpoint(api: Api) -> None:
    document = await (await api.client.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    for path, method in [
        ("/v1/events", "post"),
        ("/v1/events", "get"),
        ("/v1/events/{id}", "get"),
        ("/v1/digest", "get"),
        ("/healthz", "get"),
        ("/v1/companies", "get"),
        ("/v1/companies/{company}", "get"),
        ("/v1/companies/{company}/timeline", "get"),
        ("/v1/chronology", "get"),
        ("/v1/stream", "get"),
        ("/v1/webhooks", "post"),
        ("/v1/webhooks/{id}", "delete"),
        ("/metrics", "get"),
    ]:
        assert method in document["paths"][path]
    post = document["paths"]["/v1/events"]["post"]
    assert post["security"] == [{"bearer": ["append"]}]
    assert set(post["responses"]) >= {"200", "201", "401", "403", "409", "413", "422"}
    schemas = document["components"]["schemas"]
    assert "RecordedEvent" in schemas
    assert "CompanyState" in schemas
    assert "WebhookIn" in schemas
    assert "ModelLaunched" in schemas
    assert schemas["EventBatchIn"]["properties"]["events"]["maxItems"] == 1000

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


async def test_openapi_describes_the_1_1_extensions(api: Api) -> None:
    document = await (await api.client.get("/openapi.json")).json()
    schemas, paths = document["components"]["schemas"], document["paths"]

    def parameters(path: str) -> dict[str, Any]:
        return {p["name"]: p for p in paths[path]["get"]["parameters"]}

    changes = parameters("/v1/changes")
    assert changes["since"]["required"] and not changes["until"]["required"]
    assert {"company", "type", "limit", "cursor"} <= set(changes)
    company = parameters("/v1/companies/{company}/changes")
    assert company["since"]["required"] and {"until", "as_of"} <= set(company)
    ok = paths["/v1/changes"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/ChangesPage")
    assert schemas["LogChange"]["properties"]["kind"]["enum"] == [
        "added",
        "corrected",
        "retracted",
        "reinstated",
    ]
    assert {"added", "removed", "changed", "since", "until"} <= set(
        schemas["CompanyChanges"]["properties"]
    )
    assert {"since", "until"} <= set(schemas["ChangesPage"]["required"])
    lists = schemas["ListChange"]["properties"]["list"]
    lists = schemas[lists["$ref"].rsplit("/", 1)[1]] if "$ref" in lists else lists
    assert lists["enum"] == [*STATE_LISTS, "possible"]
    # Executives: the two types, and the list with its possible departure.
    assert {"person", "role"} <= set(schemas["ExecutiveDeparted"]["required"])
    assert "successor" in schemas["ExecutiveDeparted"]["properties"]
    assert "ExecutiveAppointedIn" in schemas
    assert "departure" in schemas["ExecutiveItem"]["properties"]
    assert "executives" in schemas["CompanyState"]["required"]
    # The date forms: every precision, and a coarser as_of, from and to.
    assert set(schemas["Occurred"]["properties"]["precision"]["enum"]) >= {
        "decade",
        "on_or_before",
        "between",
    }
    pattern = parameters("/v1/companies/{company}")["as_of"]["schema"]["pattern"]
    for day in ["2023", "2023-Q3", "2023-05", "2023-05-17"]:
        assert re.fullmatch(pattern.strip("^$"), day), day


async def test_hostile_bodies_get_422_not_500(api: Api) -> None:
    target = event_in()["id"]
    deep = {"type": "event.corrected", "company": "a", "occurred": "2023"}
    for raw in (
        b"[" * 200_000 + b"]" * 200_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b"\xff\xfe{}",
        json.dumps({**deep, "data": {"target": target, "data": {"x": [[[[[[1]]]]]] * 10}}})
        .encode()
        .replace(b"1", b"[" * 5000 + b"1" + b"]" * 5000, 1),
    ):
        response = await api.client.post(
            "/v1/events",
            data=io.BytesIO(raw),
            headers={**api.auth(), "Content-Type": "application/json"},
        )
        await problem(response, 422, "validation")
