"""New vs returning: per period, the customers and revenue from first-time and from returning customers.

An entity is new in the period of its first event ever and returning in every later period with an event. The first
event is looked up over all the events the caller may see (row filters apply, the query's `where` and segments do
not): a filter on the period or the channel must not turn a long-standing customer into a new one. The customers
and revenue per period do follow the `where` and segments. Periods without events are not listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.sqlkit import (
    GRAIN_CHOICES,
    case,
    check_events,
    check_measure,
    col,
    count_if,
    is_visible,
    measure_aggregate,
    num,
    ordered,
    safe_div,
    select,
    tbl,
    visible_keys,
    with_ctes,
)
from crmetrics.compiler.frames import Frame
from crmetrics.dsl.schema import NAME_PATTERN, Field, Obj, Str
from crmetrics.model.types import ADDITIVE, SemanticModel

PARAMETERS = Obj(
    fields={
        "entity": Field(Str(pattern=NAME_PATTERN, description="The customers, e.g. customers."), required=True),
        "events": Field(Str(pattern=NAME_PATTERN, description="Their events, e.g. orders."), required=True),
        "monetary": Field(Str(description="A sum or count measure of the events, e.g. orders.revenue."), True),
        "grain": Field(Str(enum=GRAIN_CHOICES, description="The period (month).")),
    }
)
COLUMNS = (
    "period",
    "customers",
    "new_customers",
    "returning_customers",
    "revenue",
    "new_revenue",
    "returning_revenue",
    "returning_share",
)


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Entities and measure fit together; the measure adds up across customers."""
    problems = check_events(model, params) + check_measure(model, params, "monetary", "events")
    measure = model.measure(params.get("monetary", ""))
    if not problems and measure is not None and measure.agg not in ADDITIVE:
        problems.append(("monetary", f"measure {measure.ref} must be a sum or a count, so that it adds up"))
    return problems


def _rows(frame: Frame, entity: str, grain: str, value: exp.Expression | None) -> exp.Select:
    """(k, period[, v]) of each event of an entity the caller may see.

    The key is the foreign key, kept when it is in `visible` (a semi-join): a join to the entity's rows would count
    an event once per row of a duplicated key, and an event whose entity row is missing or hidden by a row filter
    must not count.
    """
    key = frame.key(entity)
    period = frame.time(grain)
    columns = {"k": key, "period": period, **({"v": value} if value is not None else {})}
    keep = [is_visible(key.copy()), exp.Paren(this=period.copy()).is_(exp.null()).not_()]
    return frame.select(columns).where(*keep, copy=False)


def periods_query(ctx: AnalysisContext) -> exp.Select:
    """One row per period with events, in time order."""
    params = ctx.params
    entity, events, grain = params["entity"], params["events"], params.get("grain", "month")
    history = Frame(ctx.model, events, None, (), ctx.context)  # row filters only: the first event ever
    frame = ctx.frame(events)
    ctes: dict[str, exp.Expression] = {
        "visible": visible_keys(ctx, entity),
        "history": _rows(history, entity, grain, None),
        "events": _rows(frame, entity, grain, frame.measure_value(params["monetary"])),
    }
    ctes["firsts"] = select({"k": col("k"), "first_period": exp.Min(this=col("period"))}, "history").group_by(
        col("k"), copy=False
    )
    per_entity = select(
        {
            "period": col("period", "events"),
            "k": col("k", "events"),
            "is_new": exp.EQ(this=col("first_period", "firsts"), expression=col("period", "events")),
            "revenue": measure_aggregate(ctx.model, params["monetary"], col("v", "events")),
        },
        "events",
    )
    per_entity = per_entity.join(
        tbl("firsts"), on=exp.EQ(this=col("k", "firsts"), expression=col("k", "events")), join_type="left", copy=False
    ).group_by(col("period", "events"), col("k", "events"), col("first_period", "firsts"), copy=False)
    ctes["per_entity"] = per_entity
    new_revenue = exp.Sum(this=case([(col("is_new"), col("revenue"))], num(0)))
    revenue = exp.Sum(this=col("revenue"))
    returning_revenue = exp.Sub(this=revenue.copy(), expression=new_revenue.copy())
    query = select(
        {
            "period": col("period"),
            "customers": exp.Count(this=exp.Star()),
            "new_customers": count_if(col("is_new")),
            "returning_customers": count_if(exp.Not(this=col("is_new"))),
            "revenue": revenue,
            "new_revenue": new_revenue,
            "returning_revenue": returning_revenue,
            "returning_share": safe_div(returning_revenue.copy(), revenue.copy()),
        },
        "per_entity",
    ).group_by(col("period"), copy=False)
    return with_ctes(query.order_by(ordered(col("period")), copy=False), ctes)


def run(ctx: AnalysisContext) -> AnalysisResult:
    """The periods table, totals as figures and a stacked bar chart of new and returning customers."""
    periods = ctx.run(periods_query(ctx))
    grain = ctx.params.get("grain", "month")
    result = AnalysisResult("new_vs_returning", ctx.name, f"New and returning {ctx.params['entity']} per {grain}")
    result.tables = {"periods": periods}
    periods_sql = periods_query(ctx)
    periods_sql.set("order", None)
    totals_sql = select(
        {"new_customers": exp.Sum(this=col("new_customers")), "revenue": exp.Sum(this=col("revenue"))},
        exp.Subquery(this=periods_sql, alias=exp.TableAlias(this=exp.to_identifier("p"))),
    )
    ((new_customers, revenue),) = ctx.run(totals_sql).rows
    result.figures = [
        Figure("periods", "Periods", len(periods.rows), "integer"),
        Figure("new_customers", "New customers", new_customers or 0, "integer"),
        Figure("revenue", "Revenue", revenue or 0, "currency"),
    ]
    result.charts = [
        {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": "New and returning customers",
            "data": {"name": "periods"},
            "transform": [{"fold": ["new_customers", "returning_customers"], "as": ["kind", "count"]}],
            "mark": "bar",
            "encoding": {
                "x": {"field": "period", "type": "temporal", "timeUnit": "yearmonth"},
                "y": {"field": "count", "type": "quantitative", "stack": True},
                "color": {"field": "kind", "type": "nominal"},
            },
        }
    ]
    result.notes = ["A customer is new in the period of its first event ever, returning in every later one."]
    return result


METHOD = AnalysisMethod(
    name="new_vs_returning",
    description="Customers and revenue per period from first-time and from returning customers.",
    parameters=PARAMETERS,
    run=run,
    check=check,
)
