"""Report definitions: their shape in the DSL's schema language, and their references checked against the model.

A report is a title, parameters (period, grain, segments, a dimension filter) and a list of sections; each section
says its `type` and the keys of that type. `check_reports` runs at load time (next to `check_analyses`), so a typo
in a report is a file:line:column error before any query runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from crmetrics.compiler.query import check_dimension
from crmetrics.dsl.schema import Bool, Field, ListOf, Num, Obj, Path, Report, Spec, Str, validate
from crmetrics.dsl.yamlfile import YMap
from crmetrics.errors import CrmetricsError, Issue, Location, did_you_mean
from crmetrics.model.references import GRAINS, RefSyntaxError, parse_ref
from crmetrics.model.types import SemanticModel

CHART_KINDS = ("line", "bar", "stacked_bar", "heatmap", "scatter", "funnel")
MAX_DRILLDOWN_ROWS = 1000

_names = ListOf(item=Str(), single=True)
_common = {
    "type": Field(Str(), required=True),
    "title": Field(Str(description="Heading of the section.")),
    "description": Field(Str(description="A sentence under the heading.")),
    "where": Field(Str(description="A filter over dimension references, added to the report's.")),
    "segments": Field(_names),
    "period": Field(Bool(description="Restrict to the report period (default: true; analyses: false).")),
}
_query = {
    "metrics": Field(_names, required=True),
    "by": Field(_names),
    "order_by": Field(_names),
    "limit": Field(Num(integer=True, minimum=1)),
}

SECTIONS: dict[str, Obj] = {
    "kpis": Obj(
        description="KPI tiles: the value in the period, the change on the previous period and a trend line.",
        fields={
            **_common,
            "metrics": Field(_names, required=True),
            "compare": Field(Bool(description="Show the change on the previous period (default: true).")),
            "trend": Field(Num(integer=True, minimum=0, maximum=120, description="Trend points (default 12).")),
            "lower_is_better": Field(ListOf(item=Str(), single=True, description="Metrics whose fall is good news.")),
        },
    ),
    "table": Obj(description="Any query as a table.", fields={**_common, **_query}),
    "chart": Obj(
        description="A chart of a query, rendered from a Vega-Lite specification.",
        fields={
            **_common,
            **_query,
            "chart": Field(Str(enum=CHART_KINDS), required=True),
            "quadrant": Field(Str(enum=("median", "mean"), description="Scatter: where the quadrant lines cross.")),
        },
    ),
    "analysis": Obj(
        description="An analysis declared under `analyses:`, in its method's default rendering.",
        fields={
            **_common,
            "analysis": Field(Str(), required=True),
            "max_rows": Field(Num(integer=True, minimum=1)),
        },
    ),
    "analyses": Obj(
        description="Every analysis the project declares, one section each.",
        fields={**_common, "exclude": Field(_names), "max_rows": Field(Num(integer=True, minimum=1))},
    ),
    "text": Obj(
        description="Narrative text: a Jinja string given the report's parameters, KPI values and `metrics`.",
        fields={**_common, "text": Field(Str(), required=True), "metrics": Field(_names)},
    ),
    "drilldown": Obj(
        description="The records behind a figure: rows of one entity, limited.",
        fields={
            **_common,
            "entity": Field(Str(), required=True),
            "columns": Field(_names, required=True),
            "order_by": Field(_names),
            "limit": Field(Num(integer=True, minimum=1, maximum=MAX_DRILLDOWN_ROWS)),
        },
    ),
}


@dataclass(frozen=True)
class Section(Spec):
    """A section: its `type` picks which `Obj` checks the rest."""

    kinds: dict[str, Obj] = field(default_factory=lambda: SECTIONS)

    def check(self, value: Any, loc: Location, path: Path, report: Report) -> None:
        if not isinstance(value, dict):
            report("CRM110", f"expected a section mapping with a `type`, got {value!r}", loc, path, None)
            return
        kind = value.get("type")
        if kind not in self.kinds:
            hint = did_you_mean(str(kind), self.kinds) if isinstance(kind, str) else None
            where = value.value_loc("type") if isinstance(value, YMap) and "type" in value else loc
            report("CRM801", f"section type {kind!r} is not one of: {', '.join(self.kinds)}", where, path, hint)
            return
        self.kinds[kind].check(value, loc, path, report)

    def json(self) -> dict[str, Any]:
        options = []
        for kind, spec in self.kinds.items():
            schema = spec.json()
            schema["properties"] = {**schema["properties"], "type": {"const": kind}}
            options.append(schema)
        return {"oneOf": options}


PERIOD = Obj(
    description="The report period, inclusive dates (YYYY-MM-DD); KPI tiles compare it with the period before.",
    fields={"start": Field(Str(), required=True), "end": Field(Str(), required=True)},
)

REPORT = Obj(
    description="A report: title, parameters and sections.",
    fields={
        "title": Field(Str(), required=True),
        "description": Field(Str()),
        "parameters": Field(
            Obj(
                fields={
                    "period": Field(PERIOD),
                    "grain": Field(Str(enum=GRAINS, description="Grain of trend lines (default month).")),
                    "segments": Field(_names),
                    "where": Field(Str(description="A filter over dimension references applied to every section.")),
                }
            )
        ),
        "sections": Field(ListOf(item=Section(), min_items=1), required=True),
    },
)


def as_list(value: Any) -> list[Any]:
    """A `single`-style value as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def parse_date(text: Any) -> dt.date:
    """An ISO date; raises ValueError with a readable message."""
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"'{text}' is not a date (write YYYY-MM-DD)") from None


def check_reports(model: SemanticModel) -> list[Issue]:
    """Every report's shape and every name it uses (metrics, dimensions, segments, analyses, entities)."""
    issues: list[Issue] = []
    for name, raw in model.reports.items():
        loc = getattr(raw, "loc", None) or Location(model.files[0] if model.files else "<project>", 1, 1)
        found = validate(raw, REPORT, loc, ("reports", name))
        issues += found
        # names are checked wherever the shape is right, so one run reports every problem
        broken = {i.path[2:4] if i.path[2:3] == ("sections",) else i.path[2:3] for i in found}
        if isinstance(raw, dict) and ("title",) not in broken and isinstance(raw.get("sections"), list):
            issues += _References(model, ("reports", name)).report(raw, broken)
    return issues


class _References:
    """Checks the names a valid report uses; one issue per wrong name."""

    def __init__(self, model: SemanticModel, path: tuple) -> None:
        self.model, self.path, self.issues = model, path, []

    def add(self, code: str, message: str, owner: Any, key: str, path: tuple, hint: str | None = None) -> None:
        where = owner.value_loc(key) if isinstance(owner, YMap) else getattr(owner, "loc", None)
        self.issues.append(Issue(code, message, where, (*self.path, *path), hint))

    def report(self, raw: YMap, broken: set[tuple]) -> list[Issue]:
        params = raw.get("parameters") or {}
        period = params.get("period") if ("parameters",) not in broken else None
        if period:
            try:
                start, end = parse_date(period["start"]), parse_date(period["end"])
                if end < start:
                    self.add("CRM805", f"the period ends ({end}) before it starts ({start})", period, "end", ())
            except ValueError as error:
                self.add("CRM805", str(error), params, "period", ("parameters", "period"))
        if ("parameters",) not in broken:
            self.names(params, "segments", self.model.segments, "segment", ("parameters",))
        for index, section in enumerate(raw["sections"]):
            if ("sections", index) not in broken:
                self.section(section, ("sections", index))
        return self.issues

    def names(self, owner: YMap, key: str, known: Any, kind: str, path: tuple) -> list[str]:
        values = as_list(owner.get(key))
        for value in values:
            if value not in known:
                self.add("CRM802", f"unknown {kind} '{value}'", owner, key, (*path, key), did_you_mean(value, known))
        return values

    def refs(self, owner: YMap, key: str, path: tuple) -> list[str]:
        texts = as_list(owner.get(key))
        for text in texts:
            try:
                check_dimension(self.model, parse_ref(text))
            except (RefSyntaxError, CrmetricsError) as error:
                message = error.message if isinstance(error, CrmetricsError) else str(error)
                self.add("CRM803", message, owner, key, (*path, key))
        return texts

    def section(self, section: YMap, path: tuple) -> None:
        kind = section["type"]
        self.names(section, "segments", self.model.segments, "segment", path)
        metrics = self.names(section, "metrics", self.model.metrics, "metric", path)
        by = self.refs(section, "by", path)
        if kind in ("table", "chart"):
            self.order_by(section, [*by, *metrics], path)
        if kind == "chart":
            self.chart_shape(section, len(metrics), len(by), path)
        elif kind == "analysis" and section["analysis"] not in self.model.analyses:
            hint = did_you_mean(section["analysis"], self.model.analyses)
            self.add("CRM802", f"unknown analysis '{section['analysis']}'", section, "analysis", path, hint)
        elif kind == "analyses":
            self.names(section, "exclude", self.model.analyses, "analysis", path)
        elif kind == "drilldown":
            entity = section["entity"]
            if entity not in self.model.entities:
                hint = did_you_mean(entity, self.model.entities)
                self.add("CRM802", f"unknown entity '{entity}'", section, "entity", path, hint)
                return
            self.order_by(section, self.refs(section, "columns", path), path)

    def order_by(self, section: YMap, columns: list[str], path: tuple) -> None:
        for key in as_list(section.get("order_by")):
            name = key[1:] if isinstance(key, str) and key.startswith("-") else key
            if name not in columns:
                hint = did_you_mean(str(name), columns)
                self.add(
                    "CRM804", f"order_by '{name}' is not a column of this section", section, "order_by", path, hint
                )

    def chart_shape(self, section: YMap, metrics: int, by: int, path: tuple) -> None:
        kind = section["chart"]
        wanted = {
            "line": (
                metrics >= 1 and by in (1, 2) and (by == 1 or metrics == 1),
                "1 `by` and metrics, or 2 `by` and 1 metric",
            ),
            "bar": (
                metrics >= 1 and by in (1, 2) and (by == 1 or metrics == 1),
                "1 `by` and metrics, or 2 `by` and 1 metric",
            ),
            "stacked_bar": (metrics == 1 and by == 2, "2 `by` (x, colour) and 1 metric"),
            "heatmap": (metrics == 1 and by == 2, "2 `by` (x, y) and 1 metric"),
            "scatter": (metrics == 2 and by >= 1, "2 metrics (x, y) and at least 1 `by` (the points)"),
            "funnel": (
                (metrics >= 2 and by == 0) or (metrics == 1 and by == 1),
                "2+ metrics as stages, or 1 metric by 1 stage",
            ),
        }
        ok, shape = wanted[kind]
        if not ok:
            self.add("CRM806", f"a {kind} chart needs {shape}", section, "chart", path)
