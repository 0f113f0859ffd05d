"""Fuzzy dates, each a half-open range of days [lo, hi):

- "2023", "2023-Q3", "2023-05", "2023-05-17", and the decade "202X", each optionally followed
  by "~" (approximate) or "?" (uncertain), which widen it by one of its units on each side;
- "[..F]": on or before F (from the calendar's first day to F's end);
- "[F1..F2]": some day between F1's start and F2's end;

where F, F1 and F2 are any of the first four forms without a mark. The calendar runs from
0001-01-01 to 9999-12-31; a range that would run past it is cut at its ends. A range that
reaches the calendar's last day ends at END, the bound after it (JSON: "10000-01-01")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

_POINT = r"([0-9]{4})(?:-(?:Q([1-4])|([0-9]{2})(?:-([0-9]{2}))?))?"
_PATTERN = re.compile(rf"(?:{_POINT}|([0-9]{{3}})X)([~?])?")
_EXACT = re.compile(_POINT)
_RANGE = re.compile(r"\[([^\]\[.]*)\.\.([^\]\[.]+)\]")

FIRST_DAY = date.min  # 0001-01-01
LAST_DAY = date.max  # 9999-12-31
# The bound after LAST_DAY, as the log stores `hi`: text that sorts after every day, as an
# exclusive end must ("month 13 of 9999" counts as 10000-01 in a span key's months).
END = "9999-13-01"
END_JSON = "10000-01-01"  # END as responses give it: the day after LAST_DAY
FORMS = (
    "YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD or a decade YYYX, optionally followed by ~ or ?; "
    "or [..F] (on or before F) or [F1..F2] (between), F being one of the first four forms"
)


class Precision(StrEnum):
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    DAY = "day"
    DECADE = "decade"
    ON_OR_BEFORE = "on_or_before"
    BETWEEN = "between"


# Each unit's length in months (a day's is one day).
_MONTHS = {Precision.DECADE: 120, Precision.YEAR: 12, Precision.QUARTER: 3, Precision.MONTH: 1}


@dataclass(frozen=True, slots=True)
class FuzzyDate:
    """A parsed fuzzy date: its text, precision and its first and last day (after widening),
    which are the half-open range [lo, hi) as the log stores it."""

    value: str
    precision: Precision
    first: date
    last: date

    @classmethod
    def parse(cls, text: str) -> FuzzyDate:
        between = _RANGE.fullmatch(text)
        if between is not None:
            first, last = between.groups()
            end = _point(last, text).last
            if not first:
                return cls(text, Precision.ON_OR_BEFORE, FIRST_DAY, end)
            begin = _point(first, text).first
            if end < begin:
                raise ValueError(f"{text!r}: {last} does not end after {first} begins")
            return cls(text, Precision.BETWEEN, begin, end)
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise ValueError(f"expected {FORMS}")
        mark = match.group(6)
        if match.group(5) is not None:
            start = _Start(Precision.DECADE, int(match.group(5)) * 120)
        else:
            start = _start(text[:-1] if mark else text, text)
        units = 1
        if mark is not None:
            start, units = start.moved(-1), 3
        return start.range(text, units)

    @property
    def lo(self) -> str:
        return self.first.isoformat()

    @property
    def hi(self) -> str:
        return after(self.last)

    @property
    def approximate(self) -> bool:
        return self.value.endswith(("~", "?"))

    def as_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "precision": self.precision.value,
            "lo": self.lo,
            "hi": hi_json(self.hi),
        }


@dataclass(frozen=True, slots=True)
class _Start:
    """Where a range of `precision` units begins: a count of months since year 0 (a day's
    ordinal for days), which may lie before the calendar."""

    precision: Precision
    at: int

    def moved(self, units: int) -> _Start:
        return _Start(self.precision, self.at + units * _MONTHS.get(self.precision, 1))

    def range(self, text: str, units: int = 1) -> FuzzyDate:
        """`units` of `precision` from here, cut to the calendar."""
        end = self.moved(units).at
        if self.precision is Precision.DAY:
            first = date.fromordinal(max(self.at, 1))
            last = date.fromordinal(min(end - 1, LAST_DAY.toordinal()))
        else:
            first = _month(self.at) if self.at >= 12 else FIRST_DAY
            last = _month(end) - timedelta(days=1) if end < 10_000 * 12 else LAST_DAY
        return FuzzyDate(text, self.precision, first, last)


def _month(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _start(part: str, text: str) -> _Start:
    """The start of YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD (no mark)."""
    match = _EXACT.fullmatch(part)
    if match is None:
        if part == text:
            raise ValueError(f"expected {FORMS}")
        raise ValueError(
            f"{text!r}: {part!r} is not a date: in [..F] and [F1..F2], each of F, F1 and F2 is "
            "YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD, without ~ or ?"
        )
    year_s, quarter_s, month_s, day_s = match.groups()
    year = int(year_s)
    try:
        if day_s is not None:
            return _Start(Precision.DAY, date(year, int(month_s), int(day_s)).toordinal())
        if year == 0:
            raise ValueError
        if quarter_s is not None:
            return _Start(Precision.QUARTER, year * 12 + 3 * int(quarter_s) - 3)
        if month_s is not None:
            if not 1 <= int(month_s) <= 12:
                raise ValueError
            return _Start(Precision.MONTH, year * 12 + int(month_s) - 1)
        return _Start(Precision.YEAR, year * 12)
    except ValueError:
        raise ValueError(f"{text!r} is not a calendar date") from None


def _point(part: str, text: str) -> FuzzyDate:
    """YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD, without a mark, as a range."""
    return _start(part, text).range(text)


def days_of(text: str) -> tuple[date, date]:
    """The first and the last day of YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD (the day itself):
    how a query's `as_of`, `from` and `to` read a coarser date."""
    point = _point(text, text)
    return point.first, point.last


def after(day: date) -> str:
    """The exclusive bound that follows `day`, as the log stores `hi`."""
    return END if day == LAST_DAY else (day + timedelta(days=1)).isoformat()


def hi_json(hi: str) -> str:
    """A stored `hi` as responses give it."""
    return END_JSON if hi == END else hi


def stored_hi(text: str) -> str:
    """A response's `hi` as the log stores it (hi_json's inverse)."""
    return END if text == END_JSON else text


def ordinal(bound: str) -> int:
    """The day ordinal of a stored `lo` or `hi` (END: the one after LAST_DAY's)."""
    return LAST_DAY.toordinal() + 1 if bound == END else date.fromisoformat(bound).toordinal()
