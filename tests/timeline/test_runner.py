"""Requests that HTTP itself cannot parse, sent to a real `timeline serve` over a socket: a
problem document that echoes nothing, and nothing of the value in the server's log."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from urllib.parse import urlsplit

import pytest

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
    finally:
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.process.wait(), 30) == 0
    assert server.drained is not None
    await server.drained
    assert "SECRET" not in server.output
