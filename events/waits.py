"""A bounded wait on an asyncio event, safe to cancel."""

from __future__ import annotations

import asyncio


async def set_within(event: asyncio.Event, seconds: float) -> bool:
    """Whether `event` is set within `seconds`. Not `asyncio.wait_for`: on Python 3.11 a
    cancellation that arrives as its time runs out is turned into a TimeoutError, and the
    task that was told to stop goes on (a server that SIGTERM could not stop, 1 start in 30)."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
