"""Webhooks against a real receiver on 127.0.0.1: retries, signatures, order, restarts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from events.errors import ValidationFailed
from tests.databases import Database
from tests.factories import event_in
from timeline.app import create_app
from timeline.config import Settings
from timeline.hooks import WebhookIn

TOKEN = "tl_hooks"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


class Receiver:
    """Fails the first `failures` attempts (500, then 503 with Retry-After), then accepts;
    checks every signature the Standard Webhooks way."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.accepted: list[int] = []
        self.secret = ""
        self.bad_signatures = 0
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.attempts += 1
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{request.headers['webhook-id']}.{request.headers['webhook-timestamp']}."
        expected = hmac.new(key, signed.encode() + body, hashlib.sha256).digest()
        scheme, _, signature = request.headers["webhook-signature"].partition(",")
        if scheme != "v1" or not hmac.compare_digest(base64.b64decode(signature), expected):
            self.bad_signatures += 1
            return web.Response(status=400)
        if self.failures > 0:
            self.failures -= 1
            if self.failures % 2:
                return web.Response(status=500)
            return web.Response(status=503, headers={"Retry-After": "0"})
        event = json.loads(body)
        assert str(event["position"]) == request.headers["webhook-id"]
        self.accepted.append(event["position"])
        self.arrived.set()
        await asyncio.sleep(0.01)
        return web.Response(status=204)


async def receiving(receiver: Receiver) -> TestServer:
    """A real server on 127.0.0.1 whose POST /hook is the receiver's."""
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    target = TestServer(app, host="127.0.0.1")
    await target.start_server()
    return target


async def serve(database: Database) -> TestServer:
    app = create_app(
        Settings(
            db=database.url,
            bootstrap_token=TOKEN,
            webhook_backoff_seconds=0.05,
        )
    )
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_retried_signed_in_order_once_each_across_a_restart(database: Database) -> None:
    receiver = Receiver(failures=4)
    target = await receiving(receiver)
    server = await serve(database)
    http = httpx.AsyncClient(timeout=30)
    try:
        base = f"http://127.0.0.1:{server.port}"
        await http.post(base + "/v1/events", json=event_in(company="baidu"), headers=ADMIN)
        created = await http.post(
            base + "/v1/webhooks",
            json={"url": f"http://127.0.0.1:{target.port}/hook", "company": ["baidu"], "after": 0},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        hook = created.json()
        assert hook["secret"].startswith("whsec_")
        receiver.secret = hook["secret"]
        appended = []
        for n in range(30):
            company = "baidu" if n % 3 else "tencent"
            response = await http.post(
                base + "/v1/events", json=event_in(company=company), headers=ADMIN
            )
            appended.append(response.json()["events"][0])
        while len(receiver.accepted) < 5:
            receiver.arrived.clear()
            await asyncio.wait_for(receiver.arrived.wait(), 30)
        await server.close()  # mid-delivery: some events are still waiting

        server = await serve(database)
        base = f"http://127.0.0.1:{server.port}"
        for _ in range(5):
            response = await http.post(
                base + "/v1/events", json=event_in(company="baidu"), headers=ADMIN
            )
            appended.append(response.json()["events"][0])
        expected = [1] + [e["position"] for e in appended if e["company"] == "baidu"]
        while receiver.accepted != expected:
            receiver.arrived.clear()
            await asyncio.wait_for(receiver.arrived.wait(), 30)
        shown = (await http.get(f"{base}/v1/webhooks/{hook['id']}", headers=ADMIN)).json()
        assert "secret" not in shown
        # The position acknowledged catches up with the last delivery.
        async with asyncio.timeout(30):
            while shown["acknowledged"] < expected[-1]:
                await asyncio.sleep(0.05)
                shown = (await http.get(f"{base}/v1/webhooks/{hook['id']}", headers=ADMIN)).json()
        assert shown["acknowledged"] >= expected[-1]
        assert receiver.bad_signatures == 0
        assert receiver.attempts == len(expected) + 4
        deleted = await http.delete(f"{base}/v1/webhooks/{hook['id']}", headers=ADMIN)
        assert deleted.status_code == 204
        gone = await http.get(f"{base}/v1/webhooks/{hook['id']}", headers=ADMIN)
        assert gone.status_code == 404
    finally:
        await http.aclose()
        await server.close()
        await target.close()


async def test_410_disables_and_bad_requests_are_refused(database: Database) -> None:
    app = web.Application()
    app.router.add_post("/gone", _gone)
    target = TestServer(app, host="127.0.0.1")
    await target.start_server()
    server = await serve(database)
    http = httpx.AsyncClient(timeout=30)
    try:
        base = f"http://127.0.0.1:{server.port}"
        await http.post(base + "/v1/events", json=event_in(company="baidu"), headers=ADMIN)
        url = f"http://127.0.0.1:{target.port}/gone"
        hook = (
            await http.post(base + "/v1/webhooks", json={"url": url, "after": 0}, headers=ADMIN)
        ).json()
        shown: dict[str, Any] = {}
        async with asyncio.timeout(30):  # until the delivery has met the 410
            while not shown.get("disabled"):
                await asyncio.sleep(0.05)
                shown = (await http.get(f"{base}/v1/webhooks/{hook['id']}", headers=ADMIN)).json()
        assert "410" in shown["disabled"]
        assert shown["acknowledged"] == 0
        append_token = await http.post(
            base + "/v1/webhooks", json={"url": url}, headers={"Authorization": "Bearer nope"}
        )
        assert append_token.status_code == 401
        for body, status in [
            ({"url": "not a url"}, 422),
            ({"url": url, "colour": "red"}, 422),
            ({"url": url, "after": 99}, 409),
        ]:
            response = await http.post(base + "/v1/webhooks", json=body, headers=ADMIN)
            assert response.status_code == status, body
    finally:
        await http.aclose()
        await server.close()
        await target.close()


async def _gone(request: web.Request) -> web.Response:
    return web.Response(status=410)


def test_a_body_that_is_not_a_webhook_raises_validation_failed() -> None:
    assert WebhookIn.from_json(b'{"url": "http://127.0.0.1/h", "after": 3}').after == 3
    for body, loc in [
        (b"{", ["body"]),
        (b'{"url": "http://127.0.0.1/h", "after": NaN}', ["body"]),
        (b'{"url": "not a url"}', ["body", "url"]),
        (b'{"url": "http://127.0.0.1/h", "colour": "red"}', ["body", "colour"]),
        (b'{"url": "http://127.0.0.1/h", "after": -1}', ["body", "after"]),
    ]:
        with pytest.raises(ValidationFailed) as raised:
            WebhookIn.from_json(body)
        assert raised.value.status == 422
        assert raised.value.errors is not None
        assert raised.value.errors[0]["loc"] == loc, body


async def test_a_type_filter_delivers_the_amendments_of_what_it_passes(database: Database) -> None:
    receiver = Receiver(failures=0)
    target = await receiving(receiver)
    server = await serve(database)
    http = httpx.AsyncClient(timeout=30)
    base = f"http://127.0.0.1:{server.port}"

    async def append(body: dict[str, Any]) -> dict[str, Any]:
        response = await http.post(base + "/v1/events", json=body, headers=ADMIN)
        assert response.status_code == 201, response.text
        event: dict[str, Any] = response.json()["events"][0]
        return event

    try:
        launch = await append(event_in(company="baidu", type="model.launched"))
        team = await append(event_in(company="baidu", type="team.formed", data={"name": "Lab"}))
        created = await http.post(
            base + "/v1/webhooks",
            json={"url": f"http://127.0.0.1:{target.port}/hook", "type": ["model.launched"]},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        receiver.secret = created.json()["secret"]
        wanted = []
        for kind, of in [
            ("event.retracted", team),
            ("event.retracted", launch),
            ("event.corrected", team),
            ("event.reinstated", launch),
        ]:
            data: dict[str, Any] = {"target": of["id"], "reason": "r"}
            if kind == "event.corrected":
                data = {"target": of["id"], "occurred": "2023-06"}
            amendment = await append(event_in(company="baidu", type=kind, data=data))
            if of is launch:
                wanted.append(amendment["position"])
        last = await append(event_in(company="tencent", type="model.launched"))
        wanted.append(last["position"])
        while receiver.accepted != wanted:
            assert len(receiver.accepted) < len(wanted), receiver.accepted
            receiver.arrived.clear()
            await asyncio.wait_for(receiver.arrived.wait(), 30)
    finally:
        await http.aclose()
        await server.close()
        await target.close()


async def test_deleting_webhooks_while_appending_ends_each_delivery(database: Database) -> None:
    """A delete stops its webhook's delivery task and answers, however busy the log: on
    PostgreSQL a cancellation could be lost in the driver's pool (Python 3.11), and the
    delete waited for ever on a task that had gone back to waiting for commits."""
    server = await serve(database)
    http = httpx.AsyncClient(timeout=30)
    base = f"http://127.0.0.1:{server.port}"
    appending = True

    async def append() -> None:
        while appending:
            response = await http.post(base + "/v1/events", json=event_in(), headers=ADMIN)
            assert response.status_code == 201

    try:
        hooks = []
        for _ in range(40):
            spec = {"url": "http://127.0.0.1:9/never", "company": ["nobody"]}
            created = await http.post(base + "/v1/webhooks", json=spec, headers=ADMIN)
            hooks.append(created.json()["id"])
        writers = [asyncio.create_task(append()) for _ in range(3)]
        async with asyncio.timeout(120):
            for hook in hooks:
                deleted = await http.delete(f"{base}/v1/webhooks/{hook}", headers=ADMIN)
                assert deleted.status_code == 204
        appending = False
        await asyncio.gather(*writers)
        listed = await http.get(base + "/v1/webhooks", headers=ADMIN)
        assert listed.json() == {"webhooks": []}
    finally:
        await http.aclose()
        await server.close()
