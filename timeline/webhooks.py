"""Webhooks (Standard Webhooks): created, listed and deleted through any process, and
delivered by one. The process that holds the store's `webhooks` lease runs one delivery task
per enabled webhook (timeline.delivery); the acknowledged position is stored, so the process
that takes the lease over resumes where delivery stopped."""

from __future__ import annotations

import asyncio
import logging

from events import waits
from events.errors import TimelineError
from events.store import EventStore, Lease
from events.subscriptions import Subscription, Subscriptions
from events.waits import set_within
from timeline import hooks
from timeline.delivery import Courier
from timeline.hooks import WebhookIn

log = logging.getLogger(__name__)


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
        self.lease_seconds = lease_seconds
        self.leading = False
        self._stopped = asyncio.Event()
        self.courier = Courier(
            self.subscriptions, self._stopped, backoff=backoff, max_backoff=max_backoff
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._changed = asyncio.Event()
        self._leader: asyncio.Task[None] | None = None
        self._lease: Lease | None = None
        # For /metrics: the webhooks this process delivers (their acknowledged positions give
        # the lag).
        self.delivering: dict[str, Subscription] = {}
        self._deleted: set[str] = set()  # by this process (ids are never reused)

    @property
    def delivered(self) -> dict[str, int]:
        """For /metrics: deliveries answered 2xx, by webhook id."""
        return self.courier.delivered

    @property
    def failed(self) -> dict[str, int]:
        """For /metrics: failed delivery attempts, by webhook id."""
        return self.courier.failed

    async def start(self) -> None:
        """Open the delivery's HTTP session and stand for the lease (delivering once held)."""
        self.courier.open()
        self._leader = asyncio.create_task(self._lead(), name="webhooks-lease")

    async def _lead(self) -> None:
        while not self._stopped.is_set():
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
                while not lost.done() and not self._stopped.is_set():
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
                if not self._stopped.is_set():
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
        enabled = {h.id: h for h in found if h.disabled is None and h.id not in self._deleted}
        for hook_id in list(self._tasks):
            if hook_id not in enabled:
                await self._cancel(hook_id)
        for hook_id, hook in enabled.items():
            if hook_id not in self._tasks:
                self._spawn(hook)
        self._wake_all()

    async def stop(self, grace: float = 10.0) -> None:
        """Let each task finish the delivery in flight (and record it), then stop."""
        self._stopped.set()
        self._changed.set()
        await self._stop_tasks(grace)
        if self._lease is not None:
            await self._lease.release()
        if self._leader is not None:
            await self._leader
        await self.courier.close()

    async def _stop_tasks(self, grace: float) -> None:
        self._wake_all()
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
        self._wake_all()
        self._changed.set()

    async def all(self) -> list[Subscription]:
        return await self.subscriptions.all()

    async def get(self, hook_id: str) -> Subscription:
        return await self.subscriptions.get(hook_id)

    async def create(self, spec: WebhookIn) -> Subscription:
        hook = await hooks.create(self.subscriptions, spec)
        self._changed.set()  # the leader, if this process is, takes it up now
        return hook

    async def delete(self, hook_id: str) -> None:
        await self.get(hook_id)
        # Before its row goes, so that the leader, looking meanwhile, cannot start it again.
        self._deleted.add(hook_id)
        await self.subscriptions.remove(hook_id)
        await self._cancel(hook_id)
        self.courier.forget(hook_id)
        self._changed.set()

    def _spawn(self, hook: Subscription) -> None:
        self._wake[hook.id] = wake = asyncio.Event()
        self.delivering[hook.id] = hook
        self._tasks[hook.id] = asyncio.create_task(
            self.courier.deliver(hook, wake), name=f"webhook {hook.id}"
        )

    def _wake_all(self) -> None:
        for wake in self._wake.values():
            wake.set()
