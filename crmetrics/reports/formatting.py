"""How numbers look in reports: one place for the formats a metric declares (number, integer, currency, ...).

These are registered as Jinja filters (`{{ value | fmt('currency') }}`) and used by the chart renderer's labels.
Currency has no symbol: a metric layer does not know the currency of the amounts it sums.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

__all__ = ["change_text", "fmt", "short_number"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number


def fmt(value: Any, format: str = "number") -> str:
    """`value` as text in the metric `format`; NULL shows as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    number = _number(value)
    if number is None:
        return str(value)
    if format == "decimal":
        return f"{number:,.2f}"
    if format == "id":
        return str(int(number)) if number == int(number) else str(value)
    if format == "percent":
        # small shares keep two significant decimals: 0.44%, not 0.4% on every row of a basket analysis
        return f"{number * 100:,.2f}%" if 0 < abs(number) < 0.01 else f"{number * 100:,.1f}%"
    if format == "integer":
        return f"{round(number):,}"
    if format == "score":
        return f"{number:,.1f}"
    if format == "currency":
        return f"{number:,.2f}"
    if format == "duration":
        return _duration(number)
    if number == int(number) and abs(number) < 1e15:
        return f"{int(number):,}"
    return f"{number:,.2f}" if abs(number) >= 100 else f"{number:,.3g}" if abs(number) < 1 else f"{number:,.2f}"


def _duration(seconds: float) -> str:
    days = seconds / 86_400
    if abs(days) >= 1:
        return f"{days:,.1f} d"
    return f"{seconds / 3600:,.1f} h"


def short_number(value: Any, format: str = "number") -> str:
    """A compact label for tiles and axes: 1.2M, 34.5k, 12.3%."""
    number = _number(value)
    if number is None:
        return fmt(value, format)
    if format == "percent":
        return f"{number * 100:.1f}%"
    if format == "duration":
        return _duration(number)
    if format == "score":
        return f"{number:.1f}"
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= size:
            return f"{number / size:.1f}{suffix}"
    if format == "currency":
        return f"{number:,.2f}"  # an amount keeps its cents: 56.00 next to 55.36, not 56
    if format == "integer" or number == int(number):
        return f"{round(number):,}"
    return f"{number:.2f}" if abs(number) >= 1 else f"{number:.3g}"


def change_text(tile: dict[str, Any]) -> str:
    """The change on the previous period: percentage points for percent metrics, points for scores (an NPS that
    goes from -5 to 5 did not change by -200%), else relative."""
    if tile.get("format") in ("percent", "score"):
        delta = _number(tile.get("delta"))
        if delta is None:
            return "—"
        return f"{delta * 100:+.1f} pp" if tile["format"] == "percent" else f"{delta:+.1f} pts"
    change = _number(tile.get("change"))
    return "—" if change is None else f"{change * 100:+.1f}%"
