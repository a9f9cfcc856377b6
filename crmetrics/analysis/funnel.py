"""Funnel: how many records reach each stage of a declared order, and how fast.

Three input shapes are normalised into one row per record (reach flags r1..rn, first time at each stage t1..tn,
a status open/won/lost and the current stage): (a) a stage column with a declared order, where lost records keep
the last stage they reached (in the column itself, or in `last_stage` when the column says e.g. 'closed_lost');
(b) one timestamp column per stage; (c) a stage-history entity with one row per stage entered.

Skipped stages: with `skipped: reached` (the default) a record that reached a later stage counts as having reached
every earlier one, so the funnel never widens and every step conversion is at most 1; with `skipped: not_reached`
a stage counts only where the data records it. Times between stages are measured only between two recorded stages.
The last declared stage is the won stage. Everything is one SQL statement; Python only splits the result in two.
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
    member_key,
    not_null,
    num,
    order_by,
    percentile,
    raw_time,
    reference_checker,
    safe_div,
    select,
    stage_index,
    table_as,
    when,
    with_ctes,
)
from crmetrics.compiler.frames import Frame
from crmetrics.dsl.schema import NAME_PATTERN, Field, ListOf, Num, Obj, Str
from crmetrics.errors import AnalysisError
from crmetrics.result import Result

FUNNEL_COLUMNS = ["stage", "stage_index", "reached", "conversion_step", "conversion_overall", "drop_off"]
TIME_COLUMNS = ["median_days_from_previous"]
WINDOW_COLUMNS = ["reached_within_window", "conversion_within_window"]
OPEN_COLUMNS = ["open", "open_share", "open_amount"]

PARAMETERS = Obj(
    description="Stage funnel: reach, conversion, drop-off, time between stages and the open pipeline.",
    fields={
        "entity": Field(
            Str(pattern=NAME_PATTERN, description="The entity whose rows move through stages."), required=True
        ),
        "stages": Field(
            ListOf(item=Str(), min_items=2, description="The stages in order; the last is won."), required=True
        ),
        "stage": Field(Str(description="Shape (a): entity.dimension holding the current (or last reached) stage.")),
        "last_stage": Field(
            Str(description="Shape (a): entity.dimension with the last stage reached by lost records.")
        ),
        "stage_times": Field(ListOf(item=Str(), description="Shape (b): one time dimension per stage, in order.")),
        "history": Field(Str(pattern=NAME_PATTERN, description="Shape (c): an entity with one row per stage entered.")),
        "history_stage": Field(Str(description="Shape (c): the history entity's stage dimension.")),
        "history_time": Field(Str(description="Shape (c): when the stage was entered (default: its `time`).")),
        "lost_stages": Field(ListOf(item=Str(), single=True, description="Stage values that mean lost (a, c).")),
        "lost_at": Field(Str(description="Shape (b): time dimension set when the record was lost.")),
        "lost_when": Field(Str(description="Any shape: a condition over dimension references marking lost records.")),
        "skipped": Field(Str(enum=("reached", "not_reached"), description="How skipped stages count (reached).")),
        "by": Field(ListOf(item=Str(), single=True, description="Dimension references to break down by.")),
        "window_days": Field(Num(minimum=0, description="Count stages reached within this many days of entry.")),
        "amount": Field(Str(description="entity.measure summed over the open pipeline per stage.")),
    },
    one_of=("stage", "stage_times", "history"),
)


class _Records:
    """The per-record columns of one input shape: reach index, stage times, status, current stage."""

    def __init__(self, ctx: AnalysisContext, stages: list[str]) -> None:
        self.ctx, self.stages, self.n = ctx, stages, len(stages)
        self.entity = entity_param(ctx, "entity")
        self.frame = ctx.frame(self.entity)
        self.lost = as_list(ctx.params.get("lost_stages"))
        self.ctes: dict[str, exp.Expression] = {}  # shape (c): the per-record history aggregates
        self.join_key: exp.Expression | None = None  # shape (c): the entity key the aggregates join on

    def columns(self) -> dict[str, exp.Expression]:
        """reached_idx, t1..tn, status, cur for each record of the entity frame."""
        if self.ctx.params.get("stage"):
            return self._stage_column()
        if self.ctx.params.get("stage_times"):
            return self._stage_times()
        return self._history()

    def _status(self, won: exp.Expression, lost: exp.Expression, known: exp.Expression) -> exp.Expression:
        if self.ctx.params.get("lost_when"):
            lost = exp.or_(lost, condition(self.frame, self.ctx.params["lost_when"], "lost_when"))
        return exp.Case(
            ifs=[
                exp.If(this=lost, true=exp.Literal.string("lost")),
                exp.If(this=won, true=exp.Literal.string("won")),
                exp.If(this=known, true=exp.Literal.string("open")),
            ]
        )

    def _stage_column(self) -> dict[str, exp.Expression]:
        value = self.frame.dimension(self.ctx.params["stage"])
        index = stage_index(value, self.stages)
        reached = index
        if self.ctx.params.get("last_stage"):
            last = stage_index(self.frame.dimension(self.ctx.params["last_stage"]), self.stages)
            reached = exp.Coalesce(this=index.copy(), expressions=[last])
        won = exp.EQ(this=index.copy(), expression=num(self.n))
        lost = is_in(value.copy(), self.lost)
        status = self._status(won, lost, not_null(index.copy()))
        times = {f"t{i}": exp.Null() for i in range(1, self.n + 1)}
        return {"reached_idx": reached, **times, "status": status, "cur": index.copy()}

    def _stage_times(self) -> dict[str, exp.Expression]:
        refs = as_list(self.ctx.params["stage_times"])
        if len(refs) != self.n:
            raise AnalysisError(f"analysis '{self.ctx.name}': stage_times needs {self.n} entries, one per stage")
        times = {f"t{i}": raw_time(self.frame, ref) for i, ref in enumerate(refs, 1)}
        ifs = [exp.If(this=not_null(times[f"t{i}"].copy()), true=num(i)) for i in range(self.n, 0, -1)]
        reached = exp.Case(ifs=ifs)
        won = not_null(times[f"t{self.n}"].copy())
        lost_at = self.ctx.params.get("lost_at")
        lost = not_null(raw_time(self.frame, lost_at)) if lost_at else exp.false()
        status = self._status(won, lost, not_null(reached.copy()))
        return {"reached_idx": reached, **times, "status": status, "cur": reached.copy()}

    def _history(self) -> dict[str, exp.Expression]:
        history = entity_param(self.ctx, "history")
        if not self.ctx.params.get("history_stage"):
            raise AnalysisError(f"analysis '{self.ctx.name}': a `history` needs `history_stage`")
        # the history is read with row-level security but not the query's filters, which select the records
        hist = Frame(self.ctx.model, history, None, (), self.ctx.context)
        key = member_key(hist, self.entity)
        stage = hist.dimension(self.ctx.params["history_stage"])
        at = raw_time(hist, self.ctx.params.get("history_time"))
        index = stage_index(stage, self.stages)
        lost = is_in(stage.copy(), self.lost)
        rows = hist.select({"k": key, "i": index, "lost": flag(lost), "t": at}).where(
            not_null(key.copy()),
            not_null(at.copy()),
            exp.or_(not_null(index.copy()), lost.copy()),
            copy=False,
        )
        first = {
            "k": col("k"),
            "reached_idx": exp.Max(this=col("i")),
            **{
                f"t{i}": exp.Min(this=when(exp.EQ(this=col("i"), expression=num(i)), col("t")))
                for i in range(1, self.n + 1)
            },
            "last_t": exp.Max(this=col("t")),
        }
        # the rows at the latest time are the current state; among rows tied at that time a loss outranks a stage
        # and the furthest stage counts: plain aggregates, so ties resolve the same way on every database
        at_last = exp.and_(
            exp.EQ(this=col("k", "h"), expression=col("k", "f")),
            exp.EQ(this=col("t", "h"), expression=col("last_t", "f")),
        )
        latest = (
            select(
                {"k": col("k", "h"), "cur": exp.Max(this=col("i", "h")), "last_lost": exp.Max(this=col("lost", "h"))},
                table_as("hist", "h"),
            )
            .join(table_as("first_rows", "f"), on=at_last, copy=False)
            .group_by(col("k", "h"), copy=False)
        )
        per = select(
            {
                "k": col("k", "f"),
                "reached_idx": col("reached_idx", "f"),
                **{f"t{i}": col(f"t{i}", "f") for i in range(1, self.n + 1)},
                "cur": col("cur", "l"),
                "last_lost": col("last_lost", "l"),
            },
            table_as("first_rows", "f"),
        ).join(table_as("latest", "l"), on=exp.EQ(this=col("k", "f"), expression=col("k", "l")), copy=False)
        self.ctes = {
            "hist": rows,
            "first_rows": select(first, "hist").group_by(col("k"), copy=False),
            "latest": latest,
            "per": per,
        }
        won = exp.EQ(this=col("cur", "per"), expression=num(self.n))
        status = self._status(
            won,
            exp.EQ(this=col("last_lost", "per"), expression=num(1)),
            not_null(col("cur", "per")),
        )
        self.join_key = self.frame.key()
        times = {f"t{i}": col(f"t{i}", "per") for i in range(1, self.n + 1)}
        return {"reached_idx": col("reached_idx", "per"), **times, "status": status, "cur": col("cur", "per")}


def pick(values: dict[int, exp.Expression]) -> exp.Expression:
    """The value for the current stage number `i` (CASE i WHEN 1 THEN ... END)."""
    ifs = [exp.If(this=exp.EQ(this=col("i"), expression=num(i)), true=value) for i, value in values.items()]
    return exp.Case(ifs=ifs)


def build(ctx: AnalysisContext) -> tuple[exp.Select, list[str], bool]:
    """The funnel SELECT: one row per (group, stage); returns it, the group names and whether times exist."""
    stages = as_list(ctx.params["stages"])
    n = len(stages)
    records = _Records(ctx, stages)
    frame = records.frame
    groups = breakdown(frame, as_list(ctx.params.get("by")))
    names = list(groups)
    base = records.columns()
    if ctx.params.get("amount"):
        base["amt"] = frame.measure_value(ctx.params["amount"])
    rec = frame.select({**{f"g{j}": v for j, v in enumerate(groups.values())}, **base})
    if records.ctes:
        per_key = col("k", "per")
        rec = rec.join(
            table_as("per"), on=exp.EQ(this=per_key, expression=records.join_key), join_type="left", copy=False
        )
    skipped_count = ctx.params.get("skipped", "reached") == "reached"
    timed = not ctx.params.get("stage")

    def reach(i: int) -> exp.Expression:
        if skipped_count or not timed:
            return exp.GTE(this=col("reached_idx"), expression=num(i))
        return not_null(col(f"t{i}"))

    def passed(i: int) -> exp.Expression:
        # the first time at stage i or beyond, where skipped stages count as reached
        later = [col(f"t{j}") for j in range(i + 1, n + 1)] if skipped_count else []
        return exp.Coalesce(this=col(f"t{i}"), expressions=later) if later else col(f"t{i}")

    window = ctx.params.get("window_days")
    is_open = exp.EQ(this=col("status"), expression=exp.Literal.string("open"))
    agg: dict[str, exp.Expression] = {f"g{j}": col(f"g{j}") for j in range(len(names))}
    for i in range(1, n + 1):
        agg[f"reached{i}"] = coalesce_zero(exp.Sum(this=flag(reach(i))))
        if i > 1:
            agg[f"median{i}"] = percentile(days_between(col(f"t{i - 1}"), col(f"t{i}")), 0.5) if timed else exp.Null()
        if window is not None:
            inside = exp.LTE(this=days_between(passed(1), passed(i)), expression=num(window))
            agg[f"within{i}"] = coalesce_zero(exp.Sum(this=flag(exp.and_(reach(i), inside)))) if timed else exp.Null()
        if i < n:
            at_stage = exp.and_(is_open.copy(), exp.EQ(this=col("cur"), expression=num(i)))
            agg[f"open{i}"] = coalesce_zero(exp.Sum(this=flag(at_stage)))
            agg[f"open_amt{i}"] = exp.Sum(this=when(at_stage.copy(), col("amt"))) if "amt" in base else exp.Null()
    agg["open_total"] = coalesce_zero(exp.Sum(this=flag(is_open)))
    grouped = select(agg, "rec")
    if names:
        grouped = grouped.group_by(*(col(f"g{j}") for j in range(len(names))), copy=False)

    # one row per (group, stage): the grouped row crossed with the stage numbers, each column picked by number
    rows: dict[str, dict[int, exp.Expression]] = {}
    for i, stage in enumerate(stages, 1):
        reached, first = col(f"reached{i}"), col("reached1")
        previous = col(f"reached{i - 1}") if i > 1 else None
        row: dict[str, exp.Expression] = {
            "stage": exp.Literal.string(stage),
            "reached": reached,
            "conversion_step": safe_div(reached.copy(), previous) if previous else exp.Null(),
            "conversion_overall": safe_div(reached.copy(), first),
            "drop_off": exp.Sub(this=previous.copy(), expression=reached.copy()) if previous else exp.Null(),
            "median_days_from_previous": col(f"median{i}") if i > 1 else exp.Null(),
        }
        if window is not None:
            row["reached_within_window"] = col(f"within{i}")
            row["conversion_within_window"] = safe_div(col(f"within{i}"), col("reached1"))
        row["open"] = col(f"open{i}") if i < n else exp.Null()
        row["open_share"] = safe_div(col(f"open{i}"), col("open_total")) if i < n else exp.Null()
        row["open_amount"] = col(f"open_amt{i}") if i < n else exp.Null()
        for name, value in row.items():
            rows.setdefault(name, {})[i] = value
    numbers: exp.Query = exp.Select(expressions=[exp.alias_(num(1), "i")])
    for i in range(2, n + 1):
        numbers = exp.union(numbers, exp.Select(expressions=[exp.alias_(num(i), "i")]), distinct=False)
    columns: dict[str, exp.Expression] = {names[j]: col(f"g{j}") for j in range(len(names))}
    columns["stage"] = pick(rows.pop("stage"))
    columns["stage_index"] = col("i")
    columns |= {name: pick(values) for name, values in rows.items()}
    crossed = select(columns, "grouped").join(table_as("stage_numbers"), join_type="cross", copy=False)
    final = order_by(crossed, [*names, "stage_index"])
    ctes = {**records.ctes, "rec": rec, "grouped": grouped, "stage_numbers": numbers}
    return with_ctes(final, ctes), names, timed


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Run the funnel analysis."""
    tree, names, timed = build(ctx)
    columns = [e.alias_or_name for e in tree.expressions]
    raw = ctx.run(tree, columns)
    n = len(as_list(ctx.params["stages"]))
    funnel_cols = [*names, *FUNNEL_COLUMNS, *TIME_COLUMNS]
    if ctx.params.get("window_days") is not None:
        funnel_cols += WINDOW_COLUMNS
    records = raw.records()
    funnel = Result(funnel_cols, [tuple(r[c] for c in funnel_cols) for r in records], raw.sql)
    open_cols = [*names, "stage", "stage_index", "records", "share"]
    amount = bool(ctx.params.get("amount"))
    if amount:
        open_cols.append("amount")
    pipeline_rows = [
        (*(r[c] for c in names), r["stage"], r["stage_index"], r["open"], r["open_share"])
        + ((r["open_amount"],) if amount else ())
        for r in records
        if r["stage_index"] < n
    ]
    notes = []
    if not timed:
        # said for a report reader; docs/analyses-lifecycle.md tells the modeller which inputs carry the times
        notes.append(
            "The data records the furthest stage each record reached, not when it entered each stage, so the time"
            " between stages is not shown."
        )
    return AnalysisResult(
        method="funnel",
        name=ctx.name,
        title=f"Funnel of {ctx.params['entity']}",
        tables={"funnel": funnel, "open_pipeline": Result(open_cols, pipeline_rows, raw.sql)},
        figures=_figures(records, n),
        charts=[_chart()],
        notes=notes,
    )


def _figures(records: list[dict[str, Any]], n: int) -> list[Figure]:
    # counts add up across groups, so the overall funnel is the sum of the groups' rows
    first = sum(r["reached"] for r in records if r["stage_index"] == 1)
    won = sum(r["reached"] for r in records if r["stage_index"] == n)
    open_records = sum(r["open"] or 0 for r in records if r["stage_index"] < n)
    return [
        Figure("entered", "Entered the funnel", first, "integer"),
        Figure("won", "Reached the last stage", won, "integer"),
        Figure("conversion", "Overall conversion", won / first if first else None, "percent"),
        Figure("open", "Open records", open_records, "integer"),
    ]


def _chart() -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Funnel",
        "data": {"name": "funnel"},
        "mark": "bar",
        "encoding": {
            "y": {"field": "stage", "type": "ordinal", "sort": {"field": "stage_index"}},
            "x": {"field": "reached", "type": "quantitative"},
        },
    }


METHOD = AnalysisMethod(
    name="funnel",
    description="Stage funnel: reach, step and overall conversion, drop-off, time between stages, open pipeline.",
    parameters=PARAMETERS,
    run=run,
    check=reference_checker(
        {
            "entity": "entity",
            "history": "entity",
            "stage": "dimension",
            "last_stage": "dimension",
            "stage_times": "dimension",
            "history_stage": "dimension",
            "history_time": "dimension",
            "lost_at": "dimension",
            "lost_when": "condition",
            "by": "dimension",
            "amount": "measure",
        },
        [("history", "entity")],
    ),
)
