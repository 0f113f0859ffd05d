from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.canonical import canonical, canonical_without_floats
from events.chain import GENESIS, chain
from events.errors import ValidationFailed
from events.ids import new_ids
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


def test_canonical_matches_the_api_definition() -> None:
    value = {"b": [1, 2.5, {"é": "腾讯"}], "a": None}
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical(value) == expected == '{"a":null,"b":[1,2.5,{"é":"腾讯"}]}'


def test_chain_definition() -> None:
    entry = '{"a":1}'
    expected = hashlib.sha256(bytes(32) + hashlib.sha256(entry.encode()).digest()).hexdigest()
    assert chain(GENESIS, entry) == expected


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


def test_lone_surrogates_are_refused_not_a_crash() -> None:
    target = event_in()["id"]
    for payload in ({"\ud800": 1}, {"model": ["\udc00"]}):
        raw = json.dumps(event_in(type="event.corrected", data={"target": target, "data": payload}))
        assert errors_of(json.loads(raw))[0]["loc"][:2] == ["body", "data"]
    for text in ("\ud800", "ok\udfff"):
        errors_of(event_in(type="ceo.letter", data={"author": text, "summary": "s"}))
        errors_of(event_in(source={"quote": text}))


_float_free = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)


@given(_float_free)
def test_the_fast_encoder_is_canonical_for_float_free_values(value: Any) -> None:
    assert canonical_without_floats(value) == canonical(value)


def test_float_free_types_have_no_float_fields() -> None:
    from events.types import MAY_HOLD_FLOATS, PAYLOADS

    def has_float(schema: Any) -> bool:
        if isinstance(schema, dict):
            if schema.get("type") == "number" or schema == {}:
                return True
            return any(has_float(value) for value in schema.values())
        if isinstance(schema, list):
            return any(has_float(value) for value in schema)
        return False

    for name, payload in PAYLOADS.items():
        assert has_float(payload.model_json_schema()) == (name in MAY_HOLD_FLOATS), name


def test_new_ids_are_time_ordered_version_7_uuids() -> None:
    ids = [made for _ in range(100) for made in new_ids(10)]
    assert len(set(ids)) == 1000
    for value in ids:
        assert str(uuid.UUID(value)) == value
        assert uuid.UUID(value).version == 7
        assert uuid.UUID(value).variant == uuid.RFC_4122
    stamps = [value.replace("-", "")[:12] for value in ids]
    assert stamps == sorted(stamps)
