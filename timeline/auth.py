"""Bearer tokens: random secrets shown once, stored as SHA-256, each with a scope.
Scope `admin` includes `append`, which includes `read`."""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

from events.errors import Forbidden, Unauthorized
from events.store import EventStore

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


class Tokens:
    """Checks bearer tokens against the store. Known tokens are cached: a token is never
    revoked in this version, and one lookup per request would cost a database call."""

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._known: dict[str, str] = {}

    async def require(self, authorization: str | None, needed: Scope) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("this request needs an Authorization: Bearer <token> header")
        key = digest(token.strip())
        scope = self._known.get(key)
        if scope is None:
            scope = await self._store.token_scope(key)
            if scope is None:
                raise Unauthorized("the bearer token is not known to this server")
            self._known[key] = scope
        if not grants(scope, needed):
            raise Forbidden(
                f"this request needs a token with scope {needed!r}; yours has {scope!r}"
            )
