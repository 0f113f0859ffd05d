"""events/ids.py: time-ordered version 7 UUIDs."""

from __future__ import annotations

import uuid

from events.ids import new_ids


def test_new_ids_are_time_ordered_version_7_uuids() -> None:
    ids = [made for _ in range(100) for made in new_ids(10)]
    assert len(set(ids)) == 1000
    for value in ids:
        assert str(uuid.UUID(value)) == value
        assert uuid.UUID(value).version == 7
        assert uuid.UUID(value).variant == uuid.RFC_4122
    stamps = [value.replace("-", "")[:12] for value in ids]
    assert stamps == sorted(stamps)
