"""Cohort retention: how many members of each acquisition cohort are active k periods later.

An entity's cohort is the period of its first event (or of its declared acquisition date, `cohort_by` naming a time
dimension of the entity); period k is the number of whole grain steps from the cohort period to an event's period.
The matrix is computed in one SQL statement: events are reduced to one row per (member, period), joined to the
member's cohort and counted per (cohort, period). Marker rows (period -1) carry each cohort's size, so cohorts and
sizes survive even where an optional `cohort_by` group is NULL (GROUP BY and PARTITION BY keep NULLs together on
every database, where an equality join would drop them). Python only fills the periods in which a cohort had no
activity with zeros.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.lifecycle_sql import (
    col,
    entity_param,
    member_key,
    null_number,
    num,
    order_by,
    period_index,
    reference_checker,
    running_sum,
    safe_div,
    select,
    table_as,
    with_ctes,
)
from crmetrics.compiler.frames import Frame
from crmetrics.compiler.scope import truncate
from crmetrics.dsl.schema import NAME_PATTERN, Field, Num, Obj, Str
from crmetrics.errors import AnalysisError, QueryError
from crmetrics.model.references import RefSyntaxError, parse_ref
from crmetrics.model.types import ADDITIVE
from crmetrics.result import Result

COLUMNS = ["cohort", "period", "customers", "cohort_size", "retention_rate"]
MEASURE_COLUMNS = ["measure", "cumulative_per_member"]

PARAMETERS = Obj(
    description="Cohort retention matrix.",
    fields={
        "entity": Field(Str(pattern=NAME_PATTERN, description="The entity whose members form cohorts."), required=True),
        "events": Field(Str(pattern=NAME_PATTERN, description="The entity whose rows are activity."), required=True),
        "grain": Field(Str(enum=("week", "month", "quarter"), description="Cohort and period grain (month).")),
        "cohort_by": Field(
            Str(
                description="entity.dimension: a time dimension is the acquisition date; any other dimension "
                "(e.g. acquisition channel) splits each cohort into groups."
            )
        ),
        "measure": Field(Str(description="events.measure (sum or count) per cohort period, with LTV curves.")),
        "periods": Field(Num(integer=True, minimum=1, description="Show periods 0 .. periods-1 only.")),
        "time": Field(Str(description="Time dimension of the events (default: the events entity's `time`).")),
    },
)


def _cohort_by(ctx: AnalysisContext, entity: str) -> tuple[str | None, bool]:
    """The `cohort_by` reference and whether it is an acquisition date (a time dimension)."""
    text = ctx.params.get("cohort_by")
    if text is None:
        return None, False
    try:
        ref = parse_ref(text)
    except RefSyntaxError as error:
        raise QueryError(str(error)) from None
    if ref.entity != entity:
        raise AnalysisError(f"analysis '{ctx.name}': cohort_by must be a dimension of {entity}, not '{text}'")
    dim = ctx.model.dimension(entity, ref.name)
    return text, bool(dim is not None and dim.is_time)


def build(ctx: AnalysisContext) -> tuple[exp.Select, str | None]:
    """The retention SELECT (sparse: only periods with activity, plus one size row per cohort at period -1)."""
    entity, events = entity_param(ctx, "entity"), entity_param(ctx, "events")
    grain = ctx.params.get("grain", "month")
    by, acquisition = _cohort_by(ctx, entity)
    frame = ctx.frame(events)
    key = member_key(frame, entity)
    when = frame.dimension(ctx.params["time"]) if ctx.params.get("time") else frame.time()
    period = truncate(when, grain)
    measure = ctx.params.get("measure")
    ev: dict[str, exp.Expression] = {"k": key, "p": period}
    if measure is not None:
        definition = ctx.model.measure(measure)
        if definition is not None and definition.agg not in ADDITIVE:
            raise AnalysisError(f"analysis '{ctx.name}': measure {measure} must be a sum or a count")
        ev["m"] = frame.measure_value(measure)
    events_sql = frame.select(ev).where(key.copy().is_(exp.null()).not_(), when.copy().is_(exp.null()).not_())
    # the period number is computed once per (member, period), not per joined row
    act_cols: dict[str, exp.Expression] = {"k": col("k"), "p": col("p"), "pi": period_index(col("p"), grain)}
    if measure is not None:
        act_cols["m"] = exp.Sum(this=col("m"))
    act = select(act_cols, "ev").group_by(col("k"), col("p"), copy=False)

    group: list[str] = []
    extra: dict[str, exp.Expression] = {}  # the CTEs that attach a grouping dimension to the members
    if acquisition:
        members_frame = ctx.frame(entity)
        acquired = members_frame.dimension(ctx.params["cohort_by"])
        own_key = members_frame.key()
        start = truncate(acquired, grain)
        members = members_frame.select({"k": own_key, "cohort": start, "ci": period_index(start, grain)}).where(
            own_key.copy().is_(exp.null()).not_(), acquired.copy().is_(exp.null()).not_()
        )
    else:
        first_cols = {"k": col("k"), "cohort": exp.Min(this=col("p")), "ci": exp.Min(this=col("pi"))}
        members = select(first_cols, "act").group_by(col("k"), copy=False)
        if by is not None:
            group = ["g"]
            # the grouping dimension is read without the query's filters (they apply to events) but with RLS
            lookup_frame = Frame(ctx.model, entity, None, (), ctx.context)
            grouping = lookup_frame.dimension(ctx.params["cohort_by"])
            lookup = lookup_frame.select({"k": lookup_frame.key(), "g": grouping})
            extra = {"lookup": lookup, "first": members}
            members = select(
                {"k": col("k", "f"), "cohort": col("cohort", "f"), "ci": col("ci", "f"), "g": col("g", "l")},
                table_as("first", "f"),
            )
            members = members.join(
                table_as("lookup", "l"),
                on=exp.EQ(this=col("k", "f"), expression=col("k", "l")),
                join_type="left",
                copy=False,
            )

    step = exp.Sub(this=col("pi", "a"), expression=col("ci", "m"))
    active_cols: dict[str, exp.Expression] = {
        "cohort": col("cohort", "m"),
        **{g: col(g, "m") for g in group},
        "period": step,
        "active": num(1),
        "m": col("m", "a") if measure is not None else null_number(),
    }
    active = (
        select(active_cols, table_as("act", "a"))
        .join(
            table_as("members", "m"),
            on=exp.EQ(this=col("k", "a"), expression=col("k", "m")),
            copy=False,
        )
        .where(exp.GTE(this=col("pi", "a"), expression=col("ci", "m")), copy=False)
    )
    if ctx.params.get("periods") is not None:
        active = active.where(exp.LT(this=step.copy(), expression=num(ctx.params["periods"])), copy=False)
    sizes = select(
        {
            "cohort": col("cohort"),
            **{g: col(g) for g in group},
            "period": num(-1),
            "active": num(0),
            "m": null_number(),
        },
        "members",
    )
    rows = exp.union(active, sizes, distinct=False)

    parts = ["cohort", *group]
    grid_cols: dict[str, exp.Expression] = {
        **{p: col(p) for p in parts},
        "period": col("period"),
        "customers": exp.Sum(this=col("active")),
        "n": exp.Count(this=exp.Star()),
        "measure": exp.Sum(this=col("m")),
    }
    grid = select(grid_cols, "cohort_rows").group_by(*(col(c) for c in [*parts, "period"]), copy=False)
    size = exp.Window(
        this=exp.Max(this=exp.Case(ifs=[exp.If(this=exp.EQ(this=col("period"), expression=num(-1)), true=col("n"))])),
        partition_by=[col(p) for p in parts],
    )
    last = period_index(select({"last": exp.Max(this=col("p"))}, "act").subquery(), grain)
    final_cols: dict[str, exp.Expression] = {
        "cohort": col("cohort"),
        **{g: col(g) for g in group},
        "period": col("period"),
        "customers": col("customers"),
        "cohort_size": size,
        "retention_rate": safe_div(col("customers"), size.copy()),
        "measure": col("measure"),
        "cumulative_per_member": safe_div(running_sum(col("measure"), parts, "period"), size.copy()),
        "last_period": exp.Sub(this=last, expression=period_index(col("cohort"), grain)),
    }
    final = order_by(select(final_cols, "grid"), [*parts, "period"])
    ctes = {"ev": events_sql, "act": act}
    ctes.update(extra)
    ctes.update({"members": members, "cohort_rows": rows, "grid": grid})
    return with_ctes(final, ctes), by if group else None


def fill(rows: list[tuple], group_name: str | None, periods: int | None, with_measure: bool) -> Result:
    """Dense matrix: every period from 0 to the last observed one, zeros where a cohort had no activity."""
    has_group = group_name is not None
    out: list[tuple] = []
    seen: dict[tuple, dict[int, tuple]] = {}
    sizes: dict[tuple, tuple[int, int]] = {}
    for row in rows:
        cohort, *rest = row
        group = rest[0] if has_group else None
        period, customers, size, rate, measure, cumulative, last = rest[1:] if has_group else rest
        ident = (cohort, group)
        sizes[ident] = (size, last)
        if period >= 0:
            seen.setdefault(ident, {})[period] = (customers, rate, measure, cumulative)
    for (cohort, group), (size, last) in sizes.items():
        top = max(last, 0) if periods is None else min(max(last, 0), periods - 1)
        cumulative = 0.0 if with_measure else None
        got = seen.get((cohort, group), {})
        for period in range(top + 1):
            empty = (0, 0.0 if size else None, 0 if with_measure else None, cumulative)
            customers, rate, measure, cumulative = got.get(period, empty)
            base = (cohort, *((group,) if has_group else ()), period, customers, size, rate)
            out.append(base + ((measure or 0, cumulative or 0.0) if with_measure else ()))
    columns = (
        COLUMNS[:1] + ([group_name] if has_group else []) + COLUMNS[1:] + (MEASURE_COLUMNS if with_measure else [])
    )
    return Result(columns, out)


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Run the cohort analysis."""
    tree, group_name = build(ctx)
    names = [e.alias_or_name for e in tree.expressions]
    raw = ctx.run(tree, names)
    measure = ctx.params.get("measure") is not None
    table = fill(raw.rows, group_name, ctx.params.get("periods"), measure)
    table.sql = raw.sql
    return AnalysisResult(
        method="cohort",
        name=ctx.name,
        title=f"Cohort retention of {ctx.params['entity']} by {ctx.params.get('grain', 'month')}",
        tables={"retention": table},
        figures=_figures(table),
        charts=[_heatmap()],
        notes=[],
    )


def _figures(table: Result) -> list[Figure]:
    records = table.records()
    cohorts = {(r["cohort"], *(v for k, v in r.items() if k not in COLUMNS + MEASURE_COLUMNS)) for r in records}
    members = sum(r["cohort_size"] for r in records if r["period"] == 0)
    later = [r for r in records if r["period"] == 1]
    rate = sum(r["customers"] for r in later) / sum(r["cohort_size"] for r in later) if later else None
    return [
        Figure("cohorts", "Cohorts", len(cohorts), "integer"),
        Figure("members", "Cohort members", members, "integer"),
        Figure("period_1_retention", "Retention after one period", rate, "percent"),
    ]


COHORT_AXIS = {"format": "%b %Y", "formatType": "utc", "labelExpr": "utcFormat(toDate(datum.value), '%b %Y')"}


def _heatmap() -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Retention by cohort",
        "data": {"name": "retention"},
        "mark": "rect",
        "encoding": {
            "x": {"field": "period", "type": "ordinal", "title": "Period"},
            # cohorts are ISO dates on an ordinal axis: Vega formats them only through a label expression (in UTC,
            # so a browser west of Greenwich does not show January as December); `format` serves the SVG renderer
            "y": {"field": "cohort", "type": "ordinal", "title": "Cohort", "axis": COHORT_AXIS},
            "color": {
                "field": "retention_rate",
                "type": "quantitative",
                "title": "Retention",
                "legend": {"format": "%"},
            },
        },
    }


METHOD = AnalysisMethod(
    name="cohort",
    description="Cohort retention matrix: active members per cohort and period, retention rate, LTV curves.",
    parameters=PARAMETERS,
    run=run,
    check=reference_checker(
        {"entity": "entity", "events": "entity", "cohort_by": "dimension", "measure": "measure", "time": "dimension"},
        [("events", "entity")],
    ),
)
