"""Requests that HTTP itself cannot parse, sent to a real `timeline serve` over a socket: a
problem document that echoes nothing, and nothing of the value in the server's log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.timeline.test_cli import start

SECRET = b"tl_SECRET-credential"
REQUESTS = [
    (b"GET /v1/events?x=" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"GET /v1/events HTTP/1.1\r\nAuthorization: Bearer " + SECRET * 500 + b"\r\n\r\n", 431),
    (b"GET /v1/events HTTP/1.1\r\n" + SECRET * 500 + b": x\r\n\r\n", 431),
    (
        b"GET /v1/events HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
        431,
    ),
    (b"GET /v1/events HTTP/1.1\r\nHost: t\r\n" + SECRET + b"\r\n\r\n", 400),
    (SECRET + b"\r\n\r\n", 400),
    (b"POST /v1/events HTTP/1.1\r\nContent-Length: " + SECRET + b"\r\n\r\n", 400),
]


async def _exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 30)  # the server closes the connection
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(("raw", "status"), REQUESTS)
async def test_unparseable_requests_get_problems_that_echo_nothing(
    tmp_path: Path, raw: bytes, status: int
) -> None:
    server = await start(f"sqlite:///{tmp_path / 'log.db'}", "--no-seed")
    server.drain()
    try:
        port = urlsplit(server.url).port
        assert port is not None
        got, headers, body = await _exchange(port, raw)
        assert got == status
        assert headers["content-type"].startswith("application/problem+json")
        problem = json.loads(body)
        assert problem["status"] == status
        assert problem["type"].startswith("urn:timeline:problem:")
        assert b"SECRET" not in body and b"aaaa" not in body
        assert len(headers["x-request-id"]) == 32  # as every answer has one
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.process.wait(), 30) == 0
    assert server.drained is not None
    await server.drained
    assert "SECRET" not in server.output


async def test_slow_headers_are_cut_off_and_the_service_goes_on(tmp_path: Path) -> None:
    """Slow-loris: connections that send nothing, or a request line and then headers a byte
    at a time, are closed once their headers are overdue; a normal client is served all along."""
    env = {"TIMELINE_HEADER_TIMEOUT_SECONDS": "1"}
    server = await start(f"sqlite:///{tmp_path / 'log.db'}", "--no-seed", env=env)
    server.drain()
    silent: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    dribbling: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        port = urlsplit(server.url).port
        assert port is not None
        silent += [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        for n in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # Half of them behind a whole request, pipelined in the same write.
            first = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" if n % 2 else b""
            writer.write(first + b"GET /v1/events HTTP/1.1\r\nHost: t\r\n")
            dribbling.append((reader, writer))

        async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
            """Sends a header byte by byte until the server closes the connection; what the
            server sent meanwhile."""
            received = b""
            while True:
                with contextlib.suppress(ConnectionError):  # closed already: read what came
                    writer.write(b"X")
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), 0.1)
                except TimeoutError:
                    continue
                except ConnectionError:  # closed (with our unread bytes: a reset)
                    return received
                if not chunk:
                    return received
                received += chunk

        async with asyncio.timeout(30):
            # A normal client, meanwhile, is answered.
            status, _, body = await _exchange(
                port, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            )
            assert status == 200 and json.loads(body)["status"] == "ok"
            for reader, _ in silent:
                with contextlib.suppress(ConnectionError):
                    assert await reader.read() == b""  # closed, with no answer
            answers = await asyncio.gather(*(dribble(*pair) for pair in dribbling))
            # Closed with no answer to the request they dribble (the pipelined one is answered).
            assert answers[::2] == [b""] * 10
            for answer in answers[1::2]:
                assert answer.count(b"HTTP/1.1 ") == 1 and b'"status": "ok"' in answer
        assert "headers took over 1.0s" in server.output
    finally:
        for _, writer in silent + dribbling:
            writer.close()
        server.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.process.wait(), 30)


async def test_a_stream_whose_client_leaves_is_unsubscribed_at_once(tmp_path: Path) -> None:
    """The subscriber gauge follows disconnects: with pings an hour apart, nothing but the
    lost connection itself can tell the server that the streams are gone."""
    env = {"TIMELINE_FEED_PING_SECONDS": "3600"}
    server = await start(f"sqlite:///{tmp_path / 'log.db'}", "--no-seed", env=env)
    server.drain()

    async def subscribers(http: aiohttp.ClientSession) -> float:
        async with http.get(server.url + "metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            if family.name == "timeline_feed_subscribers":
                return family.samples[0].value
        raise AssertionError("no timeline_feed_subscribers in /metrics")

    async def until(http: aiohttp.ClientSession, count: int) -> None:
        while await subscribers(http) != count:  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.05)

    port = urlsplit(server.url).port
    assert port is not None

    async def open_stream(n: int) -> asyncio.StreamWriter:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /v1/stream?after=0 HTTP/1.1\r\nHost: t\r\nX-Request-ID: s-%d\r\n\r\n" % n
        )
        await reader.readuntil(b"retry: 3000\n")
        return writer

    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            streams = [await open_stream(n) for n in range(5)]
            await until(http, 5)
            for writer in streams[:3]:
                writer.close()
            await until(http, 2)
            for writer in streams[3:]:
                writer.close()
            await until(http, 0)
            # Each stream ended as a request does: with its line in the access log.
            lines = []
            while len(lines) < 5:
                await asyncio.sleep(0.05)
                lines = [
                    json.loads(line)
                    for line in server.output.splitlines()
                    if '"logger": "timeline.access"' in line or '"logger":"timeline.access"' in line
                ]
                lines = [line for line in lines if line.get("route") == "/v1/stream"]
            assert sorted(line["request_id"] for line in lines) == [f"s-{n}" for n in range(5)]
            assert {line["status"] for line in lines} == {200}
    finally:
        server.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.process.wait(), 30)
