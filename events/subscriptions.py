"""Webhook subscriptions and their delivery cursors: the `webhooks` table and its SQL,
behind the store. Delivery itself (HTTP, signing, retries) is timeline's: delivery.py,
signing.py."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from events.errors import NotFound
from events.store import EventStore, Transaction

_SCHEMA = """CREATE TABLE IF NOT EXISTS webhooks (
    id        TEXT PRIMARY KEY,
    url       TEXT NOT NULL,
    companies TEXT NOT NULL,
    types     TEXT NOT NULL,
    secret    TEXT NOT NULL,
    acked     BIGINT NOT NULL,
    disabled  TEXT,
    created   TEXT NOT NULL
)"""
_COLUMNS = "id, url, companies, types, secret, acked, disabled, created"
# A webhook's id: "wh_" and 24 hex digits (timeline.hooks makes them).
_HOOK_ID = re.compile(r"wh_[0-9a-f]{24}")


@dataclass
class Subscription:
    """A subscription: where to POST which events, and the last position acknowledged."""

    id: str
    url: str
    companies: list[str]
    types: list[str]
    secret: str
    acked: int
    disabled: str | None
    created: str

    @classmethod
    def _from_row(cls, row: Sequence[Any]) -> Subscription:
        hook_id, url, companies, types, secret, acked, disabled, created = row
        return cls(
            id=hook_id,
            url=url,
            companies=orjson.loads(companies),
            types=orjson.loads(types),
            secret=secret,
            acked=acked,
            disabled=disabled,
            created=created,
        )

    def public(self, *, with_secret: bool = False) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.id,
            "url": self.url,
            "company": self.companies,
            "type": self.types,
            "acknowledged": self.acked,
            "disabled": self.disabled,
            "created": self.created,
        }
        if with_secret:
            shown["secret"] = self.secret
        return shown


def schema() -> Sequence[str]:
    """The statements creating the table if it is missing: the store's schema and its
    migration to version 2 include them (events.schema)."""
    return (_SCHEMA,)


class Subscriptions:
    """The stored webhooks of one store."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def all(self) -> list[Subscription]:
        rows = await self.store.query(f"SELECT {_COLUMNS} FROM webhooks ORDER BY created, id")
        return [Subscription._from_row(row) for row in rows]

    async def get(self, hook_id: str) -> Subscription:
        if _HOOK_ID.fullmatch(hook_id) is None:  # never handed to the driver (a NUL, ...)
            raise NotFound(f"no webhook {hook_id!r}")
        rows = await self.store.query(f"SELECT {_COLUMNS} FROM webhooks WHERE id = ?", (hook_id,))
        if not rows:
            raise NotFound(f"no webhook {hook_id!r}")
        return Subscription._from_row(rows[0])

    async def add(self, hook: Subscription) -> None:
        values = (
            hook.id,
            hook.url,
            orjson.dumps(hook.companies).decode(),
            orjson.dumps(hook.types).decode(),
            hook.secret,
            hook.acked,
            hook.disabled,
            hook.created,
        )

        def insert(tx: Transaction) -> None:
            tx.execute(f"INSERT INTO webhooks ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)

        await self.store.write_transaction(insert)

    async def remove(self, hook_id: str) -> None:
        await self.store.write_transaction(
            lambda tx: tx.execute("DELETE FROM webhooks WHERE id = ?", (hook_id,))
        )

    async def acknowledge(self, hook: Subscription, position: int) -> None:
        """Record that every event the hook wants up to `position` was delivered."""
        hook.acked = position
        await self.store.write_transaction(
            lambda tx: tx.execute("UPDATE webhooks SET acked = ? WHERE id = ?", (position, hook.id))
        )

    async def disable(self, hook: Subscription, reason: str) -> None:
        hook.disabled = reason
        await self.store.write_transaction(
            lambda tx: tx.execute(
                "UPDATE webhooks SET disabled = ? WHERE id = ?", (reason, hook.id)
            )
        )
