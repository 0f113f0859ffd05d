from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.dates import (
    END,
    FIRST_DAY,
    LAST_DAY,
    FuzzyDate,
    Precision,
    after,
    hi_json,
    ordinal,
    stored_hi,
)


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
        # The calendar's ends: 0001-01-01 is its first day, and a range reaching 9999-12-31
        # ends the day after it, 10000-01-01 (stored as END, which sorts after every day).
        ("0001", Precision.YEAR, "0001-01-01", "0002-01-01"),
        ("0001~", Precision.YEAR, "0001-01-01", "0003-01-01"),
        ("0001-01-01?", Precision.DAY, "0001-01-01", "0001-01-03"),
        ("0999", Precision.YEAR, "0999-01-01", "1000-01-01"),
        ("9999", Precision.YEAR, "9999-01-01", "10000-01-01"),
        ("9999~", Precision.YEAR, "9998-01-01", "10000-01-01"),
        ("9999-Q4?", Precision.QUARTER, "9999-07-01", "10000-01-01"),
        ("9999-12", Precision.MONTH, "9999-12-01", "10000-01-01"),
        ("9999-12-30", Precision.DAY, "9999-12-30", "9999-12-31"),
        ("9999-12-31", Precision.DAY, "9999-12-31", "10000-01-01"),
        ("9999-12-31?", Precision.DAY, "9999-12-30", "10000-01-01"),
        # Decades, widened by a decade each side.
        ("202X", Precision.DECADE, "2020-01-01", "2030-01-01"),
        ("202X~", Precision.DECADE, "2010-01-01", "2040-01-01"),
        ("199X?", Precision.DECADE, "1980-01-01", "2010-01-01"),
        ("000X", Precision.DECADE, "0001-01-01", "0010-01-01"),
        ("000X~", Precision.DECADE, "0001-01-01", "0020-01-01"),
        ("999X", Precision.DECADE, "9990-01-01", "10000-01-01"),
        ("999X~", Precision.DECADE, "9980-01-01", "10000-01-01"),
        # On or before F: from the calendar's first day to F's end.
        ("[..0001-01-01]", Precision.ON_OR_BEFORE, "0001-01-01", "0001-01-02"),
        ("[..2023-06]", Precision.ON_OR_BEFORE, "0001-01-01", "2023-07-01"),
        ("[..2023]", Precision.ON_OR_BEFORE, "0001-01-01", "2024-01-01"),
        ("[..2023-Q3]", Precision.ON_OR_BEFORE, "0001-01-01", "2023-10-01"),
        ("[..9999]", Precision.ON_OR_BEFORE, "0001-01-01", "10000-01-01"),
        ("[..9999-12-31]", Precision.ON_OR_BEFORE, "0001-01-01", "10000-01-01"),
        # Between F1 and F2: F1's start to F2's end.
        ("[2023-05..2023-Q4]", Precision.BETWEEN, "2023-05-01", "2024-01-01"),
        ("[2023-05-17..2023-05-17]", Precision.BETWEEN, "2023-05-17", "2023-05-18"),
        ("[0001..9999-12-30]", Precision.BETWEEN, "0001-01-01", "9999-12-31"),
        ("[9999-12-31..9999-12-31]", Precision.BETWEEN, "9999-12-31", "10000-01-01"),
    ],
)
def test_parse(text: str, precision: Precision, lo: str, hi: str) -> None:
    parsed = FuzzyDate.parse(text)
    assert parsed.precision is precision
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
        "0000",
        "0000-01",
        "0000-Q1",
        "0000-01-01",
        "10000",
        "20X",
        "202X-05",
        "202Y",
        "20XX",
        "[2023-05..2023-03]",  # F2 before F1
        "[2023-05..2023-04-30]",
        "[2023-06..2023-05-31]",  # F2 ends where F1 begins: no day between
        "[2024..2023]",
        "[..]",
        "[2023..]",
        "[..2023~]",
        "[2023?..2024]",
        "[..202X]",
        "[..2023-05-01]~",
        "[2023..2024..2025]",
        "[ ..2023]",
        "..2023",
        "[..2023",
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
        assert exact.first <= day <= exact.last
        unit = exact.last - exact.first + timedelta(days=1)
        assert fuzzy.first < exact.first and fuzzy.last > exact.last
        assert fuzzy.first <= exact.first - unit + timedelta(days=3)
        assert fuzzy.last >= exact.last + unit - timedelta(days=3)
        widths.append(unit)
    assert widths == sorted(widths, reverse=True)


def _forms(day: date) -> list[str]:
    """The four exact forms that contain `day`."""
    return [
        f"{day.year:04d}",
        f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}",
        f"{day.year:04d}-{day.month:02d}",
        day.isoformat(),
    ]


days = st.dates(min_value=FIRST_DAY, max_value=LAST_DAY)


@given(days, st.sampled_from(["", "~", "?"]))
def test_every_form_lies_within_the_calendar(day: date, mark: str) -> None:
    texts = [text + mark for text in _forms(day)] + [f"{day.year // 10:03d}X{mark}"]
    texts += [f"[..{text}]" for text in _forms(day)]
    for text in texts:
        parsed = FuzzyDate.parse(text)
        assert FIRST_DAY <= parsed.first <= day <= parsed.last <= LAST_DAY, text
        # As the log stores them, [lo, hi) holds the day: bounds compare as strings.
        assert parsed.lo <= day.isoformat() < parsed.hi, text
        assert (parsed.lo, parsed.hi) == (parsed.first.isoformat(), after(parsed.last)), text
        assert parsed.as_json()["value"] == text


@given(days, days)
def test_between_spans_its_two_ends(first: date, last: date) -> None:
    """From F1's start to F2's end, or 422 when F2 ends by F1's start."""
    for start in _forms(first):
        for end in _forms(last):
            text = f"[{start}..{end}]"
            begin, finish = FuzzyDate.parse(start), FuzzyDate.parse(end)
            if finish.last < begin.first:
                with pytest.raises(ValueError):
                    FuzzyDate.parse(text)
                continue
            parsed = FuzzyDate.parse(text)
            assert parsed.precision is Precision.BETWEEN
            assert (parsed.lo, parsed.hi) == (begin.lo, finish.hi)


def test_the_bound_after_the_calendar() -> None:
    """END, the stored `hi` of a range reaching 9999-12-31, sorts after every day and every
    other bound, counts as the day after LAST_DAY, and is 10000-01-01 in responses."""
    assert after(LAST_DAY) == END and after(date(9999, 12, 30)) == "9999-12-31"
    assert END > "9999-12-31" and after(date(2023, 5, 1)) < END
    assert ordinal(END) == ordinal("9999-12-31") + 1
    assert hi_json(END) == "10000-01-01" and stored_hi("10000-01-01") == END
    assert hi_json("2024-01-01") == "2024-01-01" == stored_hi("2024-01-01")
    with pytest.raises(ValueError):
        ordinal("10000-01-01")  # a response's text is no stored bound
