"""events/validation.py: a body → NewEvents (defaults, normalization) or ValidationFailed
naming each wrong field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from events.errors import ValidationFailed
from events.validation import validate_body
from tests.factories import event_in


def errors_of(body: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as caught:
        validate_body(body)
    assert caught.value.errors is not None
    return caught.value.errors


def test_defaults_and_normalization() -> None:
    (event,) = validate_body(
        {
            "id": "A2F0C6C8-1B7B-4E0A-9C61-0F4D9C3B2E11",
            "type": "financial.report",
            "company": "tencent",
            "occurred": "2023-11-15",
            "data": {
                "period": "2023-Q3",
                "metrics": [{"name": "advertising revenue", "value": 25.7, "yoy_pct": 20.0}],
                "highlights": None,
            },
        }
    )
    assert event.id == "a2f0c6c8-1b7b-4e0a-9c61-0f4d9c3b2e11"
    assert event.confidence == "reported"
    assert event.source_json is None
    assert event.data_json == (
        '{"metrics":[{"name":"advertising revenue","value":25.7,"yoy_pct":20}],"period":"2023-Q3"}'
    )
    (made,) = validate_body({k: v for k, v in event_in().items() if k != "id"})
    assert len(made.id) == 36


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({**event_in(), "extra": 1}, ["body", "extra"]),
        ({**event_in(), "company": "Alibaba"}, ["body", "company"]),
        ({**event_in(), "company": "a" * 65}, ["body", "company"]),
        ({**event_in(), "occurred": "2023-13"}, ["body", "occurred"]),
        ({**event_in(), "confidence": "sure"}, ["body", "confidence"]),
        ({**event_in(), "id": "not-a-uuid"}, ["body", "id"]),
        ({**event_in(), "expected_version": -1}, ["body", "expected_version"]),
        ({**event_in(), "expected_version": "3"}, ["body", "expected_version"]),
        ({**event_in(), "type": "model.retired"}, ["body", "type"]),
        ({**event_in(), "data": {"stage": "public"}}, ["body", "data", "model"]),
        ({**event_in(), "data": {"model": "x", "color": "red"}}, ["body", "data", "color"]),
        ({**event_in(), "data": {"model": "x" * 301}}, ["body", "data", "model"]),
        ({**event_in(), "data": {"model": "x", "stage": "beta"}}, ["body", "data", "stage"]),
        ({**event_in(), "source": {"quote": "q", "page": 3}}, ["body", "source", "page"]),
        (
            event_in(type="team.formed", data={"name": "T", "headcount": True}),
            ["body", "data", "headcount"],
        ),
        (
            event_in(type="financial.report", data={"period": "Q3", "metrics": []}),
            ["body", "data", "period"],
        ),
        (
            event_in(type="event.corrected", data={"target": event_in()["id"]}),
            ["body", "data"],
        ),
        ({"events": []}, ["body", "events"]),
        (
            {"events": [event_in(), {**event_in(), "occurred": "x"}]},
            ["body", "events", 1, "occurred"],
        ),
        ({"events": [event_in()], "extra": True}, ["body", "extra"]),
    ],
)
def test_invalid_bodies_name_the_field(body: Any, loc: list[Any]) -> None:
    assert loc in [error["loc"] for error in errors_of(body)]


def test_batch_caps() -> None:
    assert errors_of({"events": [event_in() for _ in range(1001)]})[0]["loc"] == ["body", "events"]
    assert len(validate_body({"events": [event_in() for _ in range(1000)]})) == 1000
    twice = event_in()
    assert errors_of({"events": [twice, event_in(), twice]})[0]["loc"] == [
        "body",
        "events",
        2,
        "id",
    ]
    huge = event_in(type="ceo.letter", data={"author": "x", "summary": "y" * 20_000})
    assert validate_body(huge)
    huger = event_in(
        type="financial.report",
        data={"period": "2023", "metrics": [{"name": "m" * 300, "value": 1}] * 300},
    )
    assert errors_of(huger) == [
        {"loc": ["body", "data"], "msg": "at most 65536 bytes as canonical JSON"}
    ]


def test_lone_surrogates_are_refused_not_a_crash() -> None:
    target = event_in()["id"]
    for payload in ({"\ud800": 1}, {"model": ["\udc00"]}):
        raw = json.dumps(event_in(type="event.corrected", data={"target": target, "data": payload}))
        assert errors_of(json.loads(raw))[0]["loc"][:2] == ["body", "data"]
    for text in ("\ud800", "ok\udfff"):
        errors_of(event_in(type="ceo.letter", data={"author": text, "summary": "s"}))
        errors_of(event_in(source={"quote": text}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred", "[2023-05..2023-03]"),
        ("occurred", "[2023-06..2023-05-31]"),
        ("occurred", "[..202X]"),
        ("period", "[2024..2023]"),
    ],
)
def test_a_range_that_ends_before_it_begins_is_422_at_its_field(field: str, value: str) -> None:
    if field == "occurred":
        body = event_in(occurred=value)
        where = ["body", "occurred"]
    else:
        metrics = [{"name": "revenue", "value": 1}]
        body = event_in(type="financial.report", data={"period": value, "metrics": metrics})
        where = ["body", "data", "period"]
    (error,) = errors_of(body)
    assert error["loc"] == where, error


def test_every_date_form_is_taken_where_a_date_is() -> None:
    for value in ["202X", "202X~", "[..2023-06]", "[2023-05..2023-Q4]", "0001", "9999"]:
        (event,) = validate_body(event_in(occurred=value))
        assert event.occurred.value == value
        report = {"period": value, "metrics": [{"name": "revenue", "value": 1}]}
        (event,) = validate_body(event_in(type="financial.report", data=report))
        assert event.data["period"] == value
