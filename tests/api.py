"""A real server on 127.0.0.1 for tests, with tokens of each scope, and problem checks."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from timeline import models
from timeline.app import create_app
from timeline.auth import create_token
from timeline.config import Settings
from timeline.endpoints import guarded
from timeline.keys import STORE
from timeline.openapi import Endpoint

ADMIN = "tl_test-admin-secret"
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


class Api:
    """A real server on 127.0.0.1 and a client with tokens of each scope."""

    def __init__(self, client: TestClient[Any, Any], tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def auth(self, scope: str = "append") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[scope]}"}

    async def append(self, body: Any, scope: str = "append") -> Any:
        response = await self.client.post("/v1/events", json=body, headers=self.auth(scope))
        assert response.status in (200, 201), await response.text()
        return (await response.json())["events"]


async def make_api(
    aiohttp_client: AiohttpClient,
    db: str | Path,
    *,
    endpoints: Sequence[Endpoint] = (),
    **settings: Any,
) -> Api:
    """A server on the database URL `db` (or a new SQLite file in the directory `db`); with
    `endpoints` beside the API's, behind the same guard."""
    url = db if isinstance(db, str) else f"sqlite:///{db / 'api.db'}"
    app = create_app(Settings(db=url, bootstrap_token=ADMIN, **settings))
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, guarded(endpoint))
    client = await aiohttp_client(app)
    store = app[STORE]
    tokens = {"admin": ADMIN}
    for scope in ("read", "append"):
        tokens[scope] = await create_token(store, scope)  # type: ignore[arg-type]
    return Api(client, tokens)


async def problem(response: ClientResponse, status: int, name: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    assert body["type"] == f"urn:timeline:problem:{name}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    text = json.dumps(body)
    assert "Traceback" not in text
    assert "SELECT" not in text
    models.Problem.model_validate(body)
    return body
