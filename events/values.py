"""The formats of the values the server writes: timestamps, and numbers read from digits."""

from __future__ import annotations

import re
from datetime import UTC, datetime

TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


# Digits beyond these are past any 64-bit position (and int() refuses over 4,300 of them).
MAX_DIGITS = 20


def natural(digits: str) -> int:
    """ASCII digits as a number; more than MAX_DIGITS of them as 2**64, a number past every
    position, version or limit a client can be answered for."""
    return int(digits) if len(digits.lstrip("0")) <= MAX_DIGITS else 2**64


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds, the one format of every time the server sets."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime(TIMESTAMP)


def is_timestamp(text: str) -> bool:
    """Whether `text` is a time in the one format `timestamp` writes."""
    if _TIMESTAMP.fullmatch(text) is None:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
