"""Churn and retention per period, revenue churn, and a churn-risk list.

Non-contractual (`events`): an entity is active in a period when the inactivity window after one of its events
(`inactivity_days`, default 1: the event's own day) overlaps the period; it churns in the first period it is not
active after one it was active in. Contractual (`start` and `end`): a row is active from its start and churns in the
period of its end date. Both become "spells" (start period a, churn period c) and are counted with +1/-1 deltas
and a running sum in SQL, so no calendar table is needed; Python fills periods in which nothing changed.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.churn_risk import RISK, date_literal, event_days, parse_as_of, risk_query
from crmetrics.analysis.lifecycle_sql import (
    PERIOD_GRAINS,
    add_days,
    cast,
    col,
    entity_param,
    member_key,
    not_null,
    null_number,
    num,
    period_number,
    period_of,
    period_start,
    raw_time,
    reference_checker,
    running_sum,
    select,
    table_as,
    window_key,
    with_ctes,
)
from crmetrics.dsl.schema import NAME_PATTERN, Field, Num, Obj, Str
from crmetrics.errors import AnalysisError, CompileError
from crmetrics.result import Result

DATE = exp.DataType.Type.DATE
COLUMNS = ["period", "active_previous", "churned", "retained", "new", "active", "churn_rate", "retention_rate"]
REVENUE = ["revenue_previous", "revenue", "lost_revenue", "revenue_churn_rate"]

PARAMETERS = Obj(
    description="Churn and retention rates per period, revenue churn and a churn-risk list.",
    fields={
        "entity": Field(Str(pattern=NAME_PATTERN, description="The entity that churns."), required=True),
        "events": Field(Str(pattern=NAME_PATTERN, description="Non-contractual: the activity entity.")),
        "time": Field(Str(description="Non-contractual: the events' time dimension (default: their `time`).")),
        "inactivity_days": Field(Num(integer=True, minimum=1, description="Days an event keeps an entity active.")),
        "start": Field(Str(description="Contractual: entity.time_dimension when the contract starts.")),
        "end": Field(Str(description="Contractual: entity.time_dimension when it ends (NULL: still running).")),
        "grain": Field(Str(enum=PERIOD_GRAINS, description="Period grain (month).")),
        "measure": Field(Str(description="A sum measure for revenue churn (of the events, or of the entity).")),
        "as_of": Field(Str(description="Last day observed, YYYY-MM-DD (default: the latest date in the data).")),
        "risk_multiplier": Field(Num(minimum=0, description="At risk when days since last event > k x median gap.")),
        "min_events": Field(Num(integer=True, minimum=2, description="Event days needed for a median gap (3).")),
        "risk_limit": Field(Num(integer=True, minimum=1, description="Rows of the risk list (1000).")),
    },
    one_of=("events", "end"),
)


def _activity_spells(ctx: AnalysisContext, grain: str) -> tuple[dict[str, exp.Expression], exp.Expression]:
    """CTEs whose `spells` has one row per unbroken run of activity: start period a, churn period c."""
    _, days = event_days(ctx)
    window = int(ctx.params.get("inactivity_days", 1))
    spans = select(
        {
            "k": col("k"),
            "d": col("d"),
            "a": period_of(col("d"), grain),
            "b": period_of(add_days(col("d"), window - 1), grain),
        },
        "days",
    )
    # b grows with the day, so the previous row's b is the furthest reach of the run so far
    by_day = exp.Order(expressions=[window_key(col("d"))])
    previous_b = exp.Window(this=exp.Lag(this=col("b")), partition_by=[col("k")], order=by_day)
    marked = select({"k": col("k"), "d": col("d"), "a": col("a"), "b": col("b"), "pb": previous_b}, "spans")
    gap = exp.GT(this=col("a"), expression=exp.Add(this=col("pb"), expression=num(1)))
    starts_run = exp.Case(ifs=[exp.If(this=exp.or_(col("pb").is_(exp.null()), gap), true=num(1))], default=num(0))
    numbered = select(
        {"k": col("k"), "a": col("a"), "b": col("b"), "run": running_sum(starts_run, ["k"], "d")}, "marked"
    )
    spells = select(
        {"a": exp.Min(this=col("a")), "c": exp.Add(this=exp.Max(this=col("b")), expression=num(1)), "v": null_number()},
        "numbered",
    ).group_by(col("k"), col("run"), copy=False)
    last = select({"last": exp.Max(this=col("a"))}, "spans").subquery()
    ctes = {**days, "spans": spans, "marked": marked, "numbered": numbered}
    return {**ctes, "spells": spells}, last


def _contract_spells(ctx: AnalysisContext, grain: str) -> tuple[dict[str, exp.Expression], exp.Expression]:
    """CTEs whose `spells` has one row per contract: start period a, churn period c (NULL while running)."""
    entity = entity_param(ctx, "entity")
    frame = ctx.frame(entity)
    if not ctx.params.get("start"):
        raise AnalysisError(f"analysis '{ctx.name}': contractual churn needs `start` as well as `end`")
    start, end = raw_time(frame, ctx.params["start"]), raw_time(frame, ctx.params["end"])
    value = frame.measure_value(ctx.params["measure"]) if ctx.params.get("measure") else null_number()
    spells = frame.select({"a": period_of(start, grain), "c": period_of(end, grain), "v": value}).where(
        not_null(start.copy()), copy=False
    )
    bound = exp.Max(this=exp.Coalesce(this=col("c"), expressions=[col("a")]))
    last = select({"last": bound}, "spells").subquery()
    return {"spells": spells}, last


def churn_query(ctx: AnalysisContext, grain: str) -> exp.Select:
    """Per period with a change: new, churned, the change in active entities (and value), running totals."""
    contractual = bool(ctx.params.get("end"))
    ctes, last = (_contract_spells if contractual else _activity_spells)(ctx, grain)
    # a spell that ends in the period it starts in (or before) is never active at a period's start
    churns = exp.and_(not_null(col("c")), exp.GT(this=col("c"), expression=col("a")))
    zero = num(0)

    def part(period: exp.Expression, new: int, churned: int, delta: int, value: exp.Expression) -> exp.Select:
        return select(
            {"p": period, "new": num(new), "churned": num(churned), "delta": num(delta), "v": value}, "spells"
        )

    plus_one = exp.Add(this=col("a"), expression=num(1))
    after_churn = exp.Add(this=col("c"), expression=num(1))
    negative = exp.Neg(this=col("v"))
    parts = [
        part(col("a"), 1, 0, 0, zero.copy()),
        part(plus_one, 0, 0, 1, col("v")).where(exp.or_(col("c").is_(exp.null()), churns.copy()), copy=False),
        part(col("c"), 0, 1, 0, zero.copy()).where(churns, copy=False),
        part(after_churn, 0, 0, -1, negative).where(churns.copy(), copy=False),
    ]
    lost = select({"p": col("c"), "lost": col("v")}, "spells").where(churns.copy(), copy=False)
    union = parts[0]
    for other in parts[1:]:
        union = exp.union(union, other, distinct=False)
    grouped = select(
        {
            "p": col("p"),
            "new": exp.Sum(this=col("new")),
            "churned": exp.Sum(this=col("churned")),
            "delta": exp.Sum(this=col("delta")),
            "v": exp.Sum(this=col("v")),
        },
        "changes",
    ).group_by(col("p"), copy=False)
    lost_by_period = select({"p": col("p"), "lost": exp.Sum(this=col("lost"))}, "lost_rows").group_by(
        col("p"), copy=False
    )
    totals = select(
        {
            "p": col("p"),
            "new": col("new"),
            "churned": col("churned"),
            "active_previous": running_sum(col("delta"), [], "p"),
            "value_previous": running_sum(col("v"), [], "p"),
        },
        "grouped",
    )
    final = select(
        {
            "p": col("p", "t"),
            "new": col("new", "t"),
            "churned": col("churned", "t"),
            "active_previous": col("active_previous", "t"),
            "value_previous": col("value_previous", "t"),
            "lost_value": col("lost", "l"),
            "last": last,
        },
        table_as("totals", "t"),
    ).join(
        table_as("lost_by_period", "l"),
        on=exp.EQ(this=col("p", "t"), expression=col("p", "l")),
        join_type="left",
        copy=False,
    )
    final = final.order_by(exp.Ordered(this=col("p", "t")), copy=False)
    ctes |= {
        "changes": union,
        "grouped": grouped,
        "totals": totals,
        "lost_rows": lost,
        "lost_by_period": lost_by_period,
    }
    return with_ctes(final, ctes)


def revenue_query(ctx: AnalysisContext, grain: str) -> exp.Select:
    """Non-contractual revenue churn: per period, revenue, previous revenue and the part of it not repeated."""
    entity, events = entity_param(ctx, "entity"), entity_param(ctx, "events")
    frame = ctx.frame(events)
    key = member_key(frame, entity)
    when_ = raw_time(frame, ctx.params.get("time"))
    rows = frame.select({"k": key, "p": period_of(when_, grain), "m": frame.measure_value(ctx.params["measure"])})
    rows = rows.where(not_null(key.copy()), not_null(when_.copy()), copy=False)
    as_of = parse_as_of(ctx)
    if as_of is not None:
        rows = rows.where(exp.LTE(this=cast(when_.copy(), DATE), expression=date_literal(as_of)), copy=False)
    per = select({"k": col("k"), "p": col("p"), "m": exp.Sum(this=col("m"))}, "ev").group_by(
        col("k"), col("p"), copy=False
    )
    cur = select({"k": col("k"), "p": col("p"), "cur": col("m"), "prev": num(0)}, "per")
    nxt = select(
        {"k": col("k"), "p": exp.Add(this=col("p"), expression=num(1)), "cur": num(0), "prev": col("m")}, "per"
    )
    pairs = select(
        {"k": col("k"), "p": col("p"), "cur": exp.Sum(this=col("cur")), "prev": exp.Sum(this=col("prev"))}, "both"
    ).group_by(col("k"), col("p"), copy=False)
    shrink = exp.Case(
        ifs=[
            exp.If(
                this=exp.GT(this=col("prev"), expression=col("cur")),
                true=exp.Sub(this=col("prev"), expression=col("cur")),
            )
        ],
        default=num(0),
    )
    kept = exp.Case(ifs=[exp.If(this=exp.GT(this=col("prev"), expression=num(0)), true=col("cur"))], default=num(0))
    final = select(
        {
            "p": col("p"),
            "revenue": exp.Sum(this=col("cur")),
            "revenue_previous": exp.Sum(this=col("prev")),
            "lost_revenue": exp.Sum(this=shrink),
            "kept_revenue": exp.Sum(this=kept),
        },
        "pairs",
    ).group_by(col("p"), copy=False)
    final = final.order_by(exp.Ordered(this=col("p")), copy=False)
    return with_ctes(final, {"ev": rows, "per": per, "both": exp.union(cur, nxt, distinct=False), "pairs": pairs})


def churn_table(ctx: AnalysisContext, grain: str) -> Result:
    """The dense churn table, periods from the first start to the last observed one."""
    raw = ctx.run(
        churn_query(ctx, grain), ["p", "new", "churned", "active_previous", "value_previous", "lost_value", "last"]
    )
    rows = raw.records()
    with_value = bool(ctx.params.get("measure")) and bool(ctx.params.get("end"))
    as_of = parse_as_of(ctx)
    if not rows:
        return Result(COLUMNS + (REVENUE if with_value else []), [], raw.sql)
    last = period_number(as_of, grain) if as_of else rows[0]["last"]
    first = min(r["p"] for r in rows if r["new"])
    by_period = {r["p"]: r for r in rows}
    state = {"active_previous": 0, "value_previous": 0.0}
    series: list[dict[str, Any]] = []
    for p in range(first, last + 2):
        row = by_period.get(p)
        if row is not None:
            state = {"active_previous": row["active_previous"], "value_previous": row["value_previous"] or 0.0}
        series.append(
            {
                "p": p,
                "new": row["new"] if row else 0,
                "churned": row["churned"] if row else 0,
                "lost": (row["lost_value"] if row else None) or 0.0,
                **state,
            }
        )
    out = []
    for now, after in itertools.pairwise(series):
        previous, churned = now["active_previous"], now["churned"]
        values: tuple = (
            period_start(now["p"], grain),
            previous,
            churned,
            previous - churned,
            now["new"],
            after["active_previous"],
            _ratio(churned, previous),
            _ratio(previous - churned, previous),
        )
        if with_value:
            values += (
                now["value_previous"],
                after["value_previous"],
                now["lost"],
                _ratio(now["lost"], now["value_previous"]),
            )
        out.append(values)
    return Result(COLUMNS + (REVENUE if with_value else []), out, raw.sql)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Run the churn analysis."""
    grain = ctx.params.get("grain", "month")
    table = churn_table(ctx, grain)
    tables = {"churn": table}
    figures = []
    if ctx.params.get("events") and ctx.params.get("measure"):
        _merge_revenue(ctx, table, grain)
    notes: list[str] = []
    if ctx.params.get("events"):
        tree, key_name = risk_query(ctx)
        try:
            risk = ctx.run(tree, [key_name, *RISK, "at_risk_total"])
        except CompileError as error:
            # the risk list needs an exact median; an engine without one still gets the complete churn table
            notes.append(f"no churn-risk list: {error.message}")
        else:
            total = risk.rows[0][-1] if risk.rows else 0
            tables["at_risk"] = Result([key_name, *RISK], [row[:-1] for row in risk.rows], risk.sql)
            figures.append(Figure("at_risk", "Entities at risk of churning", total, "integer"))
    closed = [r for r in table.records() if r["active_previous"]]
    if closed:
        latest = closed[-1]
        figures.append(Figure("churn_rate", f"Churn rate ({latest['period']})", latest["churn_rate"], "percent"))
        figures.append(Figure("active", f"Active ({latest['period']})", latest["active"], "integer"))
    return AnalysisResult(
        method="churn",
        name=ctx.name,
        title=f"Churn of {ctx.params['entity']} by {grain}",
        tables=tables,
        figures=figures,
        charts=[_chart()],
        notes=notes,
    )


def _merge_revenue(ctx: AnalysisContext, table: Result, grain: str) -> None:
    """Add revenue churn columns (per-period revenue, its previous value, the lost part, NRR) to `table`."""
    raw = ctx.run(revenue_query(ctx, grain), ["p", "revenue", "revenue_previous", "lost_revenue", "kept_revenue"])
    by_period = {period_start(r["p"], grain): r for r in raw.records()}
    rows = []
    for row in table.rows:
        r = by_period.get(row[0], {})
        previous, lost, kept = (
            r.get("revenue_previous") or 0.0,
            r.get("lost_revenue") or 0.0,
            r.get("kept_revenue") or 0.0,
        )
        rows.append((*row, previous, r.get("revenue") or 0.0, lost, _ratio(lost, previous), _ratio(kept, previous)))
    table.columns = [*table.columns, *REVENUE, "net_revenue_retention"]
    table.rows = rows


def _chart() -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Churn rate by period",
        "data": {"name": "churn"},
        "mark": "line",
        "encoding": {
            "x": {"field": "period", "type": "temporal"},
            "y": {"field": "churn_rate", "type": "quantitative"},
        },
    }


METHOD = AnalysisMethod(
    name="churn",
    description="Churn and retention rates per period (inactivity window or contract end), revenue churn, risk list.",
    parameters=PARAMETERS,
    run=run,
    check=reference_checker(
        {
            "entity": "entity",
            "events": "entity",
            "time": "dimension",
            "start": "dimension",
            "end": "dimension",
            "measure": "measure",
        },
        [("events", "entity")],
    ),
)
