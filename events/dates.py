"""Fuzzy dates, each a half-open range of days [lo, hi):

- "2023", "2023-Q3", "2023-05", "2023-05-17", and the decade "202X", each optionally followed
  by "~" (approximate) or "?" (uncertain), which widen it by one of its units on each side;
- "[..F]": on or before F (from the calendar's first day to F's end);
- "[F1..F2]": some day between F1's start and F2's end;

where F, F1 and F2 are any of the first four forms without a mark. The calendar runs from
0001-01-01 to 9999-12-31; a range that would run past it is cut at its ends, so that `hi` is
at most 9999-12-31 (a range still has to end after it begins: the day 9999-12-31 itself can
be asked about but cannot be a range's first day)."""

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
LAST_DAY = date.max  # 9999-12-31: no range ends after it
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
    """A parsed fuzzy date: its text, precision and half-open day range (after widening)."""

    value: str
    precision: Precision
    lo: date
    hi: date

    @classmethod
    def parse(cls, text: str) -> FuzzyDate:
        between = _RANGE.fullmatch(text)
        if between is not None:
            first, last = between.groups()
            end = _point(last, text).hi
            if not first:
                return cls(text, Precision.ON_OR_BEFORE, FIRST_DAY, end)
            begin = _point(first, text).lo
            if end <= begin:
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
    def approximate(self) -> bool:
        return self.value.endswith(("~", "?"))

    def as_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "precision": self.precision.value,
            "lo": self.lo.isoformat(),
            "hi": self.hi.isoformat(),
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
            lo = date.fromordinal(max(self.at, 1))
            hi = date.fromordinal(min(end, LAST_DAY.toordinal()))
        else:
            lo = _month(self.at) if self.at >= 12 else FIRST_DAY
            hi = _month(end) if end < 10_000 * 12 else LAST_DAY
        if hi <= lo:
            raise ValueError(f"{text!r} would begin on the calendar's last day, {LAST_DAY}")
        return FuzzyDate(text, self.precision, lo, hi)


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
    start = _start(text, text)
    if start.precision is Precision.DAY:
        day = date.fromordinal(start.at)
        return day, day
    end = start.moved(1).at
    last = _month(end) - timedelta(days=1) if end < 10_000 * 12 else LAST_DAY
    return _month(start.at), last
