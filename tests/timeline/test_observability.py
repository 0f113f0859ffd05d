"""Observability against real servers: /metrics (parsed as Prometheus does) moving with
appends and reads, route labels that are templates, webhook figures, /metrics behind read
auth; and the JSON log of a real `timeline serve`: one line per request, request ids echoed
and kept, no secret anywhere in the output."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from tests.api import ADMIN, AiohttpClient, Api, make_api, problem
from tests.databases import Database
from tests.factories import event_in
from tests.timeline.test_cli import start
from timeline import logs, metrics
from timeline.app import create_app
from timeline.config import Settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
HEX_ID = re.compile(r"[0-9a-f]{32}")


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(api: Api, headers: dict[str, str] | None = None) -> Samples:
    response = await api.client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/plain"
    return parse(await response.text())


async def test_metrics_move_with_appends_and_reads(api: Api) -> None:
    before = await scrape(api)
    assert value(before, "timeline_log_head") == 0
    assert value(before, "timeline_append_duration_seconds_count") == 0
    assert value(before, "timeline_rate_limited_total", limit="requests") == 0

    first, second = event_in(company="baidu"), event_in(company="baidu")
    batch = {"events": [first, second]}
    answers = []
    for body in (
        batch,  # 201
        batch,  # 200: a retry
        event_in(company="baidu", expected_version=5),  # 409 version-conflict
        {**first, "occurred": "2020"},  # 409 id-conflict
        event_in(type="no.such.type"),  # 422 validation
    ):
        response = await api.client.post("/v1/events", json=body, headers=api.auth())
        answers.append(response.status)
    assert answers == [201, 200, 409, 409, 422]
    (await api.client.get("/v1/events")).release()
    (await api.client.get(f"/v1/events/{first['id']}")).release()
    (await api.client.get("/v1/companies/baidu")).release()
    (await api.client.get("/v1/companies/tencent")).release()  # 404, a known route
    (await api.client.get("/no/such/path")).release()  # 404, no route
    (await api.client.delete("/v1/digest")).release()  # 405

    after = await scrape(api)
    appends = {
        outcome: value(after, "timeline_appends_total", outcome=outcome)
        for outcome in ("created", "replayed", "version-conflict", "id-conflict", "validation")
    }
    assert appends == dict.fromkeys(appends, 1.0)
    events = {
        outcome: value(after, "timeline_append_events_total", outcome=outcome)
        for outcome in ("created", "replayed", "version-conflict", "id-conflict", "validation")
    }
    # The writer counts the events of what reached it; an invalid body never does.
    assert events == {
        "created": 2,
        "replayed": 2,
        "version-conflict": 1,
        "id-conflict": 1,
        "validation": 0,
    }
    assert value(after, "timeline_append_duration_seconds_count") == 5
    assert value(after, "timeline_append_duration_seconds_bucket", le="+Inf") == 5
    assert value(after, "timeline_append_duration_seconds_sum") > 0
    assert value(after, "timeline_append_batch_events_count") == 4
    assert value(after, "timeline_append_batch_events_sum") == 6
    assert value(after, "timeline_append_batch_events_bucket", le="1.0") == 2
    assert value(after, "timeline_append_batch_events_bucket", le="2.0") == 4
    assert value(after, "timeline_log_head") == 2
    assert value(after, "timeline_appended_events_total") == 2
    # One append at a time, each to an idle writer: each of the four is a group of its own.
    assert value(after, "timeline_commit_groups_total") == 4
    assert value(after, "timeline_commit_group_events_count") == 4
    assert value(after, "timeline_commit_group_events_sum") == 6

    def responses(method: str, route: str, status: int) -> float:
        labels = {"method": method, "route": route, "status": str(status)}
        return value(after, "timeline_http_responses_total", **labels)

    assert [responses("POST", "/v1/events", status) for status in (201, 200, 409, 422)] == [
        1,
        1,
        2,
        1,
    ]
    assert responses("GET", "/v1/events", 200) == 1
    assert responses("GET", "/v1/events/{id}", 200) == 1
    assert responses("GET", "/v1/companies/{company}", 200) == 1
    assert responses("GET", "/v1/companies/{company}", 404) == 1
    assert responses("GET", "unmatched", 404) == 1
    assert responses("DELETE", "unmatched", 405) == 1
    assert responses("GET", "/metrics", 200) == 1  # the first scrape
    routes = {
        dict(labels)["route"] for (name, labels) in after if name == "timeline_http_responses_total"
    }
    # Templates only: never an id, a company or a path no route has.
    assert routes == {
        "/metrics",
        "/v1/events",
        "/v1/events/{id}",
        "/v1/companies/{company}",
        "unmatched",
    }
    assert not any(first["id"] in str(key) or "baidu" in str(key) for key in after)
    assert value(after, "timeline_feed_subscribers") == 0

    # The hook another part of the app (rate limiting) calls when it answers 429.
    app = api.client.server.app
    assert app is not None
    app[metrics.HTTP].rate_limited()
    app[metrics.HTTP].rate_limited("streams")
    limited = await scrape(api)
    assert value(limited, "timeline_rate_limited_total", limit="requests") == 1
    assert value(limited, "timeline_rate_limited_total", limit="streams") == 1


async def test_an_open_stream_is_counted_and_carries_the_request_id(api: Api) -> None:
    async with api.client.get("/v1/stream?after=0", headers={"X-Request-ID": "stream-1"}) as s:
        assert s.status == 200
        assert s.headers["X-Request-ID"] == "stream-1"
        samples = await scrape(api)
        assert value(samples, "timeline_feed_subscribers") == 1
    assert value(samples, "timeline_feed_dropped_subscribers_total") == 0


async def test_request_ids_are_kept_when_sane_and_made_otherwise(api: Api) -> None:
    async def answer_id(path: str, incoming: str | None = None) -> tuple[int, str]:
        headers = {"X-Request-ID": incoming} if incoming is not None else {}
        async with api.client.get(path, headers=headers) as response:
            return response.status, response.headers["X-Request-ID"]

    status, made = await answer_id("/healthz")
    assert status == 200 and HEX_ID.fullmatch(made)
    assert (await answer_id("/healthz"))[1] != made
    assert await answer_id("/healthz", "trace-42:a/b c") == (200, "trace-42:a/b c")
    assert await answer_id("/healthz", "x" * 128) == (200, "x" * 128)
    assert HEX_ID.fullmatch((await answer_id("/healthz", "x" * 129))[1])
    assert HEX_ID.fullmatch((await answer_id("/healthz", "tab\there"))[1])
    # Problem documents carry it too: from a handler, from the router, and from a refusal.
    assert await answer_id("/v1/events?limit=0", "bad-query") == (400, "bad-query")
    assert await answer_id("/nowhere", "no-route") == (404, "no-route")
    response = await api.client.post(
        "/v1/events", json=event_in(), headers={"X-Request-ID": "no-token"}
    )
    await problem(response, 401, "unauthorized")
    assert response.headers["X-Request-ID"] == "no-token"


async def test_metrics_need_a_read_token_under_read_auth(
    database: Database, aiohttp_client: AiohttpClient
) -> None:
    api = await make_api(aiohttp_client, database.url, read_auth=True)
    await problem(await api.client.get("/metrics"), 401, "unauthorized")
    bad = {"Authorization": "Bearer tl_not-a-token"}
    await problem(await api.client.get("/metrics", headers=bad), 401, "unauthorized")
    samples = await scrape(api, api.auth("read"))
    assert value(samples, "timeline_log_head") == 0
    assert (
        value(
            samples, "timeline_http_responses_total", method="GET", route="/metrics", status="401"
        )
        == 2
    )
    health = await api.client.get("/healthz")
    assert health.status == 200


class Receiver:
    """Answers 503 to the first delivery, then 204."""

    def __init__(self) -> None:
        self.attempts = 0
        self.accepted: list[int] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.attempts += 1
        if self.attempts == 1:
            return web.Response(status=503, headers={"Retry-After": "0"})
        self.accepted.append(body["position"])
        return web.Response(status=204)


async def test_webhook_deliveries_failures_and_lag(
    database: Database, aiohttp_client: AiohttpClient
) -> None:
    receiver = Receiver()
    sink = web.Application()
    sink.router.add_post("/hook", receiver.handle)
    target = TestServer(sink, host="127.0.0.1")
    await target.start_server()
    try:
        api = await make_api(aiohttp_client, database.url, webhook_backoff_seconds=0.05)
        await api.append({"events": [event_in(company="baidu"), event_in(company="baidu")]})
        created = await api.client.post(
            "/v1/webhooks",
            json={"url": str(target.make_url("/hook")), "after": 0},
            headers=api.auth("admin"),
        )
        assert created.status == 201, await created.text()
        hook = (await created.json())["id"]
        await api.append(event_in(company="tencent"))
        for _ in range(200):
            samples = await scrape(api)
            if value(samples, "timeline_webhook_deliveries_total", webhook=hook) == 3 and (
                ("timeline_webhook_lag_events", frozenset({("webhook", hook)})) in samples
                and value(samples, "timeline_webhook_lag_events", webhook=hook) == 0
            ):
                break
            await asyncio.sleep(0.05)
        assert receiver.accepted == [1, 2, 3]
        assert value(samples, "timeline_webhook_deliveries_total", webhook=hook) == 3
        assert value(samples, "timeline_webhook_failures_total", webhook=hook) == 1
        assert value(samples, "timeline_webhook_lag_events", webhook=hook) == 0
        assert value(samples, "timeline_webhooks_leading") == 1
    finally:
        await target.close()


@contextmanager
def captured(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """What the root logger gets at INFO and above, formatted, meanwhile."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_log_lines_of_a_request_carry_its_id(
    tmp_path: Path, aiohttp_client: AiohttpClient
) -> None:
    async def noisy(request: web.Request) -> web.Response:
        logging.getLogger("timeline.test").info("working on it")
        await asyncio.sleep(0)
        logging.getLogger("timeline.test").warning("still working")
        return web.Response(text="done")

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app = create_app(Settings(db=f"sqlite:///{tmp_path / 'log.db'}"))
    app.router.add_get("/test/noisy", noisy)
    app.router.add_get("/test/broken", broken)
    client = await aiohttp_client(app)
    with captured(logs.JsonFormatter()) as out:
        calls = await asyncio.gather(
            *(client.get("/test/noisy", headers={"X-Request-ID": f"n-{i}"}) for i in range(5))
        )
        failed = await client.get("/test/broken")
        await problem(failed, 500, "internal")
        logging.getLogger("timeline.test").info("outside any request")
    assert all(call.headers["X-Request-ID"] == f"n-{i}" for i, call in enumerate(calls))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    noisy_lines = [line for line in lines if line["logger"] == "timeline.test"]
    assert sorted((line["request_id"], line["message"]) for line in noisy_lines[:-1]) == sorted(
        (f"n-{i}", message) for i in range(5) for message in ("working on it", "still working")
    )
    assert noisy_lines[-1]["message"] == "outside any request"
    assert "request_id" not in noisy_lines[-1]
    (error,) = [line for line in lines if line["logger"] == "timeline.problems"]
    assert error["level"] == "error"
    assert error["request_id"] == failed.headers["X-Request-ID"]
    assert "RuntimeError: boom" in error["exception"]
    assert all(line["time"].endswith("Z") for line in lines)


def test_the_text_format_and_the_redacted_path() -> None:
    record = logging.LogRecord("timeline.x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    token = logs.current.set("abc")
    try:
        assert logs.TextFormatter().format(record).endswith("INFO timeline.x: hello you [abc]")
        line = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.current.reset(token)
    assert line["message"] == "hello you" and line["request_id"] == "abc"
    assert logs.request_id("é") != "é" and logs.request_id("") != ""


async def _get(http: aiohttp.ClientSession, url: str, **headers: str) -> tuple[int, str]:
    async with http.get(url, headers=headers) as response:
        await response.read()
        return response.status, response.headers["X-Request-ID"]


async def test_the_served_log_has_one_json_line_per_request_and_no_secret(
    database: Database,
) -> None:
    env = {"TIMELINE_BOOTSTRAP_TOKEN": ADMIN}
    server = await start(database.url, "--no-seed", env=env)
    server.drain()
    unknown = "tl_UNKNOWN-credential-of-someone"
    sent: list[tuple[str, str, int, str | None]] = []  # method, path, status, request id
    try:
        async with aiohttp.ClientSession() as http:
            base = server.url.rstrip("/")
            status, rid = await _get(http, base + "/healthz")
            sent.append(("GET", "/healthz", status, rid))
            status, rid = await _get(
                http, base + "/v1/events?limit=5", **{"X-Request-ID": "mine-1"}
            )
            assert rid == "mine-1"
            sent.append(("GET", "/v1/events?limit=5", status, rid))
            headers = {"Authorization": f"Bearer {ADMIN}"}
            async with http.post(base + "/v1/events", json=event_in(), headers=headers) as r:
                assert r.status == 201
                sent.append(("POST", "/v1/events", 201, r.headers["X-Request-ID"]))
            status, rid = await _get(http, f"{base}/v1/events?access_token={ADMIN}&limit=1")
            assert status == 200
            sent.append(("GET", "/v1/events?access_token=REDACTED&limit=1", status, rid))
            status, rid = await _get(http, base + "/v1/digest", Authorization=f"Bearer {unknown}")
            assert status == 401
            sent.append(("GET", "/v1/digest", status, rid))
            status, rid = await _get(http, base + "/metrics", Authorization=f"Bearer {ADMIN}")
            assert status == 200
            sent.append(("GET", "/metrics", status, rid))
            status, rid = await _get(http, base + "/v1/events/" + "1" * 200)
            sent.append(("GET", "/v1/events/" + "1" * 200, status, rid))
        # A request HTTP cannot parse: logged without its content (it may hold a credential).
        port = urlsplit(server.url).port
        assert port is not None
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET /v1/events HTTP/1.1\r\nAuthorization: Bearer {unknown}\r\n".encode())
        writer.write(b"X" * 10_000 + b": y\r\n\r\n")
        assert (await asyncio.wait_for(reader.read(), 30)).startswith(b"HTTP/1.0 431 ")
        writer.close()
        sent.append(("UNKNOWN", "/", 431, None))
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.process.wait(), 30) == 0
    assert server.drained is not None
    await server.drained
    output = server.output
    # The lines `timeline serve` prints stay as they were; the log lines are JSON.
    assert re.search(r"^Timeline is serving http://127\.0\.0\.1:\d+/ ", output, re.M)
    assert "Timeline is stopping" in output
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    access = [record for record in records if record["logger"] == "timeline.access"]
    assert [(a["method"], a["path"], a["status"], a["request_id"]) for a in access] == sent
    for line in access:
        assert set(line) >= {"route", "duration_ms", "bytes", "remote", "time", "level"}
        assert line["duration_ms"] >= 0 and line["bytes"] > 0 and line["remote"] == "127.0.0.1"
    assert not [record for record in records if record["level"] not in ("info", "warning")]
    assert [a["route"] for a in access] == [
        "/healthz",
        "/v1/events",
        "/v1/events",
        "/v1/events",
        "/v1/digest",
        "/metrics",
        "/v1/events/{id}",
        "unmatched",
    ]
    assert len({a["request_id"] for a in access}) == len(access)
    # No secret anywhere: neither the token sent as access_token or in Authorization, nor an
    # unknown one.
    for secret in (ADMIN, unknown, "test-admin-secret", "UNKNOWN-credential"):
        assert secret not in output
    assert "Authorization" not in output and "Bearer" not in output


async def test_text_lines_and_no_access_log(tmp_path: Path) -> None:
    for env, expect in (
        ({"TIMELINE_LOG_FORMAT": "text"}, "text"),
        ({"TIMELINE_ACCESS_LOG": "0"}, "none"),
    ):
        server = await start(f"sqlite:///{tmp_path / (expect + '.db')}", "--no-seed", env=env)
        server.drain()
        try:
            async with aiohttp.ClientSession() as http:
                status, rid = await _get(http, server.url + "healthz", **{"X-Request-ID": "t-1"})
                assert (status, rid) == (200, "t-1")
        finally:
            server.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.process.wait(), 30) == 0
        assert server.drained is not None
        await server.drained
        lines = [line for line in server.output.splitlines() if "timeline.access" in line]
        if expect == "none":
            assert lines == []
        else:
            (line,) = lines
            assert " INFO timeline.access: GET /healthz 200 " in line
            assert line.endswith(" from 127.0.0.1 [t-1]")
            assert not line.startswith("{")
