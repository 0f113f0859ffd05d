"""`timeline token`: create, list and revoke the bearer tokens of a database's log."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

from events.store import EventStore
from timeline.auth import create_token
from timeline.commands.database import opened, settings_of

T = TypeVar("T")


def _on_log(args: argparse.Namespace, work: Callable[[EventStore], Awaitable[T]]) -> T:
    """`work` on the store of a database that holds a log: the token commands refuse to make
    a new, empty database (a mistyped --db would get tokens that no server reads)."""

    settings = settings_of(args)

    async def run() -> T:
        async with opened(settings, create=False) as store:
            return await work(store)

    return asyncio.run(run())


def token_create(args: argparse.Namespace) -> int:
    print(_on_log(args, lambda store: create_token(store, args.scope, args.label)))
    return 0


def token_list(args: argparse.Namespace) -> int:
    """One line per token: id, scope, created, last used, revoked, label (never a secret)."""
    tokens = _on_log(args, lambda store: store.tokens())
    print(f"{'id':<12}  {'scope':<6}  {'created':<27}  {'last used':<27}  {'revoked':<27}  label")
    for token in tokens:
        print(
            f"{token.id:<12}  {token.scope:<6}  {token.created:<27}  "
            f"{token.last_used or '-':<27}  {token.revoked or '-':<27}  {token.label or ''}"
        )
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    revoked = _on_log(args, lambda store: store.revoke_token(args.id))
    if revoked is None:
        print(
            f"timeline: no token has the id {args.id!r} (`timeline token list` shows them)",
            file=sys.stderr,
        )
        return 2
    print(f"revoked token {revoked.id} ({revoked.scope}) at {revoked.revoked}")
    return 0
