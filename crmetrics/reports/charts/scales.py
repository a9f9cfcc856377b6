"""Scales, ticks, colours and labels for the built-in SVG renderer."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crmetrics.reports.formatting import short_number

PALETTE = ("#4f46e5", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#f97316")
BLUES = ((239, 246, 255), (147, 197, 253), (37, 99, 235), (30, 58, 138))


def as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None


def as_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (the classic 1-2-5 steps)."""
    if high == low:
        high = low + (abs(low) or 1)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(ticks[-1] + step)
    return ticks


def axis_label(value: float, fmt: str | None) -> str:
    if fmt and fmt.endswith("%"):
        percent = round(value * 100, 6)
        return f"{percent:.0f}%" if percent == round(percent) else f"{percent:.1f}%"  # ticks at 0.5% steps too
    if abs(value) < 1000 and value != int(value):
        return f"{value:.2f}".rstrip("0").rstrip(".")  # ticks 0.5, 1, 1.5: one style along the axis
    text = short_number(value)
    # axis ticks are round numbers: 600k, not 600.0k
    return text.replace(".0k", "k").replace(".0M", "M").replace(".0B", "B")


def time_text(day: dt.date, fmt: str | None) -> str:
    """`strftime` plus Vega's `%q` (quarter)."""
    fmt = fmt or "%b %Y"
    return day.strftime(fmt.replace("%q", str((day.month - 1) // 3 + 1)))


@dataclass
class Scale:
    """Maps data values to pixels along one axis. kind: linear, time or band."""

    kind: str
    start: float
    end: float
    domain: list[Any] = field(default_factory=list)
    low: float = 0.0
    high: float = 1.0
    ticks: list[float] = field(default_factory=list)
    padding: float = 0.2

    @classmethod
    def linear(cls, values: Sequence[float], start: float, end: float, zero: bool) -> Scale:
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        if zero:
            low, high = min(low, 0.0), max(high, 0.0)
        ticks = nice_ticks(low, high)
        return cls("linear", start, end, low=ticks[0], high=ticks[-1], ticks=ticks)

    @classmethod
    def time(cls, values: Sequence[dt.date], start: float, end: float) -> Scale:
        ords = [v.toordinal() for v in values] or [0, 1]
        low, high = min(ords), max(ords)
        distinct = sorted(set(ords))
        every = max(1, math.ceil(len(distinct) / 7))
        return cls("time", start, end, low=low, high=high if high > low else low + 1, ticks=distinct[::every])

    @classmethod
    def band(cls, domain: list[Any], start: float, end: float, padding: float = 0.2) -> Scale:
        return cls("band", start, end, domain=domain, padding=padding)

    @property
    def bandwidth(self) -> float:
        if self.kind != "band" or not self.domain:
            return 0.0
        return abs(self.end - self.start) / len(self.domain) * (1 - self.padding)

    def __call__(self, value: Any) -> float | None:
        if self.kind == "band":
            try:
                index = self.domain.index(value)
            except ValueError:
                return None
            step = (self.end - self.start) / len(self.domain)
            return self.start + step * index + step * self.padding / 2
        if self.kind == "time":
            # ticks are day ordinals already; data values are dates or ISO strings
            day = None if isinstance(value, int | float) else as_date(value)
            number = float(value) if isinstance(value, int | float) else None if day is None else float(day.toordinal())
        else:
            number = as_number(value)
        if number is None:
            return None
        return self.start + (number - self.low) / (self.high - self.low or 1) * (self.end - self.start)

    def center(self, value: Any) -> float | None:
        """Band scales: the middle of the band; others: the position."""
        position = self(value)
        return None if position is None else position + self.bandwidth / 2


def color_for(index: int, palette: Sequence[str] = PALETTE) -> str:
    return palette[index % len(palette)]


def ramp(fraction: float) -> str:
    """A sequential blue for a value at `fraction` (0..1) of its domain."""
    fraction = min(1.0, max(0.0, fraction))
    position = fraction * (len(BLUES) - 1)
    i = min(int(position), len(BLUES) - 2)
    t = position - i
    rgb = [round(a + (b - a) * t) for a, b in zip(BLUES[i], BLUES[i + 1], strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def text_width(text: str, size: float = 11) -> float:
    """A rough width for layout; wide (CJK) characters count double."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text) * size * 0.56
