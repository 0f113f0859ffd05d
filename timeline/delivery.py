"""A webhook's delivery: the task that POSTs each event the webhook wants, signed, strictly in
position order and the next only after a 2xx, retrying a failed attempt after a backoff that
doubles (or as the receiver's Retry-After says), and stores the position acknowledged. A 410
disables the webhook."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from events.entries import LogEntry
from events.errors import TimelineError
from events.subscriptions import Subscription, Subscriptions
from timeline import signing
from timeline.filters import EventFilter

log = logging.getLogger(__name__)

PAGE = 100


class Courier:
    """Runs the delivery tasks of one process (`deliver`, one task per webhook), which share
    the HTTP session, the backoff and `stopped`. For /metrics it counts the deliveries
    answered 2xx and the failed attempts, by webhook id."""

    def __init__(
        self,
        subscriptions: Subscriptions,
        stopped: asyncio.Event,
        *,
        backoff: float,
        max_backoff: float,
    ) -> None:
        self.subscriptions, self.store = subscriptions, subscriptions.store
        self.stopped = stopped
        self.backoff, self.max_backoff = backoff, max_backoff
        self.delivered: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self._http: aiohttp.ClientSession | None = None

    def open(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def forget(self, hook_id: str) -> None:
        """Drop a deleted webhook's counts."""
        self.delivered.pop(hook_id, None)
        self.failed.pop(hook_id, None)

    async def deliver(self, hook: Subscription, wake: asyncio.Event) -> None:
        """Deliver what the webhook wants after its acknowledged position, then wait for
        `wake` (a commit) and go on; return when stopped or once the webhook is disabled."""
        wanted = EventFilter.of(hook.companies, hook.types)
        while hook.disabled is None and not self.stopped.is_set():
            wake.clear()
            try:
                head = (await self.store.head()).position
                page = await wanted.read(self.store, after=hook.acked, until=head, limit=PAGE)
                for event in page:
                    if self.stopped.is_set() or not await self._post(hook, event):
                        return  # stopping, or disabled
                    await self.subscriptions.acknowledge(hook, event.position)
                if len(page) == PAGE:
                    continue
                if head > hook.acked:
                    await self.subscriptions.acknowledge(
                        hook, head
                    )  # the rest up to the head did not match
            except TimelineError:
                log.exception("webhook %s: the store failed; retrying", hook.id)
                await asyncio.sleep(self.backoff)
                continue
            await wake.wait()

    async def _post(self, hook: Subscription, event: LogEntry) -> bool:
        """Post the event until the receiver answers 2xx (True), or 410, which disables the
        webhook, or until stopped (False)."""
        assert self._http is not None
        body = event.to_json().encode()
        delay = self.backoff
        while True:
            headers = signing.headers(hook.secret, str(event.position), int(time.time()), body)
            retry_after: float | None = None
            try:
                async with self._http.post(hook.url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        self.delivered[hook.id] = self.delivered.get(hook.id, 0) + 1
                        return True
                    self.failed[hook.id] = self.failed.get(hook.id, 0) + 1
                    if response.status == 410:
                        await self.subscriptions.disable(hook, "the receiver answered 410 Gone")
                        return False
                    retry_after = _seconds(response.headers.get("Retry-After"))
                    log.info(
                        "webhook %s: %s for position %s", hook.id, response.status, event.position
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.failed[hook.id] = self.failed.get(hook.id, 0) + 1
                log.info("webhook %s: %s for position %s", hook.id, exc, event.position)
            if self.stopped.is_set():
                return False
            await asyncio.sleep(retry_after if retry_after is not None else delay)
            delay = min(delay * 2, self.max_backoff)


def _seconds(raw: str | None) -> float | None:
    """A Retry-After given in seconds (None for none, or for an HTTP date)."""
    if raw is None or not raw.strip().isdigit():
        return None
    return float(raw.strip())
