"""Bearer tokens: the Authorization header parsed as RFC 6750 says, and `timeline token`
create, list and revoke against a real server on each backend."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api import ADMIN, Api, problem
from tests.databases import Database
from tests.timeline.test_cli import Server, run, start

ACCEPTED = ["Bearer {t}", "bearer {t}", "BEARER {t}", "Bearer    {t}", " Bearer {t} "]
REFUSED = [
    "Bearer\u00a0{t}",  # a no-break space is not a space
    "Bearer {t}\u00a0",
    "\u2003Bearer {t}",
    "Bearer\t{t}",
    "Bearer {t} x",
    "Bearer {t},",
    'Bearer "{t}"',
    "Basic {t}",
    "Bearer",
    "Bearer ",
    "{t}",
]


@pytest.mark.parametrize("form", ACCEPTED)
async def test_the_bearer_scheme_as_rfc_6750_writes_it(api: Api, form: str) -> None:
    header = form.format(t=api.tokens["read"])
    response = await api.client.get("/v1/events", headers={"Authorization": header})
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("form", REFUSED)
async def test_anything_else_around_the_token_is_401(api: Api, form: str) -> None:
    header = form.format(t=api.tokens["read"])
    response = await api.client.get("/v1/events", headers={"Authorization": header})
    body = await problem(response, 401, "unauthorized")
    assert api.tokens["read"] not in str(body)


def test_token_commands_refuse_a_database_that_is_not_there(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    for command in (["create", "--scope", "read"], ["list"], ["revoke", "0" * 12]):
        code, out, err = run("token", *command, "--db", f"sqlite:///{missing}")
        assert code == 2, (command, out, err)
        assert "no database" in err
        assert not missing.exists()


@pytest.fixture
async def served(database: Database) -> AsyncIterator[Server]:
    server = await start(database.url, "--no-seed", env={"TIMELINE_BOOTSTRAP_TOKEN": ADMIN})
    server.drain()
    server.db = database.url
    yield server
    server.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(server.process.wait(), 30) == 0


def _listed(db: str) -> dict[str, list[str]]:
    code, out, err = run("token", "list", "--db", db)
    assert code == 0, err
    header, *lines = out.splitlines()
    assert header.split()[:3] == ["id", "scope", "created"]
    return {line.split()[0]: line.split() for line in lines}


async def test_list_shows_use_and_revoke_stops_a_running_server(served: Server) -> None:
    code, secret, err = run(
        "token", "create", "--scope", "read", "--label", "grafana", "--db", served.db
    )
    assert code == 0, err
    secret = secret.strip()
    tokens = _listed(served.db)
    assert len(tokens) == 2  # the bootstrap token and this one
    (token_id,) = [i for i, fields in tokens.items() if fields[-1] == "grafana"]
    assert re.fullmatch(r"[0-9a-f]{12}", token_id)
    created = tokens[token_id]
    assert created[1] == "read" and created[3] == "-" and created[4] == "-"
    listing = "\n".join(" ".join(fields) for fields in tokens.values())
    assert secret not in listing and ADMIN not in listing
    headers = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{served.url}v1/events", headers=headers)).status_code == 200
        while _listed(served.db)[token_id][3] == "-":  # noqa: ASYNC110 (written in the background)
            await asyncio.sleep(0.1)
        code, out, err = run("token", "revoke", token_id, "--db", served.db)
        assert code == 0, err
        assert out.startswith(f"revoked token {token_id} (read) at ")
        assert _listed(served.db)[token_id][4] != "-"
        # The server trusts what it has checked for a few seconds, then asks again.
        for _ in range(200):
            response = await http.get(f"{served.url}v1/events", headers=headers)
            if response.status_code == 401:
                break
            assert response.status_code == 200
            await asyncio.sleep(0.1)
        assert response.status_code == 401
        assert response.json()["type"] == "urn:timeline:problem:unauthorized"
        # Other tokens are untouched; revoking again says so; an unknown id is an error.
        admin = {"Authorization": f"Bearer {ADMIN}"}
        assert (await http.get(f"{served.url}v1/events", headers=admin)).status_code == 200
    code, out, _ = run("token", "revoke", token_id, "--db", served.db)
    assert code == 0 and out.startswith(f"revoked token {token_id}")
    code, _, err = run("token", "revoke", "f" * 12, "--db", served.db)
    assert code == 2 and "no token has the id" in err
