"""Bearer tokens: random secrets shown once, stored as SHA-256, each with a scope.
Scope `admin` includes `append`, which includes `read`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from pydantic import SecretStr

from events.errors import Forbidden, Unauthorized
from events.store import EventStore
from events.values import timestamp

log = logging.getLogger(__name__)

Scope = Literal["read", "append", "admin"]
SCOPES: tuple[Scope, ...] = ("read", "append", "admin")
TOKEN_PREFIX = "tl_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def grants(held: str, needed: Scope) -> bool:
    return held in SCOPES and SCOPES.index(held) >= SCOPES.index(needed)


async def create_token(store: EventStore, scope: Scope, label: str | None = None) -> str:
    """Make a token, store only its hash, and return the secret (to be shown once)."""
    token = new_token()
    await store.add_token(digest(token), scope, label)
    return token


async def add_bootstrap_token(store: EventStore, secret: SecretStr | None) -> None:
    """Store TIMELINE_BOOTSTRAP_TOKEN's secret, when it is set, as an `admin` token."""
    if secret is not None:
        await store.add_token(digest(secret.get_secret_value()), "admin", "bootstrap")


# RFC 6750, section 2.1: the scheme (any case), one or more spaces, a b64token, nothing else.
# (aiohttp has already removed the spaces and tabs that HTTP allows around a header's value.)
_BEARER = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")
# How long a token's scope is trusted without asking the store: a token revoked (by any
# process) stops working within this time.
RECHECK_SECONDS = 5.0
# How often a token's last use is written: at most once a minute per token and process.
USED_EVERY_SECONDS = 60.0


def bearer(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer` header, or Unauthorized."""
    found = _BEARER.fullmatch(authorization or "")
    if found is None:
        raise Unauthorized("this request needs an Authorization: Bearer <token> header")
    return found.group(1)


@dataclass
class _Known:
    scope: str
    checked: float
    used: float = -USED_EVERY_SECONDS


class Tokens:
    """Checks bearer tokens against the store. A known token's scope is cached for
    RECHECK_SECONDS (one lookup per request would cost a database call), and its last use is
    recorded about once a minute, in the background."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._known: dict[str, _Known] = {}
        self._writes: set[asyncio.Task[None]] = set()

    async def require(self, authorization: str | None, needed: Scope) -> None:
        key = digest(bearer(authorization))
        now = time.monotonic()
        known = self._known.get(key)
        if known is None or now - known.checked > RECHECK_SECONDS:
            scope = await self._store.token_scope(key)
            if scope is None:
                self._known.pop(key, None)
                raise Unauthorized("the bearer token is not known to this server")
            known = self._known[key] = _Known(
                scope, now, known.used if known else -USED_EVERY_SECONDS
            )
        if not grants(known.scope, needed):
            raise Forbidden(
                f"this request needs a token with scope {needed!r}; yours has {known.scope!r}"
            )
        if now - known.used >= USED_EVERY_SECONDS:
            known.used = now
            task = asyncio.create_task(self._used(key, timestamp()))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    def known_key(self, authorization: str) -> str | None:
        """The digest of the header's token if this process has found it valid (a revoked
        one is forgotten at its next check), else None; never asks the store."""
        found = _BEARER.fullmatch(authorization)
        if found is None:
            return None
        key = digest(found.group(1))
        return key if key in self._known else None

    async def _used(self, key: str, moment: str) -> None:
        try:
            await self._store.token_used(key, moment)
        except Exception:  # the database is away, or the store closing: a later use writes
            log.info("could not record a token's last use")
