"""The series of periods that gap filling, comparisons and trailing windows need, generated inside the SQL.

    time_bounds   first and last period: the requested range (moved back as far as windows and comparisons
                  look), else the data's MIN and MAX
    time_digits   the digits 0-9 (ten one-row SELECTs)
    time_spine    the first period moved by n periods, for every n made of the digits crossed with themselves,
                  up to the number of periods between the first and the last
    time_grid     the spine crossed with every combination of the other dimensions seen in the data

No recursion (Spark stops recursive CTEs at 100 levels, older ClickHouse has none), no calendar table, no
series function: DATE arithmetic and cross joins, which every dialect has.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from crmetrics.compiler.nodes import alias, column, ident, table
from crmetrics.compiler.periods import STEPS, add_units, date_literal, periods_between

if TYPE_CHECKING:
    from crmetrics.compiler.timeline import Timeline

# digits of the period counter: 10^5 days (273 years), 10^4 weeks or months, 10^3 quarters or years
SPINE_DIGITS = {"day": 5, "week": 4, "month": 4, "quarter": 3, "year": 3, "fiscal_quarter": 3, "fiscal_year": 3}


def bounds(timeline: Timeline, source: str) -> exp.Select:
    """The first and last period: the range (moved back by the lookback), else the data's MIN and MAX."""
    # a range bounds metric_time; another time axis (customers.signed_up_at:month) runs over its data
    by_range = timeline.options.start is not None and timeline.axis_is_metric_time()
    earliest = timeline.earliest() if by_range else None
    last = timeline.options.end if timeline.axis_is_metric_time() else None
    low = date_literal(earliest) if earliest is not None else _scalar(timeline, exp.Min, source)
    high = (
        date_literal(timeline.calendar.start_of(last, timeline.grain)) if last else _scalar(timeline, exp.Max, source)
    )
    return exp.Select(expressions=[alias(low, "lo"), alias(high, "hi")])


def _scalar(timeline: Timeline, function: type[exp.Func], source: str) -> exp.Expression:
    inner = exp.Select(expressions=[function(this=column(timeline.axis))]).from_(table(source), copy=False)
    return exp.Subquery(this=inner)


def spine(timeline: Timeline) -> exp.Select:
    """lo + n periods for every n from 0 to the number of periods between lo and hi."""
    places = SPINE_DIGITS[timeline.grain]
    number: exp.Expression = column("d", "d0")
    for place in range(1, places):
        digit = exp.Mul(this=exp.Literal.number(10**place), expression=column("d", f"d{place}"))
        number = exp.Add(this=number, expression=digit)
    size, unit = STEPS[timeline.grain]
    moved = add_units(
        column("lo", "time_bounds"), exp.Mul(this=exp.Paren(this=number), expression=exp.Literal.number(size)), unit
    )
    periods = exp.Select(expressions=[alias(moved, "t")]).from_(table("time_bounds"), copy=False)
    for place in range(places):
        periods = periods.join(
            exp.Table(this=ident("time_digits"), alias=exp.TableAlias(this=ident(f"d{place}"))),
            join_type="cross",
            copy=False,
        )
    # count periods rather than compare moved dates: a date moved 9,999 months overflows ClickHouse's Date
    span = periods_between(timeline.calendar, column("lo", "time_bounds"), column("hi", "time_bounds"), timeline.grain)
    known = exp.Not(this=exp.Is(this=column("lo", "time_bounds"), expression=exp.Null()))
    periods.set("where", exp.Where(this=exp.and_(known, exp.LTE(this=number.copy(), expression=span))))
    return periods


def grid(timeline: Timeline, source: str) -> exp.Select:
    """Every period crossed with every combination of the other dimensions in the data."""
    columns = [
        alias(column("t", "time_spine"), n) if n == timeline.axis else column(n, "combos") for n in timeline.names
    ]
    grid = exp.Select(expressions=columns).from_(table("time_spine"), copy=False)
    if timeline.others:
        combos = exp.Select(expressions=[column(n) for n in timeline.others], distinct=exp.Distinct())
        combos = combos.from_(table(source), copy=False)
        grid = grid.join(
            exp.Subquery(this=combos, alias=exp.TableAlias(this=ident("combos"))), join_type="cross", copy=False
        )
    return grid


def digits() -> exp.Expression:
    """SELECT 0 AS d UNION ALL SELECT 1 ... UNION ALL SELECT 9."""
    union: exp.Expression = exp.Select(expressions=[alias(exp.Literal.number(0), "d")])
    for digit in range(1, 10):
        union = exp.union(union, exp.Select(expressions=[exp.Literal.number(digit)]), distinct=False)
    return union
