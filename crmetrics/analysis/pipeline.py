"""Pipeline: weighted forecast, win rate, average deal size and sales-cycle length, by period and owner.

Each open deal is weighted by its stage's probability of being won: declared in `probabilities`, or learned from
closed deals as the historical stage-to-won rate (won deals that reached the stage / closed deals that reached it;
a won deal reached every open stage, a lost deal the stage it was lost at, `last_stage` when given). The learned
rates are one small query; the forecast is a second query with the rates as literals. Win rate is won / (won +
lost); average deal size is won amount / won deals; the sales cycle is `created` -> `closed` of won deals.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.lifecycle_sql import (
    as_list,
    breakdown,
    coalesce_zero,
    col,
    condition,
    days_between,
    entity_param,
    flag,
    is_in,
    null_number,
    num,
    order_by,
    percentile,
    raw_time,
    reference_checker,
    safe_div,
    select,
    stage_index,
    when,
    with_ctes,
)
from crmetrics.compiler.scope import truncate
from crmetrics.dsl.schema import NAME_PATTERN, Field, ListOf, MapOf, Num, Obj, Str
from crmetrics.errors import AnalysisError
from crmetrics.result import Result

SUMMARY = [
    "opportunities",
    "open",
    "open_amount",
    "weighted_forecast",
    "won",
    "lost",
    "win_rate",
    "won_amount",
    "average_deal_size",
    "average_cycle_days",
    "median_cycle_days",
]
PROBABILITY_COLUMNS = ["stage", "stage_index", "probability", "source", "closed_reached", "won_reached"]

PARAMETERS = Obj(
    description="Weighted pipeline forecast, win rate, deal size and sales cycle.",
    fields={
        "entity": Field(Str(pattern=NAME_PATTERN, description="The opportunities entity."), required=True),
        "amount": Field(Str(description="entity.measure: the deal amount (a sum)."), required=True),
        "stage": Field(Str(description="entity.dimension with the current stage."), required=True),
        "stages": Field(ListOf(item=Str(), min_items=1, description="The open stages, in order."), required=True),
        "won_stages": Field(
            ListOf(item=Str(), single=True, min_items=1, description="Values meaning won."), required=True
        ),
        "lost_stages": Field(ListOf(item=Str(), single=True, description="Values meaning lost.")),
        "lost_when": Field(Str(description="A condition over dimension references marking lost deals.")),
        "last_stage": Field(Str(description="entity.dimension: the last open stage a lost deal reached.")),
        "probabilities": Field(MapOf(Num(minimum=0, maximum=1), description="Declared win probability per stage.")),
        "by": Field(ListOf(item=Str(), single=True, description="Dimension references, e.g. the owner.")),
        "period": Field(Str(description="Time dimension placing a deal in a period (default: the entity's time).")),
        "grain": Field(Str(enum=("week", "month", "quarter", "year"), description="Period grain (month).")),
        "created": Field(Str(description="When the deal was created (default: the entity's time).")),
        "closed": Field(Str(description="When the deal was closed; needed for the sales cycle.")),
    },
)


class _Deals:
    """Per-deal columns shared by both queries: stage index, won/lost flags, the furthest open stage reached."""

    def __init__(self, ctx: AnalysisContext) -> None:
        self.ctx = ctx
        self.stages = as_list(ctx.params["stages"])
        self.frame = ctx.frame(entity_param(ctx, "entity"))
        value = self.frame.dimension(ctx.params["stage"])
        self.index = stage_index(value, self.stages)
        self.won = is_in(value.copy(), as_list(ctx.params["won_stages"]))
        self.lost = is_in(value.copy(), as_list(ctx.params.get("lost_stages")))
        if ctx.params.get("lost_when"):
            # a stage column that keeps the last stage reached marks losses elsewhere
            marked = exp.or_(self.lost, condition(self.frame, ctx.params["lost_when"], "lost_when"))
            self.lost = exp.EQ(this=flag(marked), expression=num(1))  # a NULL condition is not a loss
        furthest = self.index.copy()
        if ctx.params.get("last_stage"):
            last = stage_index(self.frame.dimension(ctx.params["last_stage"]), self.stages)
            furthest = exp.Coalesce(this=furthest, expressions=[last])
        # a won deal passed every open stage; a lost one the stage it stopped at
        self.reached = exp.Case(ifs=[exp.If(this=self.won.copy(), true=num(len(self.stages)))], default=furthest)


def rates_query(ctx: AnalysisContext) -> exp.Select:
    """Per open stage: closed deals that reached it, won deals among them, and their ratio."""
    deals = _Deals(ctx)
    rows = deals.frame.select({"reached": deals.reached, "won": flag(deals.won), "lost": flag(deals.lost)})
    parts = []
    for i, stage in enumerate(deals.stages, 1):
        past = exp.GTE(this=col("reached"), expression=num(i))
        closed = exp.Sum(
            this=flag(exp.and_(past, exp.GT(this=exp.Add(this=col("won"), expression=col("lost")), expression=num(0))))
        )
        won = exp.Sum(this=flag(exp.and_(past.copy(), exp.EQ(this=col("won"), expression=num(1)))))
        parts.append(
            select(
                {
                    "stage": exp.Literal.string(stage),
                    "stage_index": num(i),
                    "closed_reached": closed,
                    "won_reached": won,
                },
                "deals",
            )
        )
    union = parts[0]
    for part in parts[1:]:
        union = exp.union(union, part, distinct=False)
    final = select(
        {
            "stage": col("stage"),
            "stage_index": col("stage_index"),
            "probability": safe_div(col("won_reached"), col("closed_reached")),
            "closed_reached": col("closed_reached"),
            "won_reached": col("won_reached"),
        },
        "rates",
    )
    return with_ctes(order_by(final, ["stage_index"]), {"deals": rows, "rates": union})


def probabilities(ctx: AnalysisContext) -> Result:
    """The probability used for each stage, declared or learned, with the evidence behind the learned ones."""
    declared = dict(ctx.params.get("probabilities") or {})
    stages = as_list(ctx.params["stages"])
    unknown = sorted(set(declared) - set(stages))
    if unknown:
        raise AnalysisError(f"analysis '{ctx.name}': probabilities name stages not in `stages`: {', '.join(unknown)}")
    learned = {r["stage"]: r for r in ctx.run(rates_query(ctx)).records()}
    rows = []
    for i, stage in enumerate(stages, 1):
        evidence = learned[stage]
        if stage in declared:
            rows.append(
                (stage, i, float(declared[stage]), "declared", evidence["closed_reached"], evidence["won_reached"])
            )
        else:
            rows.append(
                (stage, i, evidence["probability"], "learned", evidence["closed_reached"], evidence["won_reached"])
            )
    return Result(PROBABILITY_COLUMNS, rows)


def build(ctx: AnalysisContext, weights: dict[int, float | None], grouped: bool = True) -> tuple[exp.Select, list[str]]:
    """The summary SELECT by `by` and period (one overall row when `grouped` is False)."""
    deals = _Deals(ctx)
    frame = deals.frame
    groups = breakdown(frame, as_list(ctx.params.get("by"))) if grouped else {}
    if grouped:
        when_ = raw_time(frame, ctx.params.get("period"))
        groups["period"] = truncate(when_, ctx.params.get("grain", "month"))
    amount = frame.measure_value(ctx.params["amount"])
    known = [(i, p) for i, p in weights.items() if p is not None]
    ifs = [exp.If(this=exp.EQ(this=deals.index.copy(), expression=num(i)), true=num(p)) for i, p in known]
    probability: exp.Expression = exp.Case(ifs=ifs) if ifs else null_number()
    cycle: exp.Expression = null_number()
    if ctx.params.get("closed"):
        cycle = days_between(raw_time(frame, ctx.params.get("created")), raw_time(frame, ctx.params["closed"]))
    is_open = exp.and_(
        deals.index.copy().is_(exp.null()).not_(), exp.not_(deals.won.copy()), exp.not_(deals.lost.copy())
    )
    columns = {f"g{j}": v for j, v in enumerate(groups.values())}
    columns |= {
        "amt": amount,
        "is_open": flag(is_open),
        "is_won": flag(deals.won),
        "is_lost": flag(deals.lost),
        "p": probability,
        "cycle": cycle,
    }
    rows = frame.select(columns)
    names = list(groups)
    won = exp.EQ(this=col("is_won"), expression=num(1))
    open_ = exp.EQ(this=col("is_open"), expression=num(1))
    summary = {names[j]: col(f"g{j}") for j in range(len(names))}
    summary |= {
        "opportunities": exp.Count(this=exp.Star()),
        "open": coalesce_zero(exp.Sum(this=col("is_open"))),
        "open_amount": coalesce_zero(exp.Sum(this=when(open_, col("amt")))),
        "weighted_forecast": coalesce_zero(
            exp.Sum(this=when(open_.copy(), exp.Mul(this=col("amt"), expression=col("p"))))
        ),
        "won": coalesce_zero(exp.Sum(this=col("is_won"))),
        "lost": coalesce_zero(exp.Sum(this=col("is_lost"))),
        "win_rate": safe_div(
            exp.Sum(this=col("is_won")),
            exp.Add(this=exp.Sum(this=col("is_won")), expression=exp.Sum(this=col("is_lost"))),
        ),
        "won_amount": coalesce_zero(exp.Sum(this=when(won, col("amt")))),
        "average_deal_size": safe_div(
            exp.Sum(this=when(won.copy(), col("amt"))),
            exp.Sum(this=when(won.copy(), flag(col("amt").is_(exp.null()).not_()))),
        ),
        "average_cycle_days": exp.Avg(this=when(won.copy(), col("cycle"))),
        "median_cycle_days": percentile(when(won.copy(), col("cycle")), 0.5),
    }
    final = select(summary, "deals")
    if names:
        final = final.group_by(*(col(f"g{j}") for j in range(len(names))), copy=False)
    return with_ctes(order_by(final, names), {"deals": rows}), names


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Run the pipeline analysis."""
    table = probabilities(ctx)
    weights = {row[1]: row[2] for row in table.rows}
    tree, names = build(ctx, weights)
    summary = ctx.run(tree, [*names, *SUMMARY])
    overall_tree, _ = build(ctx, weights, grouped=False)
    overall: dict[str, Any] = (ctx.run(overall_tree, SUMMARY).records() or [{}])[0]
    missing = [row[0] for row in table.rows if row[2] is None]
    notes = []
    if missing:
        notes.append(f"no closed deal reached {', '.join(missing)}: those open deals carry no weight in the forecast")
    return AnalysisResult(
        method="pipeline",
        name=ctx.name,
        title=f"Pipeline of {ctx.params['entity']}",
        tables={"pipeline": summary, "stage_probabilities": table},
        figures=[
            Figure("weighted_forecast", "Weighted forecast", overall.get("weighted_forecast"), "currency"),
            Figure("open_amount", "Open pipeline", overall.get("open_amount"), "currency"),
            Figure("win_rate", "Win rate", overall.get("win_rate"), "percent"),
            Figure("average_deal_size", "Average deal size", overall.get("average_deal_size"), "currency"),
            Figure("median_cycle_days", "Median sales cycle (days)", overall.get("median_cycle_days"), "number"),
        ],
        charts=[_chart()],
        notes=notes,
    )


def _chart() -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Weighted forecast by period",
        "data": {"name": "pipeline"},
        "mark": "bar",
        "encoding": {
            "x": {"field": "period", "type": "temporal"},
            "y": {"aggregate": "sum", "field": "weighted_forecast", "type": "quantitative"},
        },
    }


METHOD = AnalysisMethod(
    name="pipeline",
    description="Weighted forecast (declared or learned stage probabilities), win rate, deal size, sales cycle.",
    parameters=PARAMETERS,
    run=run,
    check=reference_checker(
        {
            "entity": "entity",
            "amount": "measure",
            "stage": "dimension",
            "last_stage": "dimension",
            "by": "dimension",
            "period": "dimension",
            "created": "dimension",
            "closed": "dimension",
            "lost_when": "condition",
        }
    ),
)
