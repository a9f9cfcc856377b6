"""Quadrant: two metrics per entity (or per dimension value), split at the median, the mean or given thresholds.

A member is "high" on an axis when its value is at or above the split (so tied values always fall on the same side).
Members with a NULL value on either axis are not placed. The default names come from the customer value matrix of
purchase frequency (x) and average spend (y): Best (high, high), Spenders (low x, high y), Frequent (high x, low y)
and Uncertain (low, low).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.labels import metric_label
from crmetrics.analysis.sqlkit import (
    alias,
    case,
    check_metrics,
    col,
    member_checks,
    member_spec,
    metric_query,
    num,
    ordered,
    safe_div,
    select,
    tbl,
    text,
    union_all,
    with_ctes,
)
from crmetrics.dsl.schema import NAME_PATTERN, Field, Num, Obj, Str
from crmetrics.model.types import SemanticModel

CORNERS = ("high_x_high_y", "low_x_high_y", "high_x_low_y", "low_x_low_y")
DEFAULT_NAMES = {
    "high_x_high_y": "Best",
    "low_x_high_y": "Spenders",
    "high_x_low_y": "Frequent",
    "low_x_low_y": "Uncertain",
}

PARAMETERS = Obj(
    fields={
        "x": Field(Str(description="The metric on the horizontal axis, e.g. purchase frequency."), required=True),
        "y": Field(Str(description="The metric on the vertical axis, e.g. average spend."), required=True),
        "entity": Field(Str(pattern=NAME_PATTERN, description="One member per key of this entity.")),
        "by": Field(Str(description="One member per value of this dimension.")),
        "split": Field(Str(enum=("median", "mean"), description="Where each axis is split (median).")),
        "thresholds": Field(Obj(description="Fixed split values per axis.", fields={a: Field(Num()) for a in "xy"})),
        "names": Field(Obj(description="Quadrant names.", fields={c: Field(Str()) for c in CORNERS})),
    },
    one_of=("entity", "by"),
)


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """The metrics and the member entity or dimension exist; the two axes differ."""
    problems = check_metrics(model, params, "x", "y") + member_checks(model, params)
    if params.get("x") == params.get("y"):
        problems.append(("y", "x and y must be two different metrics"))
    names = {**DEFAULT_NAMES, **(params.get("names") or {})}
    if len(set(names.values())) != len(CORNERS):
        problems.append(("names", "the four quadrants need four different names"))
    return problems


def names(params: Mapping[str, Any]) -> dict[str, str]:
    return {**DEFAULT_NAMES, **(params.get("names") or {})}


def _split(params: Mapping[str, Any], axis: str) -> exp.Expression:
    fixed = (params.get("thresholds") or {}).get(axis)
    if fixed is not None:
        return num(fixed)
    function = exp.Avg if params.get("split", "median") == "mean" else exp.Median
    return function(this=col(axis))


def _ctes(ctx: AnalysisContext) -> tuple[dict[str, exp.Expression], str]:
    params = ctx.params
    model, ref, member, drop_null = member_spec(ctx.model, params)
    metrics = metric_query(model, [params["x"], params["y"]], [ref], ctx.where, ctx.segments, ctx.context)
    placed = select({"member": col(ref), "x": col(params["x"]), "y": col(params["y"])}, "metrics")
    # the metrics' own columns: WHERE cannot see the SELECT's aliases "x" and "y" on PostgreSQL or Spark
    keep = [col(params["x"]).is_(exp.null()).not_(), col(params["y"]).is_(exp.null()).not_()]
    if drop_null:
        keep.append(col(ref).is_(exp.null()).not_())
    placed = placed.where(*keep, copy=False)
    splits = exp.select(alias(_split(params, "x"), "x_split"), alias(_split(params, "y"), "y_split"))
    if any(a not in (params.get("thresholds") or {}) for a in "xy"):  # an aggregate: one row, over the members
        splits = splits.from_(tbl("placed"), copy=False)
    label = names(params)
    high_x = exp.GTE(this=col("x"), expression=col("x_split", "splits"))
    high_y = exp.GTE(this=col("y"), expression=col("y_split", "splits"))
    quadrant = case(
        [
            (exp.and_(high_x, high_y), text(label["high_x_high_y"])),
            (exp.and_(high_x.copy().not_(), high_y.copy()), text(label["low_x_high_y"])),
            (exp.and_(high_x.copy(), high_y.copy().not_()), text(label["high_x_low_y"])),
        ],
        text(label["low_x_low_y"]),
    )
    assigned = select({"member": col("member"), "x": col("x"), "y": col("y"), "quadrant": quadrant}, "placed")
    assigned = assigned.join(tbl("splits"), join_type="cross", copy=False)
    return {"metrics": metrics, "placed": placed, "splits": splits, "assigned": assigned}, member


def members_query(ctx: AnalysisContext, order: bool = True) -> exp.Select:
    """One row per placed member: the member, x and y under their metric names, and its quadrant."""
    ctes, member = _ctes(ctx)
    columns = {member: col("member"), ctx.params["x"]: col("x"), ctx.params["y"]: col("y"), "quadrant": col("quadrant")}
    query = with_ctes(select(columns, "assigned"), ctes)
    return query.order_by(ordered(col("member")), copy=False) if order else query


def quadrants_query(ctx: AnalysisContext) -> exp.Select:
    """One row per quadrant (empty ones too): members, share of the placed members, mean x and mean y."""
    ctes, _ = _ctes(ctx)
    label = names(ctx.params)
    listed = [exp.select(alias(text(label[c]), "quadrant"), alias(num(i), "position")) for i, c in enumerate(CORNERS)]
    ctes["listed"] = exp.select("*").from_(
        exp.Subquery(this=union_all(listed), alias=exp.TableAlias(this=exp.to_identifier("l")))
    )
    ctes["grouped"] = select(
        {
            "quadrant": col("quadrant"),
            "members": exp.Count(this=exp.Star()),
            "mean_x": exp.Avg(this=col("x")),
            "mean_y": exp.Avg(this=col("y")),
        },
        "assigned",
    ).group_by(col("quadrant"), copy=False)
    ctes["total"] = select({"n": exp.Count(this=exp.Star())}, "assigned")
    count = exp.func("COALESCE", col("members", "grouped"), num(0))
    query = select(
        {
            "quadrant": col("quadrant", "listed"),
            "members": count,
            "share": safe_div(count.copy(), col("n", "total")),
            "mean_x": col("mean_x", "grouped"),
            "mean_y": col("mean_y", "grouped"),
        },
        "listed",
    )
    on = exp.EQ(this=col("quadrant", "grouped"), expression=col("quadrant", "listed"))
    query = query.join(tbl("grouped"), on=on, join_type="left", copy=False).join(
        tbl("total"), join_type="cross", copy=False
    )
    return with_ctes(query.order_by(ordered(col("position", "listed")), copy=False), ctes)


def splits_query(ctx: AnalysisContext) -> exp.Select:
    ctes, _ = _ctes(ctx)
    return with_ctes(select({"x_split": col("x_split"), "y_split": col("y_split")}, "splits"), ctes)


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Members with their quadrant, the quadrant table, the split values and a scatter chart with the split lines."""
    x, y = ctx.params["x"], ctx.params["y"]
    members = ctx.run(members_query(ctx))
    quadrants = ctx.run(quadrants_query(ctx))
    ((x_split, y_split),) = ctx.run(splits_query(ctx)).rows
    xl, yl = metric_label(ctx.model, x), metric_label(ctx.model, y)  # what a report reader sees
    title = f"{yl} against {xl[:1].lower() + xl[1:] if not xl[:2].isupper() else xl}"
    result = AnalysisResult("quadrant", ctx.name, title)
    result.tables = {"members": members, "quadrants": quadrants}
    result.figures = [Figure("x_split", f"{xl} split", x_split), Figure("y_split", f"{yl} split", y_split)]
    result.charts = [
        {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": title,
            "data": {"name": "members"},
            "layer": [
                {
                    "mark": "point",
                    "encoding": {
                        "x": {"field": x, "type": "quantitative", "title": xl},
                        "y": {"field": y, "type": "quantitative", "title": yl},
                        "color": {"field": "quadrant", "type": "nominal"},
                    },
                },
                {"mark": "rule", "encoding": {"x": {"datum": x_split}}},
                {"mark": "rule", "encoding": {"y": {"datum": y_split}}},
            ],
        }
    ]
    how = "the given thresholds" if ctx.params.get("thresholds") else f"the {ctx.params.get('split', 'median')}"
    result.notes = [
        f"Each axis is split at {how}; a value at the split counts as high. Members without both values are not placed."
    ]
    return result


def output_columns(params: Mapping[str, Any]) -> dict[str, str]:
    return {"quadrant": "categorical"}


def entity_outputs(ctx: AnalysisContext) -> tuple[str, exp.Select, Sequence[str]]:
    """Per entity (with `entity:` only): its quadrant, usable as `analysis_name.quadrant`."""
    ctes, member = _ctes(ctx)
    query = with_ctes(select({member: col("member"), "quadrant": col("quadrant")}, "assigned"), ctes)
    return ctx.params["entity"], query, ["quadrant"]


METHOD = AnalysisMethod(
    name="quadrant",
    description="Two metrics per entity or dimension value, split into four named quadrants.",
    parameters=PARAMETERS,
    run=run,
    entity_outputs=entity_outputs,
    output_columns=output_columns,
    check=check,
)
