"""Opaque cursors: a page's continuation as URL-safe text that only this server makes, and the
fingerprint of the filters a cursor may continue."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import orjson

from events.errors import BadRequest

# Numbers in a cursor are positions: 0 to 2^63 - 1.
_MAX = 2**63


def opaque(version: int, values: list[Any]) -> str:
    """`values`, tagged with the cursor's `version`, as URL-safe base64 of their JSON."""
    raw = orjson.dumps([version, *values])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unwrap(text: str, version: int, kinds: tuple[type, ...]) -> list[Any]:
    """The values of a cursor `opaque(version, ...)` made, each of its kind in `kinds`; else
    400: the cursor is not one this server issued."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        found = orjson.loads(raw)
        if not isinstance(found, list) or found[:1] != [version] or len(found) != len(kinds) + 1:
            raise ValueError(text)
        values = found[1:]
        for value, kind in zip(values, kinds, strict=True):
            # bool is an int to isinstance; no cursor holds one.
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError(text)
            if isinstance(value, int) and not 0 <= value < _MAX:
                raise ValueError(text)
        return values
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise refused() from None


def refused() -> BadRequest:
    """The answer to a cursor this server did not make (or not for this endpoint)."""
    return BadRequest(
        "the cursor is not one this server issued",
        errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
    )


def fingerprint(filters: list[Any]) -> str:
    """The filters of a page, as its cursor carries them (give sets sorted: the same filters
    in any order give the same text)."""
    return hashlib.sha256(orjson.dumps(filters)).hexdigest()[:16]
