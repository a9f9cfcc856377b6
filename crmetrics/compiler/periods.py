"""Calendars: truncating a time value to a grain and moving it by whole periods, in SQL and in Python.

Every grain is expressed through three portable operations that sqlglot renders in each dialect: CAST to DATE,
DATE_TRUNC to week/quarter/year, and adding days or months. A week that starts on another day than Monday and a
fiscal year that starts in another month than January are the calendar period of a date moved by a fixed offset:

    week starting on weekday w:      trunc_week(d - (w - 1) days) + (w - 1) days
    fiscal year starting in month m: trunc_year(d - (m - 1) months) + (m - 1) months

so the same formula serves every dialect, and a period is always labelled by its first day (a DATE).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from crmetrics.compiler.nodes import cast
from crmetrics.errors import QueryError
from crmetrics.model.types import Dimension

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# each grain as a whole number of days or months, so periods move by DATE arithmetic every dialect has
STEPS = {
    "day": (1, "DAY"),
    "week": (7, "DAY"),
    "month": (1, "MONTH"),
    "quarter": (3, "MONTH"),
    "year": (12, "MONTH"),
    "fiscal_quarter": (3, "MONTH"),
    "fiscal_year": (12, "MONTH"),
}
_TRUNC_UNITS = {"week": "WEEK", "month": "MONTH", "quarter": "QUARTER", "year": "YEAR"}
_FISCAL = {"fiscal_quarter": "quarter", "fiscal_year": "year"}

DATE = exp.DataType.Type.DATE


def date_literal(value: dt.date) -> exp.Expression:
    """A DATE literal, written as CAST('YYYY-MM-DD' AS DATE) so that every dialect reads it."""
    return cast(exp.Literal.string(value.isoformat()), DATE)


def add_units(value: exp.Expression, count: int | exp.Expression, unit: str) -> exp.Expression:
    """`value` (a DATE) moved by `count` (a number or an integer expression) days or months, still a DATE."""
    if isinstance(count, int):
        if count == 0:
            return value
        count = exp.Literal.number(count)
    return cast(exp.DateAdd(this=value, expression=count, unit=exp.Var(this=unit)), DATE)


@dataclass(frozen=True)
class Calendar:
    """The project's calendar settings: week start, fiscal year start and reporting time zone."""

    week_start: int = 1  # ISO weekday: 1 = Monday
    fiscal_start: int = 1  # month in which the fiscal year starts
    timezone: str | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Calendar:
        """Read `week_start`, `fiscal_year_start` and `timezone` from the project's `settings`."""
        week = settings.get("week_start", "monday")
        return cls(
            week_start=WEEKDAYS.index(week) + 1 if week in WEEKDAYS else 1,
            fiscal_start=int(settings.get("fiscal_year_start", 1)),
            timezone=settings.get("timezone"),
        )

    # --- SQL -------------------------------------------------------------------------------------------------

    def localize(self, value: exp.Expression, dim: Dimension) -> exp.Expression:
        """A time dimension's value in the project time zone (unchanged for local times and dates)."""
        if self.timezone is None or not (dim.with_time_zone or dim.timezone):
            return value
        target = exp.Literal.string(self.timezone)
        if dim.with_time_zone:
            return exp.ConvertTimezone(target_tz=target, timestamp=value)
        return exp.ConvertTimezone(source_tz=exp.Literal.string(dim.timezone), target_tz=target, timestamp=value)

    def truncate(self, value: exp.Expression, grain: str) -> exp.Expression:
        """The first day of the `grain` period that contains `value`, as a DATE."""
        if grain == "day":
            return cast(value, DATE)
        shift, unit, base = self._offset(grain)
        shifted = add_units(cast(value, DATE), -shift, unit) if shift else value
        trunc = cast(exp.TimestampTrunc(this=shifted, unit=exp.Var(this=_TRUNC_UNITS[base])), DATE)
        return add_units(trunc, shift, unit)

    def shift(self, value: exp.Expression, periods: int, grain: str) -> exp.Expression:
        """A period start moved by `periods` periods of `grain` (negative: back in time)."""
        size, unit = STEPS[grain]
        return add_units(value, periods * size, unit)

    def _offset(self, grain: str) -> tuple[int, str, str]:
        """(shift, unit, calendar grain): the period is the calendar period of the date moved back by shift."""
        if grain == "week":
            return self.week_start - 1, "DAY", "week"
        if grain in _FISCAL:
            return self.fiscal_start - 1, "MONTH", _FISCAL[grain]
        return 0, "DAY", grain

    # --- Python ----------------------------------------------------------------------------------------------

    def start_of(self, day: dt.date, grain: str) -> dt.date:
        """The first day of the `grain` period that contains `day`."""
        if grain == "day":
            return day
        if grain == "week":
            return day - dt.timedelta(days=(day.isoweekday() - self.week_start) % 7)
        months = {"month": 1, "quarter": 3, "year": 12, "fiscal_quarter": 3, "fiscal_year": 12}[grain]
        origin = self.fiscal_start - 1 if grain in _FISCAL else 0
        index = (day.year * 12 + day.month - 1 - origin) // months * months + origin
        return dt.date(index // 12, index % 12 + 1, 1)

    def move(self, day: dt.date, periods: int, grain: str) -> dt.date:
        """`day` moved by whole periods of `grain`; a month end past the target month's length clips to it."""
        size, unit = STEPS[grain]
        if unit == "DAY":
            return day + dt.timedelta(days=size * periods)
        index = day.year * 12 + day.month - 1 + size * periods
        year, month = divmod(index, 12)
        if not dt.MINYEAR <= year <= dt.MAXYEAR:
            raise QueryError(f"{day} moved by {periods} {grain} periods is outside the calendar")
        return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))

    def end_of(self, day: dt.date, grain: str) -> dt.date:
        """The last day of the `grain` period that contains `day`."""
        return self.move(self.start_of(day, grain), 1, grain) - dt.timedelta(days=1)

    # --- grains ----------------------------------------------------------------------------------------------

    def nests(self, fine: str, coarse: str) -> bool:
        """Whether every `coarse` period is a union of whole `fine` periods (so values declared at `fine` add up)."""
        if fine == coarse or fine == "day":
            return True
        if coarse == "day" or fine == "week" or coarse == "week":
            return False
        fine_months, coarse_months = STEPS[fine][0], STEPS[coarse][0]
        if coarse_months % fine_months:
            return False
        return (self._origin(coarse) - self._origin(fine)) % fine_months == 0

    def _origin(self, grain: str) -> int:
        return self.fiscal_start - 1 if grain in _FISCAL else 0


def periods_between(calendar: Calendar, start: exp.Expression, end: exp.Expression, grain: str) -> exp.Expression:
    """Whole `grain` periods from the period of `start` to the period of `end` (0 within one period)."""
    first, last = calendar.truncate(start, grain), calendar.truncate(end, grain)
    size, unit = STEPS[grain]
    if unit == "DAY":
        span: exp.Expression = exp.DateDiff(this=last, expression=first, unit=exp.Var(this="DAY"))
    else:
        span = exp.Sub(this=_month_index(last), expression=_month_index(first))
    if size == 1:
        return span
    # both ends are period starts, so the span is an exact multiple of the period's size
    return exp.Cast(
        this=exp.Div(this=exp.Paren(this=span), expression=exp.Literal.number(size)),
        to=exp.DataType(this=exp.DataType.Type.BIGINT),
    )


def _month_index(day: exp.Expression) -> exp.Expression:
    """Months since year 0 of a DATE: year * 12 + month."""
    # YEAR()/MONTH() rather than EXTRACT: the per-dialect rewrites give them to SQLite (through STRFTIME)
    year, month = exp.Year(this=day), exp.Month(this=day.copy())
    return exp.Paren(this=exp.Add(this=exp.Mul(this=year, expression=exp.Literal.number(12)), expression=month))
