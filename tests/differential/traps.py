"""A small data set that sits on every known trap: time boundaries, day of week, ties, NULLs, unicode, zero sums.

The rows live here in Python; the trap tests compute their expected numbers from them in pure Python (`expected_*`),
independently of crmetrics and of every engine.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

D, T = dt.date, dt.datetime

# event_id, grp, started_at, happened_at, amount, qty, label
EVENTS: list[tuple[Any, ...]] = [
    (1, "a", T(2023, 12, 1, 8), T(2023, 12, 31, 23, 59, 59), Decimal("10.00"), 1, "x"),
    (2, "a", T(2023, 12, 31, 23), T(2024, 1, 1, 0, 0, 0), Decimal("10.00"), 2, "y"),
    (3, "b", T(2024, 1, 31, 22), T(2024, 2, 29, 12), Decimal("20.50"), 0, "é"),
    (4, None, T(2024, 2, 28, 23), T(2024, 3, 31, 23), None, 3, None),
    (5, "Zürich", T(2024, 1, 1), T(2024, 4, 1, 0, 0, 1), Decimal("5.25"), 4, "z"),
    (6, "東京", T(2023, 6, 30), T(2024, 6, 30, 10), Decimal("100.00"), None, "東"),
    (7, "b", T(2024, 6, 30, 23, 59), T(2024, 7, 1, 0, 0), Decimal("7.75"), 0, "a"),
    (8, None, T(2022, 12, 31), T(2024, 9, 30, 9), Decimal("7.75"), 5, "b"),
    (9, "a", T(2024, 9, 1), T(2024, 10, 6, 18), Decimal("0.00"), 6, "x"),
    (10, "Zürich", T(2024, 10, 1), T(2024, 12, 31, 23, 59, 59), Decimal("33.33"), 7, "ä"),
    (11, "東京", T(2024, 12, 31), T(2025, 1, 5, 12), Decimal("1.00"), 8, "東"),
    (12, "b", T(2024, 1, 1), None, Decimal("2.00"), None, "c"),
]
# note_id, grp: a second fact entity sharing only some groups, for the NULL-padded UNION ALL merge
NOTES: list[tuple[Any, ...]] = [(1, "a"), (2, "a"), (3, "c"), (4, None), (5, "東京")]
# the dimension entity both facts join to; 'Zürich' is missing, so those events are orphans (NULL group)
GROUPS: list[str] = ["a", "b", "c", "東京"]

PROJECT = """\
version: 1
name: traps
entities:
  trap_events:
    table: trap_events
    key: event_id
    time: happened_at
    joins:
      trap_groups: {on: grp}
    dimensions:
      grp: {}
      label: {}
      happened_at: {type: time}
      dow: {expr: "dayofweek(happened_at)", type: number}
      isodow: {expr: "isodow(happened_at)", type: number}
      dow_part: {expr: "date_part('dow', happened_at)", type: number}
      dow_extract: {expr: "extract(dow from happened_at)", type: number}
      days_between: {expr: "date_diff('day', started_at, happened_at)", type: number}
      months_between: {expr: "date_diff('month', started_at, happened_at)", type: number}
      quarters_between: {expr: "date_diff('quarter', started_at, happened_at)", type: number}
      years_between: {expr: "date_diff('year', started_at, happened_at)", type: number}
    measures:
      events: {agg: count}
      total: {agg: sum, expr: amount}
      qty_total: {agg: sum, expr: qty}
      avg_amount: {agg: avg, expr: amount}
      median_amount: {agg: median, expr: amount}
      p90_amount: {agg: percentile, expr: amount, percentile: 0.9}
      p25_qty: {agg: percentile, expr: qty, percentile: 0.25}
      groups: {agg: count_distinct, expr: grp}
      first_at: {agg: min, expr: happened_at}
  trap_groups:
    table: trap_groups
    key: grp
    dimensions:
      grp: {}
  trap_notes:
    table: trap_notes
    key: note_id
    joins:
      trap_groups: {on: grp}
    dimensions:
      grp: {}
    measures:
      notes: {agg: count}
metrics:
  events: {measure: trap_events.events}
  total: {measure: trap_events.total}
  avg_amount: {measure: trap_events.avg_amount}
  median_amount: {measure: trap_events.median_amount}
  p90_amount: {measure: trap_events.p90_amount}
  p25_qty: {measure: trap_events.p25_qty}
  groups: {measure: trap_events.groups}
  first_at: {measure: trap_events.first_at}
  amount_per_qty: {ratio: [total, qty_total]}
  qty_total: {measure: trap_events.qty_total}
  notes: {measure: trap_notes.notes}
"""


def write(conn: Any) -> None:
    """Create trap_events and trap_notes in a DuckDB connection."""
    conn.execute(
        "CREATE OR REPLACE TABLE trap_events (event_id INTEGER, grp VARCHAR, started_at TIMESTAMP, "
        "happened_at TIMESTAMP, amount DECIMAL(12,2), qty INTEGER, label VARCHAR)"
    )
    conn.executemany("INSERT INTO trap_events VALUES (?, ?, ?, ?, ?, ?, ?)", EVENTS)
    conn.execute("CREATE OR REPLACE TABLE trap_notes (note_id INTEGER, grp VARCHAR)")
    conn.executemany("INSERT INTO trap_notes VALUES (?, ?)", NOTES)
    conn.execute("CREATE OR REPLACE TABLE trap_groups (grp VARCHAR)")
    conn.executemany("INSERT INTO trap_groups VALUES (?)", [(g,) for g in GROUPS])


# --- independent reference computations ----------------------------------------------------------------------------


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (SQL PERCENTILE_CONT); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def truncate(stamp: dt.datetime, grain: str) -> dt.date:
    day = stamp.date()
    if grain == "day":
        return day
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def months(stamp: dt.datetime) -> int:
    return stamp.year * 12 + stamp.month


def dimension_value(row: tuple, name: str) -> Any:
    """The value of one trap dimension for one EVENTS row, as DuckDB defines it."""
    _, _, started, happened, *_ = row
    if happened is None:
        return None
    return {
        "dow": (happened.weekday() + 1) % 7,  # 0 = Sunday
        "isodow": happened.isoweekday(),
        "dow_part": (happened.weekday() + 1) % 7,
        "dow_extract": (happened.weekday() + 1) % 7,
        "days_between": (happened.date() - started.date()).days,
        "months_between": months(happened) - months(started),
        "quarters_between": (months(happened) - 1) // 3 - (months(started) - 1) // 3,
        "years_between": happened.year - started.year,
    }[name]
