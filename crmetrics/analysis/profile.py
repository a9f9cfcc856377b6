"""Profile (segmentation): metrics by one or more dimensions, with share of total and an index against the overall.

The metrics are computed by the ordinary compiler (no fan-out, where/segments/row filters honoured), once grouped
by the dimensions and once overall, and the two are combined in one SELECT:

- `<metric>_share` = group value / overall value, for additive metrics (sums and counts);
- `<metric>_index` = 100 * group value / overall value for other metrics (ratios, averages: 120 means 20 % above
  the overall value); for additive metrics, 100 * share / the `base` metric's share when `base` is given (120 means
  the group holds 20 % more of the metric than of the base, e.g. of revenue than of customers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.labels import join_labels, metric_label, ref_label
from crmetrics.analysis.sqlkit import (
    check_dimensions,
    check_metrics,
    col,
    metric_query,
    num,
    ordered,
    safe_div,
    select,
    tbl,
    with_ctes,
)
from crmetrics.dsl.schema import Field, ListOf, Obj, Str
from crmetrics.model.types import ADDITIVE, SemanticModel

PARAMETERS = Obj(
    fields={
        "metrics": Field(ListOf(item=Str(), single=True, min_items=1, description="Metrics to profile."), True),
        "by": Field(ListOf(item=Str(), single=True, min_items=1, description="Dimensions to profile by."), True),
        "base": Field(Str(description="An additive metric the shares are indexed against, e.g. customers.")),
    }
)


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def additive(model: SemanticModel, name: str) -> bool:
    """A metric that adds up across groups: a simple metric over a sum or count measure."""
    metric = model.metrics[name]
    measure = model.measure(metric.measure) if metric.kind == "simple" and metric.measure else None
    return measure is not None and measure.agg in ADDITIVE


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Metrics and dimensions exist; `base` is additive."""
    problems = check_metrics(model, params, "metrics", "base") + check_dimensions(model, params, "by")
    base = params.get("base")
    if isinstance(base, str) and base in model.metrics and not additive(model, base):
        problems.append(("base", f"base metric '{base}' must be a sum or a count, so that it has shares"))
    return problems


def _metrics(params: Mapping[str, Any]) -> list[str]:
    names = _names(params["metrics"])
    base = params.get("base")
    return [*names, base] if base and base not in names else names


def _index(value: exp.Expression, reference: exp.Expression) -> exp.Expression:
    """100 * value / reference (NULL when the reference is 0)."""
    return exp.Mul(this=num(100), expression=exp.Paren(this=safe_div(value, reference)))


def profile_query(ctx: AnalysisContext) -> exp.Select:
    """One row per group: the dimensions, then per metric its value, share (additive) and index."""
    by, metrics, base = _names(ctx.params["by"]), _metrics(ctx.params), ctx.params.get("base")
    common = (ctx.where, ctx.segments, ctx.context)
    ctes = {
        "grouped": metric_query(ctx.model, metrics, by, *common),
        "overall": metric_query(ctx.model, metrics, [], *common),
    }
    columns: dict[str, exp.Expression] = {ref: col(ref, "grouped") for ref in by}
    for name in metrics:
        value, overall = col(name, "grouped"), col(name, "overall")
        columns[name] = value
        if additive(ctx.model, name):
            columns[f"{name}_share"] = safe_div(value.copy(), overall.copy())
            if base and name != base:  # the base against itself would be 100 on every row
                base_share = safe_div(col(base, "grouped"), col(base, "overall"))
                columns[f"{name}_index"] = _index(columns[f"{name}_share"].copy(), base_share)
        else:
            columns[f"{name}_index"] = _index(value.copy(), overall.copy())
    query = select(columns, "grouped").join(tbl("overall"), join_type="cross", copy=False)
    query = query.order_by(*(ordered(col(ref, "grouped")) for ref in by), copy=False)
    return with_ctes(query, ctes)


def run(ctx: AnalysisContext) -> AnalysisResult:
    """The profile table, the overall values as a table and as figures, and a bar chart of the first index."""
    by, metrics = _names(ctx.params["by"]), _metrics(ctx.params)
    common = (ctx.where, ctx.segments, ctx.context)
    overall = ctx.run(metric_query(ctx.model, metrics, [], *common))
    profile = ctx.run(profile_query(ctx))
    labels = [ref_label(ctx.model, ref) for ref in by]
    result = AnalysisResult("profile", ctx.name, f"Profile by {join_labels(labels)}")
    result.tables = {"profile": profile, "overall": overall}
    values = overall.rows[0] if overall.rows else [None] * len(metrics)
    result.figures = [
        Figure(name, metric_label(ctx.model, name), value, ctx.model.metrics[name].format)
        for name, value in zip(metrics, values, strict=True)
    ]
    result.charts = [_chart(ctx.model, profile.columns, by, labels)]
    result.notes = [
        "Shares are of the overall value (sums and counts); an index of 100 is the overall level"
        + (f", indexed against the share of {ctx.params['base']}." if ctx.params.get("base") else ".")
    ]
    return result


def _chart(model: SemanticModel, columns: list[str], by: list[str], labels: list[str]) -> dict[str, Any]:
    """The first index (else share): bars by the first dimension, or a heatmap of the first two.

    Bars of every group of a second dimension at the same x would be drawn on top of each other (and stacked
    shares of one region would add up to that region's share, not to one), so two dimensions get a heatmap.
    """
    field = next((c for c in columns if c.endswith("_index")), None) or next(c for c in columns if c.endswith("_share"))
    metric = metric_label(model, field.rpartition("_")[0])
    title = f"{metric} index" if field.endswith("_index") else f"Share of {metric.lower()}"
    value: dict[str, Any] = {"field": field, "type": "quantitative", "title": title}
    if field.endswith("_share"):
        value["axis"] = value["legend"] = {"format": "%"}
    spec: dict[str, Any] = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": f"{title} by {join_labels(labels[:2])}",
        "data": {"name": "profile"},
    }
    x = {"field": by[0], "type": "nominal", "sort": None, "title": labels[0]}
    if len(by) == 1:
        return {**spec, "mark": "bar", "encoding": {"x": x, "y": value}}
    y = {"field": by[1], "type": "nominal", "sort": None, "title": labels[1]}
    return {**spec, "mark": "rect", "encoding": {"x": x, "y": y, "color": value}}


METHOD = AnalysisMethod(
    name="profile",
    description="Metrics by demographic, geographic or behavioural dimensions, with shares and indices.",
    parameters=PARAMETERS,
    run=run,
    check=check,
)
