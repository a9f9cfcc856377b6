"""Pareto: members ranked by a metric, cumulative share, ABC classes and the share held by the top 20 %.

Members are ranked by the metric descending (RANK(): tied values share the minimum rank). The cumulative share of
a member includes every member tied with it, so tied values always get the same cumulative share and class. A member
is class A when the members ranked strictly above it hold less than the first cut-off (80 %) of the total, B when
they hold less than the second (95 %), else C: the member that crosses a cut-off is in the higher class. The top
share is the sum of the ceil(top * n) largest values over the total (which values are tied does not change it).
Members with a NULL value are not ranked. When the total is 0 the shares are NULL and every member is class C.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.sqlkit import (
    alias,
    case,
    check_metrics,
    col,
    floor_div,
    member_checks,
    member_spec,
    metric_query,
    num,
    ordered,
    running_total,
    safe_div,
    select,
    tbl,
    text,
    union_all,
    window,
    with_ctes,
)
from crmetrics.dsl.schema import NAME_PATTERN, Field, ListOf, Num, Obj, Str
from crmetrics.model.types import SemanticModel

CLASSES = ("A", "B", "C")

PARAMETERS = Obj(
    fields={
        "metric": Field(Str(description="The metric members are ranked by, e.g. revenue."), required=True),
        "entity": Field(Str(pattern=NAME_PATTERN, description="One member per key of this entity.")),
        "by": Field(Str(description="One member per value of this dimension.")),
        "cutoffs": Field(
            ListOf(item=Num(minimum=0, maximum=1), min_items=2, max_items=2, description="A/B and B/C (0.8, 0.95).")
        ),
        "top": Field(Num(minimum=0, maximum=1, description="The top share of members whose value is summed (0.2).")),
    },
    one_of=("entity", "by"),
)


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """The metric and the member entity or dimension exist; cut-offs ascend."""
    problems = check_metrics(model, params, "metric") + member_checks(model, params)
    cutoffs = params.get("cutoffs")
    if isinstance(cutoffs, list) and len(cutoffs) == 2 and not cutoffs[0] < cutoffs[1]:
        problems.append(("cutoffs", "the A/B cut-off must be below the B/C cut-off"))
    return problems


def _ctes(ctx: AnalysisContext) -> tuple[dict[str, exp.Expression], str]:
    params = ctx.params
    model, ref, member, drop_null = member_spec(ctx.model, params)
    metric = params["metric"]
    metrics = metric_query(model, [metric], [ref], ctx.where, ctx.segments, ctx.context)
    ranked = select({"member": col(ref), "value": col(metric)}, "metrics")
    keep = [col(metric).is_(exp.null()).not_()]
    if drop_null:
        keep.append(col(ref).is_(exp.null()).not_())
    ranked = ranked.where(*keep, copy=False)
    descending = ordered(col("value"), desc=True)
    stats = select(
        {
            "member": col("member"),
            "value": col("value"),
            "rank": window(exp.Anonymous(this="RANK"), [descending.copy()]),
            "running": running_total(col("value"), descending.copy()),
            "tied": window(exp.Sum(this=col("value")), partition=[col("value")]),
            "total": window(exp.Sum(this=col("value"))),
            "n": window(exp.Count(this=exp.Star())),
            # only decides which of several tied values is counted in the top share, whose sum it cannot change
            "position": window(exp.Anonymous(this="ROW_NUMBER"), [descending.copy(), ordered(col("member"))]),
        },
        "ranked",
    )
    first, second = params.get("cutoffs", [0.8, 0.95])
    before = safe_div(exp.Sub(this=col("running"), expression=col("tied")), col("total"))
    klass = case(
        [
            (exp.LT(this=before, expression=num(first)), text("A")),
            (exp.LT(this=before.copy(), expression=num(second)), text("B")),
        ],
        text("C"),
    )
    items = select(
        {
            "member": col("member"),
            "value": col("value"),
            "rank": col("rank"),
            "share": safe_div(col("value"), col("total")),
            "cumulative_share": safe_div(col("running"), col("total")),
            "class": klass,
            "position": col("position"),
            "total": col("total"),
            "n": col("n"),
        },
        "stats",
    )
    return {"metrics": metrics, "ranked": ranked, "stats": stats, "items": items}, member


def items_query(ctx: AnalysisContext) -> exp.Select:
    """One row per ranked member: member, value (under the metric's name), rank, share, cumulative share, class."""
    ctes, member = _ctes(ctx)
    columns = {
        member: col("member"),
        ctx.params["metric"]: col("value"),
        **{c: col(c) for c in ("rank", "share", "cumulative_share", "class")},
    }
    query = select(columns, "items").order_by(ordered(col("rank")), ordered(col("member")), copy=False)
    return with_ctes(query, ctes)


def classes_query(ctx: AnalysisContext) -> exp.Select:
    """One row per class (empty ones too): members, their share of members, value and value share."""
    ctes, _ = _ctes(ctx)
    listed = [exp.select(alias(text(c), "class")) for c in CLASSES]
    ctes["listed"] = exp.select("*").from_(
        exp.Subquery(this=union_all(listed), alias=exp.TableAlias(this=exp.to_identifier("l")))
    )
    ctes["grouped"] = select(
        {"class": col("class"), "members": exp.Count(this=exp.Star()), "value": exp.Sum(this=col("value"))}, "items"
    ).group_by(col("class"), copy=False)
    ctes["totals"] = select({"n": exp.Count(this=exp.Star()), "total": exp.Sum(this=col("value"))}, "items")
    members = exp.func("COALESCE", col("members", "grouped"), num(0))
    value = exp.func("COALESCE", col("value", "grouped"), num(0))
    query = select(
        {
            "class": col("class", "listed"),
            "members": members,
            "member_share": safe_div(members.copy(), col("n", "totals")),
            "value": value,
            "value_share": safe_div(value.copy(), col("total", "totals")),
        },
        "listed",
    )
    on = exp.EQ(this=col("class", "grouped"), expression=col("class", "listed"))
    query = query.join(tbl("grouped"), on=on, join_type="left", copy=False).join(
        tbl("totals"), join_type="cross", copy=False
    )
    return with_ctes(query.order_by(ordered(col("class", "listed")), copy=False), ctes)


def top_query(ctx: AnalysisContext) -> exp.Select:
    """The share of the total held by the top ceil(top * n) members, in integer arithmetic (no 0.2 * 15 = 3.0000001)."""
    ctes, _ = _ctes(ctx)
    top = Fraction(str(ctx.params.get("top", 0.2))).limit_denominator(1_000_000)
    # ceil(n * p / q) = (n * p + q - 1) div q
    count = floor_div(
        exp.Add(this=exp.Mul(this=col("n"), expression=num(top.numerator)), expression=num(top.denominator - 1)),
        num(top.denominator),
    )
    in_top = exp.LTE(this=col("position"), expression=count)
    held = exp.Sum(this=case([(in_top, col("value"))], num(0)))
    query = select(
        {"members": exp.Count(this=exp.Star()), "top_share": safe_div(held, exp.Sum(this=col("value")))}, "items"
    )
    return with_ctes(query, ctes)


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Ranked items, the ABC class table, the share held by the top members and a Pareto chart."""
    metric = ctx.params["metric"]
    items = ctx.run(items_query(ctx))
    classes = ctx.run(classes_query(ctx))
    ((members, top_share),) = ctx.run(top_query(ctx)).rows
    top = ctx.params.get("top", 0.2)
    result = AnalysisResult("pareto", ctx.name, f"Pareto analysis of {metric}")
    result.tables = {"items": items, "classes": classes}
    result.figures = [
        Figure("members", "Ranked members", members, "integer"),
        Figure("top_share", f"Share held by the top {top:.0%}", top_share, "percent"),
    ]
    result.charts = [
        {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": f"Cumulative share of {metric}",
            "data": {"name": "items"},
            "mark": "line",
            "encoding": {
                "x": {"field": "rank", "type": "quantitative"},
                "y": {"field": "cumulative_share", "type": "quantitative", "axis": {"format": "%"}},
            },
        }
    ]
    first, second = ctx.params.get("cutoffs", [0.8, 0.95])
    result.notes = [f"Class A holds the first {first:.0%} of the total, B up to {second:.0%}; ties share a class."]
    return result


def output_columns(params: Mapping[str, Any]) -> dict[str, str]:
    return {"class": "categorical", "rank": "number", "cumulative_share": "number"}


def entity_outputs(ctx: AnalysisContext) -> tuple[str, exp.Select, Sequence[str]]:
    """Per entity (with `entity:` only): its ABC class, rank and cumulative share."""
    ctes, member = _ctes(ctx)
    columns = {member: col("member"), **{c: col(c) for c in ("class", "rank", "cumulative_share")}}
    return ctx.params["entity"], with_ctes(select(columns, "items"), ctes), ["class", "rank", "cumulative_share"]


METHOD = AnalysisMethod(
    name="pareto",
    description="Members ranked by a metric: cumulative share, ABC classes, the share of the top 20 %.",
    parameters=PARAMETERS,
    run=run,
    entity_outputs=entity_outputs,
    output_columns=output_columns,
    check=check,
)
