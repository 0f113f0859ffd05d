"""Bounded waits on asyncio events, and cancellations, safe on Python 3.11."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


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


# How long a cancelled task has to end before it is told again.
RECANCEL_SECONDS = 0.1


async def cancel(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended. It is told again every RECANCEL_SECONDS
    while it runs on: a library's `asyncio.wait_for` (psycopg_pool's, waiting for a
    connection) can swallow a cancellation on Python 3.11, and the task carries on."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("task %s had failed before it was cancelled", task.get_name(), exc_info=error)
