"""Span keys: facts grouped by the length of their range of days, so that the chronology
finds the facts in effect on a day with one ordered scan per key (see MONTHS)."""

from __future__ import annotations

from datetime import date

from events.dates import FIRST_DAY, ordinal

FIRST = FIRST_DAY.isoformat()  # as the log stores it

# A fact's span key groups facts by the length of their range, so that the chronology finds
# those begun before a day D and still in effect on it with one ordered scan per key: every
# fact of a key in effect on D begins after one day, earliest(key, D), whatever the widest
# range. A range of days has the key of its class k = ceil(log2(days)) (class k: ranges of
# (2^(k-1), 2^k] days, begun after D - 2^k), so a scan passes over few facts that ended
# before D: those in (D - 2^k, D - days]. A range from a first of the month to another is
# counted in months, exactly up to EXACT_MONTHS (key MONTHS + m: begun after the first of
# D's month less m months, with no fact to pass over), then by class (MONTH_CLASSES +
# ceil(log2(m))). The calendar's ranges (month, quarter, year, widened, decade) are such,
# and thousands of facts share each one's first and last day: a bound of days would pass
# over all of those that ended on D, the commonest first day of a window. A range beginning
# on the calendar's first day ([..F], "0001") has key FROM_FIRST_DAY, whatever its length:
# all of its facts begin on that day, in the order of their ends, so that a scan of it begins
# at the first fact ending after D and passes over none.
MONTHS, EXACT_MONTHS, MONTH_CLASSES, FROM_FIRST_DAY = 100, 120, 300, 400
# The widest ranges, all the calendar's days: days in class 22, months in class 17.
MAX_DAY_CLASS, MAX_MONTH_CLASS = 22, 17


def span_key(lo: str, hi: str) -> int:
    """The span key of the days [lo, hi) (see MONTHS)."""
    if lo == FIRST:
        return FROM_FIRST_DAY
    if lo.endswith("-01") and hi.endswith("-01"):
        months = int(hi[:4]) * 12 + int(hi[5:7]) - int(lo[:4]) * 12 - int(lo[5:7])
        if months <= EXACT_MONTHS:
            return MONTHS + months
        return MONTH_CLASSES + (months - 1).bit_length()
    days = ordinal(hi) - ordinal(lo)
    return (days - 1).bit_length()


def earliest(key: int, day: date) -> date | None:
    """The day after which every fact of span key `key` still in effect on `day` begins
    (None: before any date; FROM_FIRST_DAY's facts are bounded by their ends instead)."""
    if key == FROM_FIRST_DAY:
        return None
    if key < MONTHS:
        ordinal = day.toordinal() - 2**key
        return date.fromordinal(ordinal) if ordinal >= 1 else None
    months = key - MONTHS if key < MONTH_CLASSES else 2 ** (key - MONTH_CLASSES)
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1) if index >= 12 else None


def _class_of(column: str, low: int, high: int) -> str:
    """ceil(log2(column)) in SQL, for 1 <= column <= 2^high: a binary search of the bounds."""
    if low == high:
        return str(low)
    middle = (low + high) // 2
    below, above = _class_of(column, low, middle), _class_of(column, middle + 1, high)
    return f"CASE WHEN {column} <= {2**middle} THEN {below} ELSE {above} END"


# span_key in SQL, of a range of `days` (counted by tables.first_versions' inner query). A
# range of whole months is within 4.4 days of as many mean months (30.436875 days: the
# Gregorian cycle's), so that rounding counts its months. Single days are tried before the
# search of the day classes: they are the commonest, and SQLite merges the inner query into
# the outer one, so that each mention of `days` counts them again.
_ALIGNED = "substr(lo, 9) = '01' AND substr(hi, 9) = '01'"
_MONTHS = "round(days / 30.436875)"
SPAN_KEY_SQL = (
    f"CASE WHEN lo = '{FIRST}' THEN {FROM_FIRST_DAY} "
    f"WHEN {_ALIGNED} THEN (CASE WHEN {_MONTHS} <= {EXACT_MONTHS} "
    f"THEN {MONTHS} + CAST({_MONTHS} AS INTEGER) "
    f"ELSE {MONTH_CLASSES} + {_class_of(_MONTHS, 0, MAX_MONTH_CLASS)} END) "
    f"WHEN days <= 1 THEN 0 ELSE {_class_of('days', 0, MAX_DAY_CLASS)} END"
)
