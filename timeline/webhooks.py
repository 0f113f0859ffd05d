"""Webhooks (Standard Webhooks): one signed POST per matching event, strictly in position
order, the next only after a 2xx. The acknowledged position is stored, so a restart resumes
where delivery stopped."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from typing import Annotated

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from events.envelope import RecordedEvent
from events.errors import PositionConflict, TimelineError
from events.store import EventStore, timestamp
from events.subscriptions import Subscriptions, Webhook
from events.types import Slug

log = logging.getLogger(__name__)

PAGE = 100


class WebhookIn(BaseModel):
    """A subscription: where to POST, which events, and from which position."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: HttpUrl
    company: Annotated[list[Slug], Field(max_length=100)] = []
    type: Annotated[list[str], Field(max_length=20)] = []
    after: Annotated[int, Field(ge=0)] | None = None


def sign(secret: str, message_id: str, stamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the secret's bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{stamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class Webhooks:
    """Stores subscriptions and runs one delivery task per enabled webhook."""

    def __init__(
        self, store: EventStore, *, backoff: float = 1.0, max_backoff: float = 300.0
    ) -> None:
        self.store = store
        self.subscriptions = Subscriptions(store)
        self.backoff, self.max_backoff = backoff, max_backoff
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        for hook in await self.all():
            if hook.disabled is None:
                self._spawn(hook)

    async def stop(self, grace: float = 10.0) -> None:
        """Let each task finish the delivery in flight (and record it), then stop."""
        self._stopping = True
        for wake in self._wake.values():
            wake.set()
        tasks = list(self._tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
        if self._http is not None:
            await self._http.close()

    def notify(self, events: object) -> None:
        """Commit listener: wake every delivery task."""
        for wake in self._wake.values():
            wake.set()

    async def all(self) -> list[Webhook]:
        return await self.subscriptions.all()

    async def get(self, hook_id: str) -> Webhook:
        return await self.subscriptions.get(hook_id)

    async def create(self, spec: WebhookIn) -> Webhook:
        head = (await self.store.head()).position
        after = head if spec.after is None else spec.after
        if after > head:
            raise PositionConflict(f"position {after} is past the head of the log ({head})")
        hook = Webhook(
            id="wh_" + secrets.token_hex(12),
            url=str(spec.url),
            companies=list(spec.company),
            types=list(spec.type),
            secret="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            acked=after,
            disabled=None,
            created=timestamp(),
        )

        await self.subscriptions.add(hook)
        self._spawn(hook)
        return hook

    async def delete(self, hook_id: str) -> None:
        await self.get(hook_id)
        task = self._tasks.pop(hook_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.subscriptions.remove(hook_id)

    def _spawn(self, hook: Webhook) -> None:
        self._wake[hook.id] = asyncio.Event()
        self._tasks[hook.id] = asyncio.create_task(self._deliver(hook), name=f"webhook {hook.id}")

    async def _deliver(self, hook: Webhook) -> None:
        wake = self._wake[hook.id]
        while hook.disabled is None and not self._stopping:
            wake.clear()
            try:
                head = (await self.store.head()).position
                page = await self.store.read(
                    after=hook.acked,
                    limit=PAGE,
                    companies=hook.companies,
                    types=hook.types,
                    until=head,
                )
                for event in page:
                    if self._stopping or not await self._post(hook, event):
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

    async def _post(self, hook: Webhook, event: RecordedEvent) -> bool:
        assert self._http is not None
        body = event.to_json().encode()
        delay = self.backoff
        while True:
            stamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": str(event.position),
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(hook.secret, str(event.position), stamp, body),
            }
            retry_after: float | None = None
            try:
                async with self._http.post(hook.url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        return True
                    if response.status == 410:
                        await self.subscriptions.disable(hook, "the receiver answered 410 Gone")
                        return False
                    retry_after = _seconds(response.headers.get("Retry-After"))
                    log.info(
                        "webhook %s: %s for position %s", hook.id, response.status, event.position
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("webhook %s: %s for position %s", hook.id, exc, event.position)
            if self._stopping:
                return False
            await asyncio.sleep(retry_after if retry_after is not None else delay)
            delay = min(delay * 2, self.max_backoff)


def _seconds(raw: str | None) -> float | None:
    if raw is None or not raw.strip().isdigit():
        return None
    return float(raw.strip())
