"""Webhooks against a real receiver on 127.0.0.1: retries, signatures, order, restarts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.databases import Database
from tests.factories import event_in
from timeline.app import create_app
from timeline.config import Settings

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
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    target = TestServer(app, host="127.0.0.1")
    await target.start_server()
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
        for _ in range(50):  # the position acknowledged catches up with the last delivery
            if shown["acknowledged"] >= expected[-1]:
                break
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
        for _ in range(100):
            shown = (await http.get(f"{base}/v1/webhooks/{hook['id']}", headers=ADMIN)).json()
            if shown["disabled"]:
                break
            await asyncio.sleep(0.05)
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
