"""The fast validation path (TypedDict mirrors) never disagrees with the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from events import types as t
from events.canonical import parse_json
from events.entries import NewEvent, content
from events.errors import ValidationFailed
from events.inputs import EventIn
from events.mirror import NoMirror, mirror, mirror_type
from events.validation import validate_body, validate_json_body

SEEDS = Path(__file__).resolve().parents[2] / "seeds" / "big-models-2023.ndjson"
SEED_EVENTS = [json.loads(line) for line in SEEDS.read_text().splitlines() if line.strip()]

fast = TypeAdapter[Any](mirror_type(EventIn))
model = TypeAdapter[Any](EventIn)

FINANCIAL: dict[str, Any] = {
    "type": "financial.report",
    "company": "tencent",
    "occurred": "2023-11-15",
    "data": {
        "period": "2023-Q3",
        "metrics": [{"name": "ad revenue", "value": 25.7e9, "unit": "CNY", "yoy_pct": 20.0}],
        "highlights": ["grew"],
    },
    "id": "0190B0C0-0000-7000-8000-000000000001",
}
CORRECTION: dict[str, Any] = {
    "type": "event.corrected",
    "company": "didi",
    "occurred": "2023-06",
    "data": {"target": "0190b0c0-0000-7000-8000-000000000001", "confidence": "rumored"},
}
EXAMPLES = [*SEED_EVENTS, FINANCIAL, CORRECTION]

# Built afresh on every draw: a mutation may later write into a drawn list or dict.
ODD_JSON = ["null", "0", "1.0", "2.5", "-1", "true", '""', '"x"', '"2023-Q3"', "[]", '["x"]']
ODD_VALUES = st.sampled_from([*ODD_JSON, "{}", '{"k": 1}', json.dumps("a" * 400)]).map(json.loads)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*prefix, index)))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """A valid event with one to three places replaced, removed or added to."""
    event = json.loads(json.dumps(draw(st.sampled_from(EXAMPLES))))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(event)))
        if not path:
            continue
        *parents, last = path
        holder = event
        for part in parents:
            holder = holder[part]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            holder[last] = draw(ODD_VALUES)
        elif action == "remove" and isinstance(holder, dict):
            del holder[last]
        elif isinstance(holder, dict):
            holder[draw(st.sampled_from(["extra", "stage", "role", "unit", "aliases"]))] = draw(
                ODD_VALUES
            )
    return event


def _by_model(value: Any) -> Any:
    return model.dump_python(model.validate_python(value), exclude_none=True)


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_null(item) for item in value)
    return False


Outcome = tuple[str, Any]


def _by_mirror(event: Any) -> Outcome:
    try:
        return ("accepted", {"confidence": "reported", **fast.validate_python(event)})
    except ValidationError:
        return ("refused", None)


def _expected_of_the_mirror(event: Any) -> tuple[Outcome, str]:
    """What the mirror must answer, and why: the model's value where the model accepts an
    event the mirror is made to take; a refusal where the model refuses, and where the model
    accepts what the mirror leaves to it (an explicit null, which the model drops; a type
    whose model has a validator of its own, so no mirror)."""
    try:
        value = _by_model(event)
    except ValidationError:
        return ("refused", None), "refused by the model"
    if event.get("type") == "event.corrected":
        return ("refused", None), "accepted by the model: a type with no mirror"
    if _has_null(event):
        return ("refused", None), "accepted by the model: an explicit null"
    return ("accepted", value), "accepted by the model"


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_the_mirror_accepts_what_the_model_accepts_and_refuses_the_rest(event: Any) -> None:
    # Both outcomes compared on every example: the mirror accepting what the model refuses,
    # accepting it as another value, or refusing what it is made to take all fail.
    expected, why = _expected_of_the_mirror(event)
    found = _by_mirror(event)
    hypothesis.event(f"mirror {found[0]}; {why}")
    assert found == expected


@pytest.mark.parametrize("event", [SEED_EVENTS[-1], FINANCIAL, CORRECTION])
def test_the_mirror_takes_the_common_case(event: dict[str, Any]) -> None:
    if event["type"] == "event.corrected":
        with pytest.raises(ValidationError):  # a model validator: no mirror, the model decides
            fast.validate_python(event)
    else:
        assert {"confidence": "reported", **fast.validate_python(event)} == _by_model(event)


def test_a_null_goes_to_the_model_and_is_dropped() -> None:
    event = {**FINANCIAL, "source": None, "confidence": "confirmed"}
    with pytest.raises(ValidationError):
        fast.validate_python(event)
    (validated,) = validate_body(event)
    assert validated.source_json is None and validated.confidence == "confirmed"


def test_refusals_still_name_the_place() -> None:
    event = {**FINANCIAL, "data": {"period": "2023-Q3", "metrics": [{"value": 1}]}}
    with pytest.raises(ValidationFailed) as caught:
        validate_body({"events": [EXAMPLES[0], event]})
    assert caught.value.errors[0]["loc"] == ["body", "events", 1, "data", "metrics", 0, "name"]


def test_models_with_validators_have_no_mirror() -> None:
    with pytest.raises(NoMirror):
        mirror(t.EventCorrected)

    class Aliased(BaseModel):
        value: int = 0
        model_config = {"populate_by_name": True}

    assert mirror(Aliased) is mirror(Aliased)  # derived once


def _outcome(validate: Any, argument: Any) -> Any:
    """What a validation gives, ids made for id-less events left out (they are random)."""
    try:
        events: list[NewEvent] = validate(argument)
    except ValidationFailed as error:
        return ("refused", error.detail, error.errors)
    return [
        (None if event.fresh else event.id, content(event), event.expected_version, event.loc)
        for event in events
    ]


TEXT_VARIANTS = st.sampled_from(["compact", "spaced", "duplicate key", "batch"])


@settings(max_examples=400, deadline=None)
@given(mutated(), TEXT_VARIANTS)
def test_validating_the_json_text_agrees_with_validating_the_parsed_body(
    event: Any, variant: str
) -> None:
    body: Any = {"events": [event, event]} if variant == "batch" else event
    text = json.dumps(body, separators=(",", ":") if variant == "compact" else None)
    if variant == "duplicate key" and isinstance(event, dict) and event:
        first = next(iter(event))
        text = "{" + json.dumps(first) + ': "not it",' + text[1:]  # the later one counts
    raw = text.encode()
    from_text = _outcome(validate_json_body, raw)
    hypothesis.event(f"{variant}: {'refused' if from_text[0] == 'refused' else 'accepted'}")
    assert from_text == _outcome(lambda r: validate_body(parse_json(r)), raw)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_parse_json_reads_what_the_json_module_reads(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    parsed = parse_json(text.encode())
    expected = json.loads(text)
    assert parsed == expected
    assert json.dumps(parsed) == json.dumps(expected)  # int stays int, float stays float


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"\\ud800"', "\ud800"),  # a lone surrogate: the json module reads it
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("\ufeff{}", {}),  # a byte order mark
        # deeper than pydantic-core reads
        ("[" * 300 + "]" * 300, json.loads("[" * 300 + "]" * 300)),
    ],
)
def test_parse_json_falls_back_to_the_json_module(text: str, expected: Any) -> None:
    assert parse_json(text.encode()) == expected


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "[-Infinity]", '{"a":1}x', "", "[1,]"])
def test_parse_json_refuses_what_is_not_json(text: str) -> None:
    with pytest.raises(ValueError):
        parse_json(text.encode())
