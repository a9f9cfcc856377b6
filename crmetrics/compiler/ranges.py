"""Time ranges: `--start`/`--end` dates and relative ranges ("last 90 days", "this quarter", "year to date").

A relative range is resolved in Python against `today` (the caller's, or the current date in the project time
zone), so the same question with the same `--today` always selects the same days. Both ends are inclusive dates.

    today, yesterday
    last N <grain>s       N periods ending with the current one, the current one included (last 90 days =
                          today and the 89 days before it; last 3 months = this month and the two before)
    previous N <grain>s   the N whole periods before the current one ("previous 4 weeks")
    this <grain>          the current period, whole ("this quarter")
    previous <grain>      the period before the current one; also "last <grain>" ("last month")
    <grain> to date       from the start of the current period to today ("year to date"); also ytd, qtd, mtd, wtd
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

from crmetrics.compiler.periods import Calendar
from crmetrics.errors import QueryError

_GRAIN_WORDS = {
    "day": "day",
    "week": "week",
    "month": "month",
    "quarter": "quarter",
    "year": "year",
    "fiscal quarter": "fiscal_quarter",
    "fiscal_quarter": "fiscal_quarter",
    "fiscal year": "fiscal_year",
    "fiscal_year": "fiscal_year",
}
_SHORT = {"ytd": "year", "qtd": "quarter", "mtd": "month", "wtd": "week", "fytd": "fiscal_year"}
_GRAIN = r"(?P<grain>fiscal[ _]quarter|fiscal[ _]year|day|week|month|quarter|year)"
_PATTERNS = (
    ("last_n", re.compile(rf"^last\s+(?P<n>\d+)\s+{_GRAIN}s?$")),
    ("previous_n", re.compile(rf"^previous\s+(?P<n>\d+)\s+{_GRAIN}s?$")),
    ("this", re.compile(rf"^(?:this|current)\s+{_GRAIN}$")),
    ("previous", re.compile(rf"^(?:previous|last|prior)\s+{_GRAIN}$")),
    ("to_date", re.compile(rf"^{_GRAIN}[ _-]to[ _-]date$")),
)
EXAMPLES = (
    "last 90 days, previous 3 months, this quarter, previous month, year to date, today, 2024-01-01 to 2024-03-31"
)


def parse_date(value: str | dt.date | None, what: str) -> dt.date | None:
    """A date from an ISO string (YYYY-MM-DD) or a date; a datetime keeps only its date."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise QueryError(f"{what} must be a date written YYYY-MM-DD, got {value!r}")


def current_date(calendar: Calendar) -> dt.date:
    """Today in the project time zone (the machine's local date when the project sets none)."""
    if calendar.timezone is None:
        return dt.date.today()
    return dt.datetime.now(zoneinfo.ZoneInfo(calendar.timezone)).date()


_EXPLICIT = re.compile(r"^(\d{4}-\d{2}-\d{2})\s+(?:to|\.\.)\s+(\d{4}-\d{2}-\d{2})$")


def is_relative(text: str) -> bool:
    """Whether a range counts from today ('last 90 days'), unlike '2024-01-01 to 2024-03-31'."""
    return not _EXPLICIT.match(" ".join(str(text).lower().split()))


def resolve_range(text: str, today: dt.date, calendar: Calendar) -> tuple[dt.date, dt.date]:
    """The first and last day (inclusive) of a relative range such as 'last 90 days'."""
    phrase = " ".join(str(text).lower().split())
    if phrase in ("today", "yesterday"):
        day = today if phrase == "today" else today - dt.timedelta(days=1)
        return day, day
    if phrase in _SHORT:
        return calendar.start_of(today, _SHORT[phrase]), today
    explicit = _EXPLICIT.match(phrase)
    if explicit:
        start, end = (parse_date(part, "a range's end") for part in explicit.groups())
        return check_order(start, end)  # type: ignore[arg-type]
    for kind, pattern in _PATTERNS:
        match = pattern.match(phrase)
        if match:
            grain = _GRAIN_WORDS[match.group("grain").replace("_", " ")]
            count = int(match.groupdict().get("n") or 1)
            if count < 1:
                raise QueryError(f"time range '{text}': the number of periods must be at least 1")
            return _resolve(kind, grain, count, today, calendar)
    raise QueryError(f"cannot read the time range '{text}'; write for example: {EXAMPLES}")


def _resolve(kind: str, grain: str, count: int, today: dt.date, calendar: Calendar) -> tuple[dt.date, dt.date]:
    current = calendar.start_of(today, grain)
    if kind == "last_n":
        if grain == "day":
            return today - dt.timedelta(days=count - 1), today
        return calendar.move(current, 1 - count, grain), today
    if kind == "previous_n" or kind == "previous":
        return calendar.move(current, -count, grain), current - dt.timedelta(days=1)
    if kind == "this":
        return current, calendar.end_of(today, grain)
    return current, today  # to date


def check_order(start: dt.date | None, end: dt.date | None) -> tuple[dt.date | None, dt.date | None]:
    """Refuse a range whose end is before its start."""
    if start is not None and end is not None and end < start:
        raise QueryError(f"the time range ends ({end}) before it starts ({start})")
    return start, end
