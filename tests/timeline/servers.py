"""`timeline serve` processes for tests that kill and restart them: a start is bounded, and one
that does not finish in time is ended with the tracebacks of its threads in the failure."""

from __future__ import annotations

import asyncio
import os
import re
import signal

from tests.timeline.test_cli import TIMELINE, Server

START_SECONDS = 30.0


async def serve(db: str, *extra: str, env: dict[str, str] | None = None) -> Server:
    """`timeline serve --db db` on a free port of 127.0.0.1, once it says it is serving. If it
    exits first, or is not serving within START_SECONDS, the test fails with what it printed;
    in the second case it is ended by SIGABRT, on which faulthandler prints every thread's
    stack (where it was stuck)."""
    process = await asyncio.create_subprocess_exec(
        *TIMELINE,
        "serve",
        "--db",
        db,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})},
    )
    assert process.stdout is not None
    printed: list[str] = []
    try:
        async with asyncio.timeout(START_SECONDS):
            while line := (await process.stdout.readline()).decode():
                printed.append(line)
                if found := re.search(r"serving (http://127\.0\.0\.1:\d+/)", line):
                    server = Server(process, found.group(1), None)
                    server.output = "".join(printed)
                    return server
    except asyncio.CancelledError:
        process.kill()
        raise
    except TimeoutError:
        process.send_signal(signal.SIGABRT)
        async with asyncio.timeout(START_SECONDS):
            printed.append((await process.stdout.read()).decode())
            await process.wait()
        raise AssertionError(
            f"timeline serve was not serving after {START_SECONDS} s:\n{''.join(printed)}"
        ) from None
    async with asyncio.timeout(START_SECONDS):
        await process.wait()
    raise AssertionError(
        f"timeline serve exited ({process.returncode}) before serving:\n{''.join(printed)}"
    )
