"""The report period: its filter on `metric_time`, the period before it, and the window of a trend line."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

__all__ = ["Period", "shift_months"]


def shift_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole months, clamped to the end of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def grain_start(day: dt.date, grain: str, week_start: int = 1) -> dt.date:
    """The first day of the `grain` period holding `day`; weeks start on ISO weekday `week_start` (1 = Monday), as
    the project's `settings.week_start` makes the compiler's weeks start."""
    if grain == "day":
        return day
    if grain == "week":
        return day - dt.timedelta(days=(day.isoweekday() - week_start) % 7)
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return dt.date(day.year, 1, 1)


def step(day: dt.date, grain: str, count: int) -> dt.date:
    """`day` moved by `count` periods of `grain`."""
    if grain == "day":
        return day + dt.timedelta(days=count)
    if grain == "week":
        return day + dt.timedelta(weeks=count)
    return shift_months(day, count * {"month": 1, "quarter": 3, "year": 12}[grain])


@dataclass(frozen=True)
class Period:
    """Inclusive dates. A period of whole months is compared with the same number of months before it; any
    other period with the same number of days before it."""

    start: dt.date
    end: dt.date

    @property
    def whole_months(self) -> int | None:
        after = self.end + dt.timedelta(days=1)
        if self.start.day != 1 or after.day != 1:
            return None
        return (after.year - self.start.year) * 12 + after.month - self.start.month

    def previous(self) -> Period:
        months = self.whole_months
        if months:
            return Period(shift_months(self.start, -months), self.start - dt.timedelta(days=1))
        days = (self.end - self.start).days + 1
        return Period(self.start - dt.timedelta(days=days), self.start - dt.timedelta(days=1))

    def trend_window(self, grain: str, points: int, week_start: int = 1) -> Period:
        """The `points` whole `grain` periods that end with the one holding the period's end."""
        last = grain_start(self.end, grain, week_start)
        return Period(step(last, grain, -(points - 1)), step(last, grain, 1) - dt.timedelta(days=1))

    def where(self) -> str:
        """The filter on metric_time (half-open, so timestamps on the last day count)."""
        after = self.end + dt.timedelta(days=1)
        return f"metric_time >= DATE '{self.start.isoformat()}' AND metric_time < DATE '{after.isoformat()}'"

    def label(self) -> str:
        return f"{self.start.isoformat()} to {self.end.isoformat()}"
