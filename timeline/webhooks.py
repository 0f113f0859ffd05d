"""Webhooks (Standard Webhooks): one signed POST per matching event, strictly in position
order, the next only after a 2xx. The acknowledged position is stored, so a restart resumes
where delivery stopped."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from typing import Annotated

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from events import waits
from events.entries import LogEntry
from events.errors import PositionConflict, TimelineError
from events.store import EventStore, Lease, timestamp
from events.subscriptions import Subscriptions, Webhook
from events.types import Slug
from events.waits import set_within

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
    """Stores subscriptions and, in the one process that holds the store's `webhooks` lease,
    runs one delivery task per enabled webhook. The other processes stand by and ask for the
    lease every `lease_seconds`; the one that gets it after its holder died resumes each
    webhook from its stored cursor. While leading, the subscriptions are read again every
    `lease_seconds` (and after each commit), so webhooks created or deleted through another
    process are taken up."""

    def __init__(
        self,
        store: EventStore,
        *,
        backoff: float = 1.0,
        max_backoff: float = 300.0,
        lease_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.subscriptions = Subscriptions(store)
        self.backoff, self.max_backoff = backoff, max_backoff
        self.lease_seconds = lease_seconds
        self.leading = False
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._changed = asyncio.Event()
        self._stopped = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._leader: asyncio.Task[None] | None = None
        self._lease: Lease | None = None
        self._stopping = False
        # For /metrics: deliveries answered 2xx and failed attempts, by webhook id, and the
        # webhooks this process delivers (their acknowledged positions give the lag).
        self.delivered: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.delivering: dict[str, Webhook] = {}
        self._deleted: set[str] = set()  # by this process (ids are never reused)

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self._leader = asyncio.create_task(self._lead(), name="webhooks-lease")

    async def _lead(self) -> None:
        while not self._stopping:
            try:
                self._lease = await self.store.lease("webhooks")
            except TimelineError:
                log.warning("cannot ask for the webhooks lease; retrying")
                self._lease = None
            if self._lease is None:
                await self._pause(self.lease_seconds)
                continue
            lost = asyncio.create_task(self._lease.lost())
            self.leading = True
            try:
                while not lost.done() and not self._stopping:
                    self._changed.clear()  # first: a change made while it looks is seen next
                    await self._refresh()
                    changed = asyncio.create_task(self._changed.wait())
                    await asyncio.wait(
                        [lost, changed], timeout=self.lease_seconds, return_when="FIRST_COMPLETED"
                    )
                    changed.cancel()
            except TimelineError:
                log.warning("cannot read the webhooks; giving the lease up for now")
            finally:
                self.leading = False
                if not self._stopping:
                    await self._stop_tasks(grace=0)
                    await self._lease.release()
                lost.cancel()

    async def _pause(self, seconds: float) -> None:
        """Stand by (commits do not cut it short: only stopping does)."""
        await set_within(self._stopped, seconds)

    async def _refresh(self) -> None:
        """Run a task for every enabled webhook, and none for one deleted or disabled."""
        found = await self.all()
        # A webhook deleted while `all` ran is gone, though `found` may still hold it.
        hooks = {h.id: h for h in found if h.disabled is None and h.id not in self._deleted}
        for hook_id in list(self._tasks):
            if hook_id not in hooks:
                await self._cancel(hook_id)
        for hook_id, hook in hooks.items():
            if hook_id not in self._tasks:
                self._spawn(hook)
        for wake in self._wake.values():
            wake.set()

    async def stop(self, grace: float = 10.0) -> None:
        """Let each task finish the delivery in flight (and record it), then stop."""
        self._stopping = True
        self._stopped.set()
        self._changed.set()
        await self._stop_tasks(grace)
        if self._lease is not None:
            await self._lease.release()
        if self._leader is not None:
            await self._leader
        if self._http is not None:
            await self._http.close()

    async def _stop_tasks(self, grace: float) -> None:
        for wake in self._wake.values():
            wake.set()
        tasks = list(self._tasks.values())
        if tasks and grace > 0:
            await asyncio.wait(tasks, timeout=grace)
        for hook_id in list(self._tasks):
            await self._cancel(hook_id)

    async def _cancel(self, hook_id: str) -> None:
        task = self._tasks.pop(hook_id, None)
        self._wake.pop(hook_id, None)
        self.delivering.pop(hook_id, None)
        if task is not None:
            await waits.cancel(task)

    def notify(self, events: object) -> None:
        """Commit listener: wake every delivery task (and have the leader look again)."""
        for wake in self._wake.values():
            wake.set()
        self._changed.set()

    async def all(self) -> list[Webhook]:
        return await self.subscriptions.all()

    async def get(self, hook_id: str) -> Webhook:
        return await self.subscriptions.get(hook_id)

    async def create(self, spec: WebhookIn) -> Webhook:
        head = (await self.store.head()).position
        after = head if spec.after is None else spec.after
        PositionConflict.unless_within(after, head)
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
        self._changed.set()  # the leader, if this process is, takes it up now
        return hook

    async def delete(self, hook_id: str) -> None:
        await self.get(hook_id)
        # Before its row goes, so that the leader, looking meanwhile, cannot start it again.
        self._deleted.add(hook_id)
        await self.subscriptions.remove(hook_id)
        await self._cancel(hook_id)
        self.delivered.pop(hook_id, None)
        self.failed.pop(hook_id, None)
        self._changed.set()

    def _spawn(self, hook: Webhook) -> None:
        self._wake[hook.id] = asyncio.Event()
        self.delivering[hook.id] = hook
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
                    amendments_follow=True,
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

    async def _post(self, hook: Webhook, event: LogEntry) -> bool:
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
            if self._stopping:
                return False
            await asyncio.sleep(retry_after if retry_after is not None else delay)
            delay = min(delay * 2, self.max_backoff)


def _seconds(raw: str | None) -> float | None:
    if raw is None or not raw.strip().isdigit():
        return None
    return float(raw.strip())
