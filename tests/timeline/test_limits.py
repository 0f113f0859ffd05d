"""Rate limits and stream caps (TIMELINE_RATE_LIMIT) against a real server, on each backend."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from prometheus_client.parser import text_string_to_metric_families

from tests.api import AiohttpClient, Api, make_api, problem
from tests.databases import Database
from tests.timeline.test_cli import run
from timeline.limits import Limit


async def limited(api: Api, response: ClientResponse) -> int:
    """A 429 `rate-limited` problem document; its Retry-After, in seconds."""
    await problem(response, 429, "rate-limited")
    return int(response.headers["Retry-After"])


async def refusals(api: Api) -> dict[str, float]:
    text = await (await api.client.get("/metrics")).text()
    return {
        sample.labels["limit"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "timeline_rate_limited"
        for sample in family.samples
        if sample.name == "timeline_rate_limited_total"
    }


async def test_each_client_has_its_own_bucket(
    database: Database, aiohttp_client: AiohttpClient
) -> None:
    # Five at once, then one every ten seconds: the sixth request in a row is refused.
    api = await make_api(aiohttp_client, database.url, rate_limit="0.1,5")
    for _ in range(5):
        assert (await api.client.get("/v1/digest")).status == 200
    assert await limited(api, await api.client.get("/v1/digest")) == 10
    assert await limited(api, await api.client.get("/v1/events?after=0")) == 10
    await api.client.get("/metrics")  # not limited: probes and scrapers
    for _ in range(50):
        assert (await api.client.get("/healthz")).status == 200
    assert (await refusals(api))["requests"] == 2


async def test_known_tokens_are_limited_apart_and_made_up_ones_are_not(
    database: Database, aiohttp_client: AiohttpClient
) -> None:
    api = await make_api(aiohttp_client, database.url, rate_limit="0.1,3")
    # The first request of a token is the address's; once valid, it is counted on its own.
    assert (await api.client.get("/v1/digest", headers=api.auth("read"))).status == 200
    for _ in range(3):
        assert (await api.client.get("/v1/digest", headers=api.auth("read"))).status == 200
    assert await limited(api, await api.client.get("/v1/digest", headers=api.auth("read"))) > 0
    # The append token, seen valid once, has its bucket too; the address has 2 left.
    assert (await api.client.get("/v1/digest", headers=api.auth("append"))).status == 200
    for _ in range(3):
        assert (await api.client.get("/v1/digest", headers=api.auth("append"))).status == 200
    # Made-up tokens buy no buckets: they are the address's, which runs dry.
    statuses = []
    for n in range(4):
        fake = {"Authorization": f"Bearer tl_made_up_{n}"}
        statuses.append((await api.client.get("/v1/digest", headers=fake)).status)
    assert statuses == [401, 429, 429, 429]
    got = await api.client.get(f"/v1/digest?access_token={api.tokens['read']}")
    assert got.status == 429  # the read token's bucket, whichever way it is sent


@contextlib.asynccontextmanager
async def open_stream(api: Api, headers: dict[str, str]) -> AsyncIterator[ClientResponse]:
    async with api.client.get("/v1/stream", headers=headers) as response:
        yield response


async def test_open_streams_are_capped_per_client(
    database: Database, aiohttp_client: AiohttpClient
) -> None:
    api = await make_api(
        aiohttp_client, database.url, rate_limit="1000", stream_limit=2, feed_ping_seconds=0.05
    )
    read, admin = api.auth("read"), api.auth("admin")
    await api.client.get("/v1/digest", headers=read)  # each token seen valid once
    await api.client.get("/v1/digest", headers=admin)
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(2):
            stream = await stack.enter_async_context(open_stream(api, read))
            assert stream.status == 200
            assert await stream.content.readline() == b"retry: 3000\n"
        async with open_stream(api, read) as third:
            assert await limited(api, third) == 5
        async with open_stream(api, admin) as other:  # another client's streams are its own
            assert other.status == 200
    # Once they are closed (the server finds out at its next ping), the client may again.
    async with asyncio.timeout(30):
        while True:
            async with open_stream(api, read) as again:
                if again.status == 200:
                    break
                await limited(api, again)
            await asyncio.sleep(0.05)
    assert (await refusals(api))["streams"] >= 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [("50", Limit(50, 50, 20)), ("0.5", Limit(0.5, 1, 20)), ("50, 200", Limit(50, 200, 20))],
)
def test_limit_parse(text: str, expected: Limit) -> None:
    assert Limit.parse(text, 20) == expected


@pytest.mark.parametrize("text", ["", "fast", "0", "-1", "5,0", "1,2,3", "inf", "nan,3"])
def test_a_bad_limit_is_refused_at_start(text: str, tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="TIMELINE_RATE_LIMIT"):
        Limit.parse(text, 20)


def test_serve_refuses_a_bad_limit(tmp_path: Any) -> None:
    db = f"sqlite:///{tmp_path / 'log.db'}"
    code, out, err = run(
        "serve", "--db", db, "--port", "0", "--no-seed", env={"TIMELINE_RATE_LIMIT": "lots"}
    )
    assert code == 2 and "TIMELINE_RATE_LIMIT='lots'" in err and "serving" not in out


def test_an_ipv6_host_is_one_client_for_its_whole_64() -> None:
    from timeline.limits import _network

    assert _network("2001:db8:1:2::1") == _network("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert _network("2001:db8:1:3::1") != _network("2001:db8:1:2::1")
    assert _network("::ffff:192.0.2.7") == "192.0.2.7" == _network("192.0.2.7")
    assert _network("192.0.2.8") != _network("192.0.2.7")


def test_the_buckets_are_bounded_and_the_least_recently_used_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from timeline import limits

    monkeypatch.setattr(limits, "MAX_CLIENTS", 3)
    limiter = limits.Limiter(Limit(0.001, 1, 1))
    for client in ("a", "b", "c"):
        assert limiter.take(client) == 0  # each spends its one request
    assert limiter.take("a") > 0  # "a" is now the most recently used
    assert limiter.take("d") == 0  # a fourth client: "b", the least recently used, goes
    assert limiter.take("a") > 0 and limiter.take("c") > 0  # still remembered: still empty
    assert limiter.take("b") == 0  # forgotten: a full bucket again
