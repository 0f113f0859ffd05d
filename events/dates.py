"""Fuzzy dates: "2023", "2023-Q3", "2023-05", "2023-05-17", each optionally followed by
"~" (approximate) or "?" (uncertain), denoting a half-open range of days [lo, hi)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

_PATTERN = re.compile(r"([0-9]{4})(?:-(?:Q([1-4])|([0-9]{2})(?:-([0-9]{2}))?))?([~?])?")

MIN_YEAR = 1000
MAX_YEAR = 9997  # a widened year range must still end within date.max


class Precision(StrEnum):
    YEAR = "year"
    QUARTER = "quarter"
    MONTH = "month"
    DAY = "day"


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class FuzzyDate:
    """A parsed fuzzy date: its text, precision and half-open day range (after widening)."""

    value: str
    precision: Precision
    lo: date
    hi: date

    @classmethod
    def parse(cls, text: str) -> FuzzyDate:
        match = _PATTERN.fullmatch(text)
        if match is None:
            raise ValueError(
                "expected YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD, optionally followed by ~ or ?"
            )
        year_s, quarter_s, month_s, day_s, mark = match.groups()
        year = int(year_s)
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise ValueError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
        try:
            if quarter_s is not None:
                precision, lo = Precision.QUARTER, date(year, 3 * int(quarter_s) - 2, 1)
            elif day_s is not None:
                precision, lo = Precision.DAY, date(year, int(month_s), int(day_s))
            elif month_s is not None:
                precision, lo = Precision.MONTH, date(year, int(month_s), 1)
            else:
                precision, lo = Precision.YEAR, date(year, 1, 1)
        except ValueError:
            raise ValueError(f"{text!r} is not a calendar date") from None
        hi = _step(lo, precision, 1)
        if mark is not None:
            lo, hi = _step(lo, precision, -1), _step(hi, precision, 1)
        return cls(text, precision, lo, hi)

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


def _step(day: date, precision: Precision, units: int) -> date:
    if precision is Precision.DAY:
        return date.fromordinal(day.toordinal() + units)
    months = {Precision.YEAR: 12, Precision.QUARTER: 3, Precision.MONTH: 1}[precision]
    return _add_months(day, months * units)
