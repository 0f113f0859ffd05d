"""events/entries.py: a LogEntry's JSON, assembled from canonical parts, is canonical JSON."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from events.canonical import canonical
from events.validation import validate_body
from tests.factories import event_in

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@given(
    name=_text.filter(bool),
    summary=_text.filter(bool),
    quote=st.none() | _text.filter(bool),
    value=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**40), 2**40),
    position=st.integers(1, 10**9),
)
def test_assembled_json_is_canonical(
    name: str, summary: str, quote: str | None, value: float, position: int
) -> None:
    body = event_in(
        company="baidu",
        type="financial.report",
        data={
            "period": "2023-Q3",
            "metrics": [{"name": name, "value": value}],
            "highlights": [summary],
        },
        source={"quote": quote} if quote is not None else None,
    )
    (event,) = validate_body(body)
    recorded = event.recorded_as(position, 1, "2026-11-25T14:39:27.123456Z")
    recorded.hash = "f" * 64
    parsed = json.loads(recorded.to_json())
    assert parsed["data"]["metrics"][0]["value"] == value
    assert recorded.to_json() == canonical(parsed)
    del parsed["hash"]
    assert recorded.hashed_json() == canonical(parsed)


def test_a_timeline_entry_adds_its_status_last() -> None:
    (event,) = validate_body(event_in())
    entry = event.recorded_as(3, 1, "2026-11-25T14:39:27.123456Z")
    entry.hash = "f" * 64
    with_status = entry.to_json_with_status("possible")
    assert with_status == entry.to_json()[:-1] + ',"status":"possible"}'
    assert json.loads(with_status) == {**json.loads(entry.to_json()), "status": "possible"}
