"""Satisfaction (CSAT): share of top-box answers, average score and response rate, with Wilson intervals.

Every row of the entity is one survey invitation (e.g. a ticket); a NULL score means no answer. Scores outside the
declared scale are counted as `out_of_scale` and left out of the answers. All counting and the Wilson intervals are
computed in SQL, overall, by each requested dimension and over time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from statistics import NormalDist
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.sqlkit import check_entity
from crmetrics.analysis.valuesql import check_dimension, col, count_if, dbl, num, ordered, safe_div, select, with_ctes
from crmetrics.compiler.frames import Frame
from crmetrics.dsl.schema import Field, ListOf, Num, Obj, Str
from crmetrics.errors import AnalysisError
from crmetrics.model.references import GRAINS
from crmetrics.model.types import SemanticModel

PARAMETERS = Obj(
    description="CSAT, average score and response rate, with Wilson confidence intervals.",
    fields={
        "entity": Field(Str(description="The entity with one row per survey invitation."), required=True),
        "score": Field(Str(description="The score: a dimension (entity.dimension) or a column."), required=True),
        "scale": Field(ListOf(item=Num(), min_items=2, max_items=2, description="[lowest, highest] (default [1, 5]).")),
        "top_box": Field(Num(integer=True, minimum=1, description="Top scale points counted satisfied (default 2).")),
        "by": Field(ListOf(item=Str(), single=True, description="Dimensions to break the rates down by.")),
        "over_time": Field(Str(enum=GRAINS, description="Also break down by the entity's time at this grain.")),
        "confidence": Field(Num(minimum=0.5, maximum=0.999, description="Confidence level (default 0.95).")),
        "min_sample": Field(Num(integer=True, minimum=1, description="Answers below which a group is flagged (30).")),
    },
)

COUNTS = ("invited", "responses", "satisfied", "out_of_scale", "avg_score")
RATES = ("response_rate", "response_rate_low", "response_rate_high", "csat", "csat_low", "csat_high")


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """At load time: the entity exists; score, by and over_time name dimensions it reaches."""
    problems = check_entity(model, params, "entity", keyed=False)
    entity = params.get("entity")
    if problems or not isinstance(entity, str):
        return problems
    if isinstance(params.get("score"), str) and "." in params["score"]:
        problems += check_dimension(model, entity, "score", params["score"])
    by = params.get("by") or []
    for ref in [by] if isinstance(by, str) else by:
        problems += check_dimension(model, entity, "by", ref)
    if isinstance(params.get("over_time"), str):
        problems += check_dimension(model, entity, "over_time", f"metric_time:{params['over_time']}")
    scale = params.get("scale")
    numbers = isinstance(scale, list) and len(scale) == 2 and all(isinstance(v, int | float) for v in scale)
    if numbers and scale[0] >= scale[1]:
        problems.append(("scale", "write [lowest, highest] with lowest < highest"))
    return problems


def _score(frame: Frame, entity: str, text: str) -> exp.Expression:
    if "." in text:
        return frame.dimension(text)
    if text in frame.model.entities[entity].dimensions:
        return frame.dimension(f"{entity}.{text}")
    return frame.column(text)


def wilson(k: exp.Expression, n: exp.Expression, z: float) -> tuple[exp.Expression, exp.Expression, exp.Expression]:
    """k / n with its Wilson score interval at the normal quantile z; all NULL when n is 0."""
    z2 = z * z
    p = safe_div(k, n.copy())
    denominator = exp.Paren(this=exp.Add(this=num(1), expression=safe_div(num(z2), n.copy())))
    center = exp.Div(
        this=exp.Paren(this=exp.Add(this=p.copy(), expression=safe_div(num(z2 / 2), n.copy()))),
        expression=denominator,
    )
    spread = exp.Add(
        this=safe_div(
            exp.Mul(this=p.copy(), expression=exp.Paren(this=exp.Sub(this=num(1), expression=p.copy()))), n.copy()
        ),
        expression=safe_div(num(z2 / 4), exp.Mul(this=dbl(n.copy()), expression=n.copy())),
    )
    half = exp.Div(this=exp.Mul(this=num(z), expression=exp.Sqrt(this=spread)), expression=denominator.copy())
    return p, exp.Sub(this=center, expression=half), exp.Add(this=center.copy(), expression=half.copy())


def _query(ctx: AnalysisContext, group: tuple[str, str] | None) -> exp.Select:
    """One table: the counts per group (column name, dimension reference or `metric_time:grain`) and the rates."""
    params = ctx.params
    entity = params["entity"]
    frame = ctx.frame(entity)
    low, high = (float(v) for v in params.get("scale", (1, 5)))
    if low >= high:
        raise AnalysisError(f"satisfaction: scale must be [lowest, highest], got [{low:g}, {high:g}]")
    threshold = high - int(params.get("top_box", 2)) + 1
    columns = {"s": _score(frame, entity, params["score"])}
    if group is not None:
        columns["g"] = frame.dimension(group[1])
    rows = frame.select(columns)
    answered = exp.and_(col("s") >= num(low), col("s") <= num(high))
    counts = select(
        {
            **({"g": col("g")} if group else {}),
            "invited": exp.Count(this=exp.Star()),
            "responses": count_if(answered),
            "satisfied": count_if(exp.and_(answered.copy(), col("s") >= num(threshold))),
            "out_of_scale": count_if(
                exp.and_(col("s").is_(exp.null()).not_(), exp.Not(this=exp.Paren(this=answered.copy())))
            ),
            "avg_score": exp.Avg(this=exp.Case(ifs=[exp.If(this=answered.copy(), true=dbl(col("s")))])),
        },
        "sat_rows",
    )
    if group:
        counts = counts.group_by(col("g"))
    z = NormalDist().inv_cdf(0.5 + float(params.get("confidence", 0.95)) / 2)
    response = wilson(col("responses"), col("invited"), z)
    csat = wilson(col("satisfied"), col("responses"), z)
    names = [group[0]] if group else []
    out = {
        **({group[0]: col("g")} if group else {}),
        **{c: col(c) for c in COUNTS},
        **dict(zip(RATES, (*response, *csat), strict=True)),
        "low_sample": col("responses") < num(int(params.get("min_sample", 30))),
    }
    query = select(out, "sat_counts").order_by(*ordered(names)) if names else select(out, "sat_counts")
    return with_ctes(query, {"sat_rows": rows, "sat_counts": counts})


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Tables `overall`, one per `by` dimension (named by its reference) and `over_time` when asked."""
    params = ctx.params
    by = params.get("by") or []
    groups = [(ref, ref, ref) for ref in ([by] if isinstance(by, str) else by)]
    if params.get("over_time"):
        groups.append(("over_time", "period", f"metric_time:{params['over_time']}"))
    tables = {"overall": ctx.run(_query(ctx, None))}
    for table_name, column, ref in groups:
        tables[table_name] = ctx.run(_query(ctx, (column, ref)))
    result = AnalysisResult("satisfaction", ctx.name, "Customer satisfaction (CSAT)", tables)
    overall = tables["overall"].records()[0]
    result.figures = [
        Figure("csat", "CSAT", overall["csat"], "percent"),
        Figure("avg_score", "Average score", overall["avg_score"]),
        Figure("response_rate", "Response rate", overall["response_rate"], "percent"),
        Figure("responses", "Answers", overall["responses"], "integer"),
    ]
    minimum = int(params.get("min_sample", 30))
    for name, table in tables.items():
        small = sum(1 for flag in table.column("low_sample") if flag)
        if small:
            result.notes.append(
                f"{name}: {small} group(s) with fewer than {minimum} answers; their rates are unreliable"
            )
    if "over_time" in tables:
        result.charts.append(_chart())
    return result


def _chart() -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "CSAT over time (Wilson interval)",
        "data": {"name": "over_time"},
        "encoding": {"x": {"field": "period", "type": "temporal"}},
        "layer": [
            {
                "mark": {"type": "area", "opacity": 0.25},
                "encoding": {"y": {"field": "csat_low", "type": "quantitative"}, "y2": {"field": "csat_high"}},
            },
            {"mark": "line", "encoding": {"y": {"field": "csat", "type": "quantitative", "axis": {"format": "%"}}}},
        ],
    }


METHOD = AnalysisMethod(
    "satisfaction", "CSAT, average score and response rate with Wilson intervals.", PARAMETERS, run, check=check
)
