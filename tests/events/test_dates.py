from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.dates import FuzzyDate, Precision


@pytest.mark.parametrize(
    ("text", "precision", "lo", "hi"),
    [
        ("2023", Precision.YEAR, "2023-01-01", "2024-01-01"),
        ("2023-Q1", Precision.QUARTER, "2023-01-01", "2023-04-01"),
        ("2023-Q3", Precision.QUARTER, "2023-07-01", "2023-10-01"),
        ("2023-Q4", Precision.QUARTER, "2023-10-01", "2024-01-01"),
        ("2023-05", Precision.MONTH, "2023-05-01", "2023-06-01"),
        ("2023-12", Precision.MONTH, "2023-12-01", "2024-01-01"),
        ("2023-09-12", Precision.DAY, "2023-09-12", "2023-09-13"),
        ("2024-02-29", Precision.DAY, "2024-02-29", "2024-03-01"),
        ("2023~", Precision.YEAR, "2022-01-01", "2025-01-01"),
        ("2023-Q1~", Precision.QUARTER, "2022-10-01", "2023-07-01"),
        ("2023-05?", Precision.MONTH, "2023-04-01", "2023-07-01"),
        ("2023-01~", Precision.MONTH, "2022-12-01", "2023-03-01"),
        ("2023-12-31?", Precision.DAY, "2023-12-30", "2024-01-02"),
    ],
)
def test_parse(text: str, precision: Precision, lo: str, hi: str) -> None:
    parsed = FuzzyDate.parse(text)
    assert parsed.precision is precision
    assert (parsed.lo.isoformat(), parsed.hi.isoformat()) == (lo, hi)
    assert parsed.as_json() == {"value": text, "precision": precision.value, "lo": lo, "hi": hi}
    assert parsed.approximate == text.endswith(("~", "?"))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "23",
        "2023-5",
        "2023-13",
        "2023-00",
        "2023-Q0",
        "2023-Q5",
        "2023-02-30",
        "2023-05-01~?",
        "2023/05",
        " 2023",
        "2023-05-01T00:00",
        "0999",
        "9999",
        "\uff12\uff10\uff12\uff13",
        "May 2023",
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        FuzzyDate.parse(text)


@given(st.dates(min_value=date(1000, 1, 1), max_value=date(9997, 12, 31)), st.sampled_from("~?"))
def test_every_range_is_half_open_and_contains_its_day(day: date, mark: str) -> None:
    texts = [
        f"{day.year:04d}",
        f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}",
        f"{day.year:04d}-{day.month:02d}",
        day.isoformat(),
    ]
    widths = []
    for text in texts:
        exact, fuzzy = FuzzyDate.parse(text), FuzzyDate.parse(text + mark)
        assert exact.lo <= day < exact.hi
        unit = exact.hi - exact.lo
        assert fuzzy.lo < exact.lo and fuzzy.hi > exact.hi
        assert fuzzy.lo <= exact.lo - unit + timedelta(days=3)
        assert fuzzy.hi >= exact.hi + unit - timedelta(days=3)
        widths.append(unit)
    assert widths == sorted(widths, reverse=True)
