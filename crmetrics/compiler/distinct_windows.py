"""Distinct counts over running and trailing windows, computed exactly from the facts in one pass.

Active customers in the trailing 30 days are the customers with an event in those 30 days; adding up daily
distinct counts would count a customer once per active day. Joining every event to every day of its window
(MetricFlow's approach) multiplies the rows by the window's length. Instead, each item (customer) is active on
the union of the windows that its events open, a set of intervals: an interval opens at an event whose previous
event is at least a window's length earlier, and closes a window's length after an event whose next event is at
least that far away. One +1 per opening and one -1 per closing, summed per period and run through a running SUM,
give the number of active items in every period:

    events: SELECT DISTINCT dims, item FROM facts            (periods at the axis grain)
    seq:    LAG/LEAD of the axis per (other dims, to-date period, item), ordered by the axis
    deltas: +1 where LAG is NULL or LAG + window <= axis;  -1 at axis + window where LEAD is NULL or >= axis + window

A running distinct count (no window) only opens intervals, at the first event of each partition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from crmetrics.compiler.nodes import add_where, alias, column, group_by, ident
from crmetrics.compiler.scope import qualify

if TYPE_CHECKING:
    from crmetrics.compiler.build import MeasureUse
    from crmetrics.compiler.timeline import Timeline, Window

MOVED = "__moved"  # see timeline.MOVED: a UNION branch's columns are matched by position, not name

ITEM, PREVIOUS, NEXT, DELTA = "__item", "__previous", "__next", "__delta"


def distinct_deltas(timeline: Timeline, use: MeasureUse, window: Window, name: str, cte: str) -> dict[str, exp.Select]:
    """CTEs giving, per cell of the query's dimensions, the change in the number of active items (column `name`
    of the CTE `cte`); the sequence of events is its own CTE, read once for openings and once for closings."""
    builder = timeline.builder
    measure = use.measure
    scope, dims, filters = builder.fact_scope(measure.entity)
    item = qualify(measure.expr, measure.entity)  # type: ignore[arg-type]
    conditions = [
        scope.condition(f, f"the filter of {use.metric}") for f in (measure.filter, use.filter) if f is not None
    ]
    if conditions:
        item = exp.Case(ifs=[exp.If(this=exp.and_(*conditions), true=item)])
    names, axis = timeline.names, timeline.axis
    events = exp.Select(
        expressions=[alias(d, n) for d, n in zip(dims, names, strict=True)] + [alias(item, ITEM)],
        distinct=exp.Distinct(),
    )
    events = scope.from_clause(events)
    axis_value = dims[names.index(axis)]
    add_where(
        events,
        *filters,
        exp.Not(this=exp.Is(this=item.copy(), expression=exp.Null())),
        exp.Not(this=exp.Is(this=axis_value.copy(), expression=exp.Null())),
    )

    partition = [column(n) for n in timeline.others]
    if window.to_date is not None:
        partition.append(timeline.calendar.truncate(column(axis), window.to_date))
    partition.append(column(ITEM))
    order = exp.Order(expressions=[exp.Ordered(this=column(axis), nulls_first=True)])  # the axis is never NULL here
    sequence = [
        exp.Star(),
        alias(exp.Window(this=exp.Lag(this=column(axis)), partition_by=partition, order=order), PREVIOUS),
    ]
    if window.rows is not None:
        lead = exp.Window(
            this=exp.Lead(this=column(axis)), partition_by=[p.copy() for p in partition], order=order.copy()
        )
        sequence.append(alias(lead, NEXT))
    seq = exp.Select(expressions=sequence).from_(_sub(events, "events"), copy=False)

    opens = exp.Select(expressions=[column(n) for n in names] + [alias(exp.Literal.number(1), DELTA)])
    opens = opens.from_(exp.Table(this=ident(f"{cte}_seq")), copy=False)
    first = exp.Is(this=column(PREVIOUS), expression=exp.Null())
    deltas: exp.Expression = opens
    if window.rows is None:
        opens.set("where", exp.Where(this=first))
    else:
        reach = timeline.calendar.shift(column(PREVIOUS), window.rows, timeline.grain)
        opens.set("where", exp.Where(this=exp.or_(first, exp.LTE(this=reach, expression=column(axis)))))
        end = timeline.calendar.shift(column(axis), window.rows, timeline.grain)
        closes = exp.Select(
            expressions=[alias(end, MOVED) if n == axis else column(n) for n in names]
            + [alias(exp.Literal.number(-1), DELTA)]
        ).from_(exp.Table(this=ident(f"{cte}_seq")), copy=False)
        last = exp.Is(this=column(NEXT), expression=exp.Null())
        closes.set("where", exp.Where(this=exp.or_(last, exp.GTE(this=column(NEXT), expression=end.copy()))))
        deltas = exp.union(opens, closes, distinct=False)
    result = exp.Select(expressions=[column(n) for n in names] + [alias(exp.Sum(this=column(DELTA)), name)])
    result = result.from_(_sub(deltas, "deltas"), copy=False)
    group_by(result, (column(n) for n in names))
    return {f"{cte}_seq": seq, cte: result}


def _sub(query: exp.Expression, name: str) -> exp.Subquery:
    return exp.Subquery(this=query, alias=exp.TableAlias(this=ident(name)))
