"""The hash chain: each log entry's hash covers its canonical JSON and the entry before."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from events.entries import LogEntry

GENESIS = "0" * 64


def chain(previous: str, entry: str) -> str:
    """hash_n = SHA-256(hash_{n-1} || SHA-256(entry_n)), written as lowercase hex."""
    entry_hash = hashlib.sha256(entry.encode()).digest()
    return hashlib.sha256(bytes.fromhex(previous) + entry_hash).hexdigest()


def chain_many(previous: str, entries: Iterable[LogEntry]) -> str:
    """Chain entries in order from `previous`, setting each one's `hash`; returns the last.
    The same values as `chain`, without converting each link from hex and back."""
    link = bytes.fromhex(previous)
    sha256 = hashlib.sha256
    for entry in entries:
        digest = sha256(link + sha256(entry.hashed_json().encode()).digest())
        link = digest.digest()
        entry.hash = digest.hexdigest()
    return link.hex()
