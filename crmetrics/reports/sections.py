"""Each section type turned into plain data: the queries and analyses run here, nothing is rendered.

Every query goes through `Project.query` (so filters, segments and row-level security apply as everywhere else);
analysis sections call `Project.analyze`, and drill-downs read rows through the compiler's `Frame`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisResult
from crmetrics.compiler import render
from crmetrics.compiler.frames import Frame
from crmetrics.compiler.periods import Calendar
from crmetrics.errors import RenderError
from crmetrics.reports.charts.vega import chart_spec, label_channels, resolve_data
from crmetrics.reports.period import Period
from crmetrics.reports.spec import as_list
from crmetrics.reports.tables import analysis_metrics, humanize, records, table_data
from crmetrics.result import Result, plain

if TYPE_CHECKING:
    from crmetrics.project import Project

DEFAULT_TREND_POINTS = 12
DEFAULT_DRILLDOWN_ROWS = 20


@dataclass
class Params:
    """The report's parameters after the CLI or caller has overridden the YAML."""

    period: Period | None = None
    grain: str = "month"
    segments: list[str] = field(default_factory=list)
    where: str | None = None
    context: dict[str, Any] = field(default_factory=dict)


class SectionBuilder:
    """Runs one report's sections against a project; `tiles` collects KPI tile values for narrative text."""

    def __init__(self, project: Project, params: Params, narrative: Callable[[str, dict[str, Any]], str]) -> None:
        self.project, self.model, self.params = project, project.model, params
        self.narrative = narrative
        self.tiles: dict[str, dict[str, Any]] = {}
        self.week_start = Calendar.from_settings(project.model.settings).week_start  # the compiler's weeks

    # -- helpers ---------------------------------------------------------------------------------------------

    def _where(self, section: dict[str, Any], period: Period | None) -> str | None:
        parts = [p for p in (self.params.where, section.get("where"), period.where() if period else None) if p]
        return " AND ".join(f"({p})" for p in parts) or None

    def _segments(self, section: dict[str, Any]) -> list[str]:
        return [*self.params.segments, *(s for s in as_list(section.get("segments")) if s not in self.params.segments)]

    def _period(self, section: dict[str, Any], default: bool = True) -> Period | None:
        return self.params.period if section.get("period", default) else None

    def _query(
        self, section: dict[str, Any], metrics: list[str], by: list[str], period: Period | None, **time: Any
    ) -> Result:
        return self.project.query(
            metrics,
            by=by,
            where=self._where(section, period),
            segments=self._segments(section),
            order_by=as_list(section.get("order_by")) or None,
            limit=section.get("limit"),
            context=self.params.context,
            **time,
        )

    def _trend(self, section: dict[str, Any], metrics: list[str], period: Period | None, points: int) -> list[dict]:
        """The last `points` periods at the report's grain, ending with the one that holds the period's end, and
        periods without rows included (0 for sums and counts), so a sparkline spaces its points in time."""
        grain = self.params.grain
        by = [f"metric_time:{grain}"]
        if period is None:
            return self._query(section, metrics, by, None, fill_gaps=True).records()[-points:]
        window = period.trend_window(grain, points, self.week_start)
        return self._query(section, metrics, by, None, start=window.start, end=window.end, fill_gaps=True).records()

    @staticmethod
    def _head(section: dict[str, Any], kind: str, title: str) -> dict[str, Any]:
        return {"type": kind, "title": section.get("title") or title, "description": section.get("description", "")}

    def _coverage(self, period: Period | None) -> str:
        """What time the section covers, said only where it is not the report period (a reader assumes that)."""
        if self.params.period is None or period is not None:
            return ""
        return f"All data, not only the report period ({self.params.period.label()})."

    # -- section types ---------------------------------------------------------------------------------------

    def kpis(self, section: dict[str, Any]) -> dict[str, Any]:
        metrics = as_list(section["metrics"])
        period = self._period(section)
        current = self._query(section, metrics, [], period).records()[0]
        previous = {}
        if period and section.get("compare", True):
            previous = self._query(section, metrics, [], period.previous()).records()[0]
        points = section.get("trend", DEFAULT_TREND_POINTS)
        trend = self._trend(section, metrics, period, points) if points else []
        lower = set(as_list(section.get("lower_is_better")))
        tiles = []
        for name in metrics:
            metric = self.model.metrics[name]
            value, before = plain(current[name]), plain(previous.get(name))
            tile = {
                "metric": name,
                "label": metric.label or humanize(name),
                "description": metric.description,
                "format": metric.format,
                "value": value,
                "previous": before,
                "delta": _delta(value, before),
                "change": _change(value, before),
                "spark": [plain(row[name]) for row in trend],
                "spark_periods": [plain(row[f"metric_time:{self.params.grain}"]) for row in trend],
                "lower_is_better": name in lower,
            }
            tiles.append(tile)
            self.tiles[name] = tile
        return {**self._head(section, "kpis", "Key figures"), "tiles": tiles, "compared": bool(previous)}

    def table(self, section: dict[str, Any]) -> dict[str, Any]:
        period = self._period(section)
        result = self._query(section, as_list(section["metrics"]), as_list(section.get("by")), period)
        head = {**self._head(section, "table", "Table"), "coverage": self._coverage(period)}
        return {**head, "table": table_data(result, self.model, "table", head["title"])}

    def chart(self, section: dict[str, Any]) -> dict[str, Any]:
        metrics, by = as_list(section["metrics"]), as_list(section.get("by"))
        period = self._period(section)
        result = self._query(section, metrics, by, period)
        head = {**self._head(section, "chart", "Chart"), "coverage": self._coverage(period)}
        table = table_data(result, self.model, "chart", head["title"])
        spec = chart_spec(section["chart"], table, by, metrics, section.get("quadrant", "median"))
        return {**head, "kind": section["chart"], "spec": spec, "table": table}

    def analysis(self, section: dict[str, Any]) -> dict[str, Any]:
        name = section["analysis"]
        declared = self.model.analyses[name]
        period = self._period(section, default=False)
        result = self.project.analyze(
            name, where=self._where(section, period), segments=self._segments(section), context=self.params.context
        )
        if not isinstance(result, AnalysisResult):
            raise RenderError(f"analysis '{name}' returned {type(result).__name__}, not an AnalysisResult")
        metrics = analysis_metrics(self.model, declared.params)
        built = analysis_section(result, self.model, section, declared.description, metrics)
        return {**built, "coverage": self._coverage(period)}

    def text(self, section: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if section.get("metrics"):
            row = self._query(section, as_list(section["metrics"]), [], self._period(section)).records()[0]
            values = {k: plain(v) for k, v in row.items()}
        body = self.narrative(section["text"], {"kpis": self.tiles, "metrics": values})
        return {**self._head(section, "text", ""), "text": body}

    def drilldown(self, section: dict[str, Any]) -> dict[str, Any]:
        entity = section["entity"]
        has_time = self.model.entities[entity].time is not None
        period = self._period(section, default=has_time) if has_time else None
        frame = Frame(self.model, entity, self._where(section, period), self._segments(section), self.params.context)
        columns = as_list(section["columns"])
        select = frame.select({c: frame.dimension(c) for c in columns})
        engine = self.project.engine()
        count = exp.select(exp.Count(this=exp.Star()).as_("n")).from_(select.subquery("rows"))
        total = engine.execute(render(count, engine.dialect), ["n"]).rows[0][0]
        for key in as_list(section.get("order_by")):
            name = key.lstrip("-")
            select = select.order_by(exp.Ordered(this=exp.column(name, quoted=True), desc=key.startswith("-")))
        select = select.limit(section.get("limit", DEFAULT_DRILLDOWN_ROWS))
        result = engine.execute(render(select, engine.dialect), columns)
        head = self._head(section, "drilldown", f"{humanize(entity)} records")
        head["coverage"] = self._coverage(period) if has_time else ""
        table = table_data(result, self.model, entity, head["title"])
        return {**head, "entity": entity, "table": table, "total_rows": int(total)}


def analysis_section(
    result: AnalysisResult,
    model: Any,
    section: dict[str, Any],
    description: str = "",
    metrics: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """An analysis result in plain data: its figures, every table in full, its charts with their data inlined.

    Column labels come from the analysis; a metric lends its label only when it is one of the analysis's
    parameters (`metrics`), so a count column `customers` is not titled after an unrelated metric `customers`.
    """
    tables = {name: table_data(t, model, name, humanize(name), metrics) for name, t in result.tables.items()}
    charts = []
    for spec in result.charts:
        labelled = label_channels(spec, {name: {c["name"]: c for c in t["columns"]} for name, t in tables.items()})
        resolved = resolve_data(labelled, {name: records(t) for name, t in tables.items()})
        charts.append({"title": spec.get("title", "") if isinstance(spec.get("title"), str) else "", "spec": resolved})
    figures = [{"name": f.name, "label": f.label, "value": plain(f.value), "format": f.format} for f in result.figures]
    return {
        "type": "analysis",
        "title": section.get("title") or result.title,
        "description": section.get("description") or description,
        "analysis": result.name,
        "method": result.method,
        "figures": figures,
        "tables": list(tables.values()),
        "charts": charts,
        "notes": list(result.notes),
        "max_rows": section.get("max_rows", 15),
    }


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _delta(value: Any, before: Any) -> float | None:
    a, b = _number(value), _number(before)
    return None if a is None or b is None else a - b


def _change(value: Any, before: Any) -> float | None:
    a, b = _number(value), _number(before)
    return None if a is None or b is None or b == 0 else (a - b) / abs(b)


__all__ = ["Params", "SectionBuilder", "analysis_section"]
