"""The churn-risk list: entities whose days since their last event exceed k times their own median gap.

Several events on one day count as one event day, so tied timestamps never make zero gaps, and the gaps come from
`LAG` ordered by the (unique) day. `as_of` defaults to the latest event day in the filtered data.
"""

from __future__ import annotations

import datetime as dt

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext
from crmetrics.analysis.lifecycle_sql import (
    cast,
    col,
    entity_param,
    member_key,
    not_null,
    num,
    percentile,
    raw_time,
    select,
    window_key,
    with_ctes,
)
from crmetrics.errors import AnalysisError

DATE = exp.DataType.Type.DATE
RISK = ["last_event", "events", "median_gap_days", "days_since_last_event", "risk_ratio"]


def parse_as_of(ctx: AnalysisContext) -> dt.date | None:
    """The `as_of` parameter as a date (None: the latest date in the data)."""
    text = ctx.params.get("as_of")
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise AnalysisError(f"analysis '{ctx.name}': as_of must be a date YYYY-MM-DD, not {text!r}") from None


def date_literal(day: dt.date) -> exp.Expression:
    """CAST('YYYY-MM-DD' AS DATE)."""
    return cast(exp.Literal.string(day.isoformat()), DATE)


def event_days(ctx: AnalysisContext) -> tuple[str, dict[str, exp.Expression]]:
    """The name of the entity's key, and CTEs whose `days` has one row per (key, day with an event)."""
    entity, events = entity_param(ctx, "entity"), entity_param(ctx, "events")
    frame = ctx.frame(events)
    key = member_key(frame, entity)
    day = cast(raw_time(frame, ctx.params.get("time")), DATE)
    rows = frame.select({"k": key, "d": day}).where(not_null(key.copy()), not_null(day.copy()), copy=False)
    as_of = parse_as_of(ctx)
    if as_of is not None:  # events after the observation day are not known yet
        rows = rows.where(exp.LTE(this=day.copy(), expression=date_literal(as_of)), copy=False)
    days = select({"k": col("k"), "d": col("d")}, "ev").group_by(col("k"), col("d"), copy=False)
    return ctx.model.entities[entity].key or "key", {"ev": rows, "days": days}


def risk_query(ctx: AnalysisContext) -> tuple[exp.Select, str]:
    """Entities whose days since their last event exceed k times their own median gap between event days."""
    key_name, days = event_days(ctx)
    previous = exp.Window(
        this=exp.Lag(this=col("d")), partition_by=[col("k")], order=exp.Order(expressions=[window_key(col("d"))])
    )
    gaps = select(
        {
            "k": col("k"),
            "d": col("d"),
            "gap": exp.DateDiff(this=col("d"), expression=previous, unit=exp.Var(this="DAY")),
        },
        "days",
    )
    per = select(
        {
            "k": col("k"),
            "events": exp.Count(this=exp.Star()),
            "last_event": exp.Max(this=col("d")),
            "median_gap": percentile(col("gap"), 0.5),
        },
        "gaps",
    ).group_by(col("k"), copy=False)
    as_of = parse_as_of(ctx)
    today = date_literal(as_of) if as_of else select({"last": exp.Max(this=col("d"))}, "days").subquery()
    since = exp.DateDiff(this=today, expression=col("last_event"), unit=exp.Var(this="DAY"))
    k = float(ctx.params.get("risk_multiplier", 2))
    scored = select(
        {
            "k": col("k"),
            "last_event": col("last_event"),
            "events": col("events"),
            "median_gap": col("median_gap"),
            "since": since,
        },
        "per",
    ).where(exp.GTE(this=col("events"), expression=num(int(ctx.params.get("min_events", 3)))), copy=False)
    ratio = exp.Div(this=cast(col("since"), exp.DataType.Type.DOUBLE), expression=col("median_gap"))
    final = select(
        {
            key_name: col("k"),
            "last_event": col("last_event"),
            "events": col("events"),
            "median_gap_days": col("median_gap"),
            "days_since_last_event": col("since"),
            "risk_ratio": ratio,
            "at_risk_total": exp.Window(this=exp.Count(this=exp.Star())),
        },
        "scored",
    ).where(exp.GT(this=col("since"), expression=exp.Mul(this=num(k), expression=col("median_gap"))), copy=False)
    final = final.order_by(exp.Ordered(this=ratio.copy(), desc=True), exp.Ordered(this=col("k")), copy=False)
    final = final.limit(int(ctx.params.get("risk_limit", 1000)), copy=False)
    ctes = {**days, "gaps": gaps, "per": per, "scored": scored}
    return with_ctes(final, ctes), key_name
