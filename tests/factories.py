"""Building events for tests."""

from __future__ import annotations

import uuid
from typing import Any

from events.envelope import NewEvent, validate_body


def event_in(
    company: str = "alibaba",
    type: str = "model.launched",
    occurred: str = "2023-04",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An EventIn as a client would send it; a fresh id unless one is given."""
    if data is None:
        data = {"model": f"Model {uuid.uuid4().hex[:6]}", "stage": "public"}
    body = {"id": str(uuid.uuid4()), "type": type, "company": company, "occurred": occurred}
    body["data"] = data
    body.update(fields)
    return {key: value for key, value in body.items() if value is not None}


def new(**kwargs: Any) -> NewEvent:
    (event,) = validate_body(event_in(**kwargs))
    return event


def batch(*bodies: dict[str, Any]) -> list[NewEvent]:
    return validate_body({"events": list(bodies)})
