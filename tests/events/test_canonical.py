"""events/canonical.py: the one JSON text of a value, and the fast encoder for values
without floats."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.canonical import canonical, canonical_without_floats


def test_canonical_matches_the_api_definition() -> None:
    value = {"b": [1, 2.5, {"é": "腾讯"}], "a": None}
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical(value) == expected == '{"a":null,"b":[1,2.5,{"é":"腾讯"}]}'


_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


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
