"""crmetrics-nps: the Net Promoter Score as a crmetrics analysis method, registered through the entry point
`crmetrics` -> `nps = "crmetrics_nps"`.

Promoters answer 9-10, passives 7-8, detractors 0-6; NPS = 100 * (promoters - detractors) / responses. NPS is a
0-10 integer scale: answers that are NULL, outside 0-10 or not whole numbers (6.5) are not responses. The work is
one SQL statement per table, built with sqlglot over `AnalysisContext.frame`, so it runs in the database and
honours where, segments and row filters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.dsl.schema import Field, ListOf, Obj, Str
from crmetrics.hookspecs import hookimpl
from crmetrics.model.types import SemanticModel
from crmetrics.result import Result
from sqlglot import exp

__version__ = "0.1.0"

GRAINS = ("day", "week", "month", "quarter", "year")
PARAMETERS = Obj(
    fields={
        "responses": Field(Str(description="The entity with one row per survey answer."), required=True),
        "score": Field(Str(description="The dimension holding the 0-10 answer, e.g. nps_responses.score."), True),
        "by": Field(ListOf(item=Str(), single=True, description="Dimensions to break the NPS down by.")),
        "grain": Field(Str(enum=GRAINS, description="One row per period of the responses' time dimension.")),
    }
)


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _count_if(condition: exp.Expression) -> exp.Expression:
    return exp.Sum(
        this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))], default=exp.Literal.number(0))
    )


def _share(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    """numerator / denominator as a double, NULL for no responses."""
    return exp.Div(
        this=exp.cast(exp.Paren(this=numerator), exp.DataType.Type.DOUBLE),
        expression=exp.Nullif(this=exp.Paren(this=denominator), expression=exp.Literal.number(0)),
    )


def _valid(score: exp.Expression) -> exp.Expression:
    """`score` is a response: not NULL, a whole number (FLOOR(s) = s), from 0 to 10.

    A fractional answer such as 6.5 falls between two categories of a 0-10 integer scale, so it is no response at
    all rather than a passive (the categories' bounds would otherwise put 6.5 and 8.5 there).
    """
    return exp.and_(
        score.copy().is_(exp.null()).not_(),
        exp.EQ(this=exp.Floor(this=score.copy()), expression=score.copy()),
        exp.GTE(this=score.copy(), expression=exp.Literal.number(0)),
        exp.LTE(this=score.copy(), expression=exp.Literal.number(10)),
    )


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """The responses entity exists; `score` is one of its dimensions (or of an entity it joins)."""
    responses = params.get("responses")
    if isinstance(responses, str) and responses not in model.entities:
        return [("responses", f"unknown entity '{responses}'")]
    entity, _, name = str(params.get("score", "")).partition(".")
    if model.dimension(entity, name) is None:
        return [("score", f"unknown dimension '{params.get('score')}' (write entity.dimension)")]
    return []


def _by(params: Mapping[str, Any]) -> list[str]:
    by = params.get("by") or []
    return [by] if isinstance(by, str) else list(by)


def nps_query(ctx: AnalysisContext, grouped: bool) -> exp.Select:
    """Responses, the three categories, their shares and the NPS; per group and period when `grouped`."""
    frame = ctx.frame(ctx.params["responses"])
    groups = {ref: frame.dimension(ref) for ref in _by(ctx.params)} if grouped else {}
    if grouped and "grain" in ctx.params:
        groups["period"] = frame.time(ctx.params["grain"])
    score = frame.dimension(ctx.params["score"])
    rows = frame.select({**groups, "score": score})
    groups_out = {name: _col(name) for name in groups}
    valid = _valid(_col("score"))
    responses = _count_if(valid)
    promoters = _count_if(exp.and_(valid.copy(), exp.GTE(this=_col("score"), expression=exp.Literal.number(9))))
    detractors = _count_if(exp.and_(valid.copy(), exp.LTE(this=_col("score"), expression=exp.Literal.number(6))))
    passives = exp.Sub(this=exp.Sub(this=responses.copy(), expression=promoters.copy()), expression=detractors.copy())
    columns = {
        **groups_out,
        "responses": responses,
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
        "promoter_share": _share(promoters.copy(), responses.copy()),
        "detractor_share": _share(detractors.copy(), responses.copy()),
        "nps": exp.Mul(
            this=exp.Literal.number(100),
            expression=exp.Paren(
                this=_share(exp.Sub(this=promoters.copy(), expression=detractors.copy()), responses.copy())
            ),
        ),
    }
    if not grouped:  # answers that are not responses, for the overall figures
        columns["invalid"] = exp.Sub(this=exp.Count(this=exp.Star()), expression=responses.copy())
    query = exp.Select(expressions=[exp.alias_(v, k, quoted=True) for k, v in columns.items()])
    query = query.from_(exp.Subquery(this=rows, alias=exp.TableAlias(this=exp.to_identifier("answers"))), copy=False)
    if groups_out:
        query = query.group_by(*(c.copy() for c in groups_out.values()), copy=False)
        query = query.order_by(
            *(exp.Ordered(this=c.copy(), nulls_first=False) for c in groups_out.values()), copy=False
        )
    return query


def run(ctx: AnalysisContext) -> AnalysisResult:
    """The `nps` table per group and period, the `overall` table, and the overall NPS as figures."""
    table = ctx.run(nps_query(ctx, grouped=True))
    overall = ctx.run(nps_query(ctx, grouped=False))
    tables = {"nps": table, "overall": Result(overall.columns[:-1], [r[:-1] for r in overall.rows], overall.sql)}
    (row,) = overall.records()
    result = AnalysisResult("nps", ctx.name, "Net Promoter Score", tables=tables)
    result.figures = [
        Figure("nps", "NPS", row["nps"], "score"),
        Figure("responses", "Responses", row["responses"], "integer"),
        Figure("invalid", "Answers missing, outside 0-10 or not whole", row["invalid"], "integer"),
    ]
    x = "period" if "grain" in ctx.params else (_by(ctx.params) or [None])[0]
    if x is not None:
        result.charts = [
            {
                "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                "title": "NPS",
                "data": {"name": "nps"},
                "mark": "line" if x == "period" else "bar",
                "encoding": {
                    "x": {"field": x, "type": "temporal" if x == "period" else "nominal"},
                    "y": {"field": "nps", "type": "quantitative", "scale": {"domain": [-100, 100]}},
                },
            }
        ]
    result.notes = ["Promoters answer 9-10, passives 7-8, detractors 0-6; NPS = % promoters - % detractors."]
    return result


METHOD = AnalysisMethod(
    name="nps",
    description="Net Promoter Score by any dimension and over time, with the number of responses.",
    parameters=PARAMETERS,
    run=run,
    check=check,
)


@hookimpl
def register_analysis_methods(register: Callable[[AnalysisMethod], None]) -> None:
    """Register the `nps` method."""
    register(METHOD)
