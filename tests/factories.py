"""Building events for tests."""

from __future__ import annotations

import uuid
from typing import Any

from events.entries import LogEntry, NewEvent
from events.store import EventStore
from events.validation import validate_body


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


async def history(store: EventStore) -> list[LogEntry]:
    """A log with every kind of entry: amendments of each kind, floats, sources, non-ASCII, a
    range reaching the calendar's last day."""
    launch = event_in(
        company="baidu",
        occurred="2023-03-16",
        data={"model": "ERNIE Bot", "stage": "public", "aliases": ["文心一言"]},
        source={"publisher": "新华社", "quote": "文心一言正式发布"},
        confidence="confirmed",
    )
    report = event_in(
        company="tencent",
        type="financial.report",
        occurred="2023-11-15",
        data={"period": "2023-Q3", "metrics": [{"name": "revenue", "value": 154.6, "yoy_pct": 10}]},
    )
    registered = event_in(
        company="baidu", type="company.registered", occurred="2000", data={"name": "Baidu"}
    )
    await store.append(batch(launch, report, registered))
    fix_date = {"target": launch["id"], "occurred": "2023-03"}
    await store.append(batch(event_in(company="baidu", type="event.corrected", data=fix_date)))
    fix_report = {
        "target": report["id"],
        "data": {"period": "2023-Q3", "metrics": [{"name": "revenue", "value": 155.0}]},
    }
    await store.append(
        batch(
            event_in(company="tencent", type="event.corrected", data=fix_report),
            event_in(
                company="baidu",
                type="event.retracted",
                data={"target": launch["id"], "reason": "denied"},
            ),
        )
    )
    await store.append(
        batch(
            event_in(company="baidu", type="event.reinstated", data={"target": launch["id"]}),
            event_in(company="alibaba", occurred="2023-04~"),
            event_in(company="alibaba", occurred="[2023-04..9999-12-31]"),  # to the last day
        )
    )
    return await store.read(limit=1000)
