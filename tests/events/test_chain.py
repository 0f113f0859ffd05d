"""events/chain.py: hash_n = SHA-256(hash_{n-1} || SHA-256(entry_n))."""

from __future__ import annotations

import hashlib

from events.chain import GENESIS, chain


def test_chain_definition() -> None:
    entry = '{"a":1}'
    expected = hashlib.sha256(bytes(32) + hashlib.sha256(entry.encode()).digest()).hexdigest()
    assert chain(GENESIS, entry) == expected
