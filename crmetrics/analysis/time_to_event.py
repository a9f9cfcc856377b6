"""Time to event: the distribution of the time between two timestamps of a record.

Lead created -> converted (lead-conversion time), opportunity created -> closed (sales-cycle length). Every record
with a start time counts; those without the second timestamp are *open* (counted, never dropped) and do not enter
the duration statistics. Records without a start time cannot be measured and are left out.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.labels import ref_label
from crmetrics.analysis.lifecycle_sql import (
    as_list,
    breakdown,
    coalesce_zero,
    col,
    days_between,
    entity_param,
    flag,
    num,
    order_by,
    percentile,
    raw_time,
    reference_checker,
    safe_div,
    select,
    with_ctes,
)
from crmetrics.compiler.scope import truncate
from crmetrics.dsl.schema import NAME_PATTERN, Field, ListOf, Obj, Str

UNITS = {"days": 1.0, "hours": 24.0, "weeks": 1 / 7}
STATISTICS = ["records", "reached", "open", "open_rate", "mean", "median", "p75", "p90"]

PARAMETERS = Obj(
    description="Distribution of the time between two timestamps, open records counted.",
    fields={
        "entity": Field(Str(pattern=NAME_PATTERN, description="The entity whose rows are measured."), required=True),
        "start": Field(Str(description="entity.time_dimension where the clock starts."), required=True),
        "end": Field(Str(description="entity.time_dimension where it stops; NULL means still open."), required=True),
        "by": Field(ListOf(item=Str(), single=True, description="Dimension references to break down by.")),
        "cohort": Field(Str(enum=("week", "month", "quarter", "year"), description="Group by the start period.")),
        "unit": Field(Str(enum=tuple(UNITS), description="Unit of the durations (days).")),
    },
)


def build(ctx: AnalysisContext, grouped: bool = True) -> tuple[exp.Select, list[str]]:
    """One row per group with the counts and the duration statistics (`grouped=False`: one overall row)."""
    entity = entity_param(ctx, "entity")
    frame = ctx.frame(entity)
    start, end = raw_time(frame, ctx.params["start"]), raw_time(frame, ctx.params["end"])
    groups = breakdown(frame, as_list(ctx.params.get("by"))) if grouped else {}
    if grouped and ctx.params.get("cohort"):
        groups["cohort"] = truncate(start.copy(), ctx.params["cohort"])
    scale = UNITS[ctx.params.get("unit", "days")]
    duration = days_between(start.copy(), end.copy())
    rows = frame.select(
        {**groups, "start_at": start, "end_at": end, "d": exp.Mul(this=duration, expression=num(scale))}
    )
    rows = rows.where(start.copy().is_(exp.null()).not_(), copy=False)
    names = list(groups)
    reached = coalesce_zero(exp.Sum(this=flag(col("end_at").is_(exp.null()).not_())))
    stats = {
        **{n: col(n) for n in names},
        "records": exp.Count(this=exp.Star()),
        "reached": reached,
        "open": coalesce_zero(exp.Sum(this=flag(col("end_at").is_(exp.null())))),
        "open_rate": safe_div(exp.Sum(this=flag(col("end_at").is_(exp.null()))), exp.Count(this=exp.Star())),
        "mean": exp.Avg(this=col("d")),
        "median": percentile(col("d"), 0.5),
        "p75": percentile(col("d"), 0.75),
        "p90": percentile(col("d"), 0.9),
    }
    final = select(stats, "measured")
    if names:
        final = final.group_by(*(col(n) for n in names), copy=False)
    return with_ctes(order_by(final, names), {"measured": rows}), names


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Run the time-to-event analysis."""
    tree, names = build(ctx)
    table = ctx.run(tree, [*names, *STATISTICS])
    overall_tree, _ = build(ctx, grouped=False)
    overall = ctx.run(overall_tree, STATISTICS).records()
    total: dict[str, Any] = overall[0] if overall else {}
    unit = ctx.params.get("unit", "days")
    start, end = ref_label(ctx.model, ctx.params["start"]), ref_label(ctx.model, ctx.params["end"])
    notes = [f"Durations are in {unit}. Records without {end.lower()} are still open and not in the statistics."]
    return AnalysisResult(
        method="time_to_event",
        name=ctx.name,
        title=f"Time from {start.lower()} to {end.lower()}",
        tables={"time_to_event": table},
        figures=[
            Figure("records", "Records", total.get("records"), "integer"),
            Figure("open", "Still open", total.get("open"), "integer"),
            Figure("median", f"Median ({unit})", total.get("median")),
            Figure("p90", f"90th percentile ({unit})", total.get("p90")),
        ],
        charts=[_chart(names, ref_label(ctx.model, names[0]), unit)] if names else [],
        notes=notes,
    )


def _chart(names: list[str], label: str, unit: str) -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": f"Median time by {label.lower()}",
        "data": {"name": "time_to_event"},
        "mark": "bar",
        "encoding": {
            "x": {"field": names[0], "type": "ordinal", "title": label},
            "y": {"field": "median", "type": "quantitative", "title": f"Median ({unit})"},
        },
    }


METHOD = AnalysisMethod(
    name="time_to_event",
    description="Lead-conversion time, sales-cycle length: count, mean, median, p75, p90 with open records counted.",
    parameters=PARAMETERS,
    run=run,
    check=reference_checker({"entity": "entity", "start": "dimension", "end": "dimension", "by": "dimension"}),
)
