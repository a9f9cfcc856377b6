"""Customer lifetime value: the historical value to date with the average-based estimate, or BG/NBD + Gamma-Gamma.

The per-customer summary is computed in SQL inside the database (the literature's conventions: events of one day are
merged; frequency = repeat purchase days; recency = first to last purchase; T = first purchase to `as_of`; monetary
= mean value of the repeat purchase days; events after `as_of` are ignored). Only the model fit runs in Python.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.clv_fit import bgnbd_result, chart
from crmetrics.analysis.sqlkit import check_events, check_measure
from crmetrics.analysis.valuesql import (
    check_date,
    col,
    date_literal,
    dbl,
    num,
    ordered,
    parse_date,
    safe_div,
    select,
    table,
    with_ctes,
)
from crmetrics.dsl.schema import Field, Num, Obj, Str
from crmetrics.errors import AnalysisError
from crmetrics.model.types import SemanticModel
from crmetrics.result import Result

UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}
MAX_STEPS = 60  # discounting steps over the horizon: one per time unit, at most this many (weekly over a year)

PARAMETERS = Obj(
    description="Customer lifetime value: historical, or the BG/NBD and Gamma-Gamma models.",
    fields={
        "entity": Field(Str(description="The customer entity."), required=True),
        "events": Field(Str(description="The purchase entity (its time is the purchase time)."), required=True),
        "monetary": Field(
            Str(description="A measure of the events entity: the value of each purchase."), required=True
        ),
        "as_of": Field(Str(description="End of the observation period, YYYY-MM-DD (default: the last event).")),
        "time_unit": Field(Str(enum=tuple(UNIT_DAYS), description="Unit of recency, T and horizon (week).")),
        "model": Field(Str(enum=("historical", "bgnbd"), description="historical (default) or bgnbd.")),
        "horizon": Field(Num(minimum=0, description="Future span in time units (default: one year).")),
        "discount_rate": Field(Num(minimum=0, description="Annual discount rate, e.g. 0.1 (default 0).")),
        "margin": Field(Num(minimum=0, maximum=1, description="Share of revenue that is profit (default 1).")),
    },
)


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """At load time: entity and events exist and are joined, monetary is a measure of events, as_of is a date."""
    problems = check_events(model, params) + check_measure(model, params, "monetary", "events")
    entity = model.entities.get(params.get("entity", ""))
    if entity is not None and entity.key in output_columns(params):
        problems.append(("entity", f"the key column '{entity.key}' clashes with a clv output column"))
    return problems + check_date(params, "as_of")


class Setup:
    """The validated parameters of one run."""

    def __init__(self, ctx: AnalysisContext) -> None:
        params = ctx.params
        self.entity, self.events = params["entity"], params["events"]
        for name in (self.entity, self.events):
            if name not in ctx.model.entities:
                raise AnalysisError(f"clv: unknown entity '{name}'")
        self.unit = params.get("time_unit", "week")
        self.unit_days = UNIT_DAYS[self.unit]
        self.horizon = float(params.get("horizon", 365.25 / self.unit_days))
        self.discount_rate = float(params.get("discount_rate", 0.0))
        self.margin = float(params.get("margin", 1.0))
        self.key_name = ctx.model.entities[self.entity].key or "key"
        self.as_of = parse_date(params["as_of"], "clv: as_of") if params.get("as_of") else None

    def discounts(self) -> list[tuple[float, float, float]]:
        """(start, end, discount factor at the end) of each step of the horizon, in time units.

        Without discounting one step gives the same sum, so the expected purchases are computed once."""
        steps = 1 if self.discount_rate == 0 else min(max(math.ceil(self.horizon), 1), MAX_STEPS)
        size = self.horizon / steps
        years = self.unit_days / 365.25
        return [(k * size, (k + 1) * size, (1 + self.discount_rate) ** (-(k + 1) * size * years)) for k in range(steps)]


def _events(ctx: AnalysisContext, setup: Setup, as_of: exp.Expression | None) -> exp.Select:
    """(customer key, purchase day, value) of every event up to as_of with a known customer and time."""
    frame = ctx.frame(setup.events)
    key, day = frame.key(setup.entity), frame.time("day")  # day grain even if the time dimension says otherwise
    rows = frame.select({"k": key, "d": day, "v": dbl(frame.measure_value(ctx.params["monetary"]))})
    conditions = [key.copy().is_(exp.null()).not_(), day.copy().is_(exp.null()).not_()]
    if as_of is not None:
        conditions.append(day.copy() <= as_of)
    return rows.where(*conditions, copy=False)


def last_event(ctx: AnalysisContext, setup: Setup) -> dt.date | None:
    """The day of the latest event, the default as_of."""
    query = with_ctes(select({"d": exp.Max(this=col("d"))}, "clv_events"), {"clv_events": _events(ctx, setup, None)})
    value = ctx.run(query).rows[0][0]
    return parse_date(value, "clv: last event") if value is not None else None


def _units(later: exp.Expression, earlier: exp.Expression, setup: Setup) -> exp.Expression:
    """(later - earlier) in days, as DOUBLE, divided by the days of one time unit."""
    days = exp.DateDiff(this=later, expression=earlier, unit=exp.Var(this="DAY"))
    return dbl(days) if setup.unit == "day" else exp.Div(this=dbl(days), expression=num(setup.unit_days))


def _as_of(as_of: dt.date | None) -> tuple[exp.Expression, exp.Expression | None]:
    """as_of as SQL, and the events filter: a given date, or (for the per-entity outputs) the day of the last event."""
    if as_of is not None:
        return date_literal(as_of), date_literal(as_of)
    latest = exp.select(exp.Max(this=col("d"))).from_(table("clv_events"))
    return exp.Subquery(this=latest), None


def summary_query(ctx: AnalysisContext, setup: Setup, as_of: dt.date | None) -> exp.Select:
    """The BG/NBD summary per customer: frequency, recency, T, monetary (and the observed revenue), in SQL.

    The first day's value is found by joining each customer's first day back to the day rows, which is much cheaper
    than a window over all of them; repeat purchases are then the totals minus the first day.
    """
    per_day = select({"k": col("k"), "d": col("d"), "v": exp.Sum(this=col("v"))}, "clv_events")
    per_day = per_day.group_by(col("k"), col("d"))
    per_customer = select(
        {
            "k": col("k"),
            "first_d": exp.Min(this=col("d")),
            "last_d": exp.Max(this=col("d")),
            "days": exp.Count(this=exp.Star()),
            "total": exp.Sum(this=col("v")),
            "valued": exp.Count(this=col("v")),
        },
        "clv_days",
    ).group_by(col("k"))
    first_value = col("v", "f")
    first_known = exp.Case(ifs=[exp.If(this=first_value.is_(exp.null()), true=num(0))], default=num(1))
    repeat_sum = exp.Sub(this=col("total", "c"), expression=exp.func("COALESCE", first_value.copy(), num(0)))
    repeat_count = exp.Sub(this=col("valued", "c"), expression=first_known)
    query = select(
        {
            setup.key_name: col("k", "c"),
            "frequency": exp.Sub(this=col("days", "c"), expression=num(1)),
            "recency": _units(col("last_d", "c"), col("first_d", "c"), setup),
            "T": _units(_as_of(as_of)[0], col("first_d", "c"), setup),
            "monetary": safe_div(repeat_sum, repeat_count),
            "revenue": col("total", "c"),
        },
        exp.alias_(table("clv_customers"), "c"),
    ).join(
        exp.alias_(table("clv_days"), "f"),
        on=exp.and_(col("k", "f").eq(col("k", "c")), col("d", "f").eq(col("first_d", "c"))),
    )
    query = query.order_by(*ordered([setup.key_name]))
    ctes = {"clv_events": _events(ctx, setup, _as_of(as_of)[1]), "clv_days": per_day, "clv_customers": per_customer}
    return with_ctes(query, ctes)


def historical_query(ctx: AnalysisContext, setup: Setup, as_of: dt.date | None) -> exp.Select:
    """Per customer: orders, revenue, first and last purchase, tenure, average order value and value to date."""
    query = select(
        {
            setup.key_name: col("k"),
            "orders": exp.Count(this=exp.Star()),
            "orders_with_value": exp.Count(this=col("v")),
            "revenue": exp.Sum(this=col("v")),
            "first_purchase": exp.Min(this=col("d")),
            "last_purchase": exp.Max(this=col("d")),
            "tenure": _units(_as_of(as_of)[0], exp.Min(this=col("d")), setup),
            "aov": exp.Avg(this=col("v")),
            "clv": exp.Mul(this=exp.Sum(this=col("v")), expression=num(setup.margin)),
        },
        "clv_events",
    ).group_by(col("k"))
    query = query.order_by(*ordered([setup.key_name]))
    return with_ctes(query, {"clv_events": _events(ctx, setup, _as_of(as_of)[1])})


def historical_result(ctx: AnalysisContext, setup: Setup, as_of: dt.date) -> AnalysisResult:
    """Value to date per customer, and the average-based estimate: AOV x frequency x lifespan x margin, discounted."""
    customers = ctx.run(historical_query(ctx, setup, as_of))
    records = customers.records()
    orders = sum(r["orders"] for r in records)
    revenue = sum(r["revenue"] or 0.0 for r in records)
    valued = sum(r["orders_with_value"] for r in records)
    # each customer is observed for at least one time unit, so a first purchase made today is not a rate of infinity
    exposure = sum(max(r["tenure"], 1.0) for r in records)
    aov = revenue / valued if valued else None
    frequency = orders / exposure if exposure else None
    annuity = sum((end - start) * factor for start, end, factor in setup.discounts())
    estimate = aov * frequency * setup.margin * annuity if aov is not None and frequency is not None else None
    summary = {
        "customers": len(records),
        "orders": orders,
        "revenue": revenue,
        "value": revenue * setup.margin,
        "aov": aov,
        "purchase_frequency": frequency,
        "lifespan": setup.horizon,
        "discounted_lifespan": annuity,
        "margin": setup.margin,
        "discount_rate": setup.discount_rate,
        "clv_estimate": estimate,
        "as_of": as_of,
        "time_unit": setup.unit,
    }
    result = AnalysisResult("clv", ctx.name, "Customer lifetime value (historical)")
    result.tables = {"customers": customers, "summary": Result(list(summary), [tuple(summary.values())])}
    result.figures = [
        Figure("clv_estimate", "Average-based CLV", estimate, "currency"),
        Figure("value", "Value to date", revenue * setup.margin, "currency"),
        Figure("customers", "Customers", len(records), "integer"),
    ]
    result.charts = [chart()]
    if not records:
        result.notes.append("no purchases up to as_of: nothing to value")
    return result


OUTPUTS = {
    "historical": {
        "orders": "number",
        "orders_with_value": "number",
        "revenue": "number",
        "first_purchase": "time",
        "last_purchase": "time",
        "tenure": "number",
        "aov": "number",
        "clv": "number",
    },
    "bgnbd": {"frequency": "number", "recency": "number", "T": "number", "monetary": "number", "revenue": "number"},
}


def output_columns(params: Mapping[str, Any]) -> dict[str, str]:
    """Per-customer columns usable as dimensions (`analysis.clv`): the SQL part of the model, not the fit."""
    return OUTPUTS.get(params.get("model", "historical"), {})


def entity_outputs(ctx: AnalysisContext) -> tuple[str, exp.Select, list[str]]:
    """The per-customer SQL (value to date, or the BG/NBD summary) as a SELECT keyed by the customer."""
    setup = Setup(ctx)
    model = ctx.params.get("model", "historical")
    query = (
        historical_query(ctx, setup, setup.as_of) if model == "historical" else summary_query(ctx, setup, setup.as_of)
    )
    return setup.entity, query, [setup.key_name, *OUTPUTS[model]]


def run(ctx: AnalysisContext) -> AnalysisResult:
    """historical (default) or bgnbd, as the `model` parameter says."""
    setup = Setup(ctx)
    as_of = setup.as_of or last_event(ctx, setup)
    if as_of is None:
        raise AnalysisError(f"clv: {setup.events} has no events with a customer and a time; give as_of or add data")
    if ctx.params.get("model", "historical") == "historical":
        return historical_result(ctx, setup, as_of)
    summary = ctx.run(summary_query(ctx, setup, as_of))
    return bgnbd_result(ctx, setup, as_of, summary)


METHOD = AnalysisMethod(
    "clv",
    "Customer lifetime value: historical, or BG/NBD with Gamma-Gamma.",
    PARAMETERS,
    run,
    entity_outputs=entity_outputs,
    output_columns=output_columns,
    check=check,
)
