"""Turn a validated raw project into the semantic model, checking every name and expression on the way.

Problems are collected as `Issue`s (with the file:line:column of the offending value and a "did you mean") so that
one run reports all of them; the caller raises `ConfigError` if any were found.
"""

from __future__ import annotations

import os
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from crmetrics.dsl.loader import RawProject
from crmetrics.dsl.quality import build_quality
from crmetrics.dsl.sources import file_access, is_plain_table
from crmetrics.dsl.timebuild import TIME_METRIC_KEYS, check_dimensions, check_settings, time_dependencies, time_metric
from crmetrics.dsl.yamlfile import YMap
from crmetrics.errors import Issue, Location, UnsafeExpressionError, did_you_mean
from crmetrics.model.expressions import column_refs, parse_expression, without_positions
from crmetrics.model.graph import all_paths
from crmetrics.model.references import METRIC_TIME
from crmetrics.model.types import Analysis, Dimension, Entity, Join, Measure, Metric, Segment, SemanticModel

_FILE_READERS = {
    ".csv": "read_csv_auto",
    ".tsv": "read_csv_auto",
    ".parquet": "read_parquet",
    ".json": "read_json_auto",
    ".ndjson": "read_json_auto",
}


def _loc(mapping: Any, key: str) -> Location | None:
    return mapping.value_loc(key) if isinstance(mapping, YMap) else None


def _key_loc(mapping: Any, key: str) -> Location | None:
    return mapping.key_loc(key) if isinstance(mapping, YMap) else None


def _items(raw: Any) -> list[tuple[str, Any]]:
    return list(raw.items()) if isinstance(raw, dict) else []


def _qualified(name: str, refs: list[str]) -> str | None:
    """For a bare name, the full reference(s) it most likely means: `region` -> `customers.region`."""
    exact = [ref for ref in refs if ref.split(".", 1)[1] == name]
    if exact:
        return " or ".join(f"{ref}" for ref in exact[:3])
    close = did_you_mean(name, [ref.split(".", 1)[1] for ref in refs])
    return next((ref for ref in refs if ref.split(".", 1)[1] == close), None) if close else None


def _text(raw: Any, key: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    return value if isinstance(value, str) else ""


class ModelBuilder:
    """Builds a `SemanticModel` from a `RawProject`, collecting issues."""

    def __init__(self, raw: RawProject, allow_outside: bool = False) -> None:
        self.raw, self.data = raw, raw.data
        self.issues: list[Issue] = []
        self.dialect = self._dialect()
        self.allow_outside = allow_outside

    def issue(
        self,
        code: str,
        message: str,
        loc: Location | None,
        path: tuple = (),
        suggestion: str | None = None,
        refers_to: tuple[str, str] | None = None,
    ) -> None:
        """Record a problem. `refers_to=(kind, name)` marks an unknown-name problem: it is dropped when the name is
        written in the YAML but failed to build, because that failure is reported already (one root cause, not a
        cascade of follow-on errors)."""
        if refers_to is not None and self.declared(*refers_to):
            return
        self.issues.append(Issue(code, message, loc, path, suggestion))

    def declared(self, kind: str, name: str) -> bool:
        """Whether the YAML declares `name` (an entity, `entity.dimension`, `entity.measure` or a metric)."""
        if kind == "metric":
            return isinstance(self.data.get("metrics"), dict) and name in self.data["metrics"]
        entities = self.data.get("entities") if isinstance(self.data.get("entities"), dict) else {}
        entity, _, member = name.partition(".")
        raw = entities.get(entity)
        if kind == "entity" or not isinstance(raw, dict):
            return entity in entities
        section = raw.get("dimensions" if kind == "dimension" else "measures")
        return (isinstance(section, dict) and member in section) or (kind == "dimension" and raw.get("time") == member)

    def _dialect(self) -> str:
        declared = self.data.get("dialect")
        if isinstance(declared, str):
            return declared
        connection = self.data.get("connection")
        if isinstance(connection, str) and "://" in connection:
            scheme = connection.split("://", 1)[0].split("+", 1)[0].lower()
            return {
                "postgresql": "postgres",
                "sqlite": "sqlite",
                "clickhouse": "clickhouse",
                "chdb": "clickhouse",
                "postgres": "postgres",
                "spark": "spark",
                "sc": "spark",
            }.get(scheme, "duckdb")
        return "duckdb"

    def expression(self, text: Any, loc: Location | None, path: tuple) -> exp.Expression | None:
        try:
            return parse_expression(text, self.dialect)
        except UnsafeExpressionError as error:
            self.issue(error.code, error.message, loc, path)
            return None

    # --- entities -------------------------------------------------------------------------------------------

    def build(self) -> SemanticModel:
        entities = {name: self.entity(name, raw) for name, raw in _items(self.data.get("entities"))}
        entities = {k: v for k, v in entities.items() if v is not None}
        self.check_joins(entities)
        analyses = self.analyses()
        entities.update(self.virtual_entities(entities, analyses))
        paths = all_paths(entities)
        model = SemanticModel(
            name=self.data.get("name") if isinstance(self.data.get("name"), str) else "project",
            root=str(self.raw.root),
            connection=self.data.get("connection") if isinstance(self.data.get("connection"), str) else None,
            dialect=self.dialect,
            entities=entities,
            metrics={},
            segments={},
            analyses=analyses,
            row_filters={},
            # a section of the wrong type is already a schema issue; the model gets it empty
            reports=dict(self.data["reports"]) if isinstance(self.data.get("reports"), dict) else {},
            settings=dict(self.data["settings"]) if isinstance(self.data.get("settings"), dict) else {},
            files=tuple(self.raw.files),
            paths=paths,
            description=_text(self.data, "description"),
        )
        self.check_measure_dimensions(model)
        check_settings(self)
        check_dimensions(self, model)
        self.check_measure_filters(model)
        model.metrics.update(self.metrics(model))
        model.segments.update(self.segments(model))
        model.row_filters.update(self.row_filters(model))
        return model

    def virtual_entities(self, entities: dict[str, Entity], analyses: dict[str, Analysis]) -> dict[str, Entity]:
        """Entities the YAML does not declare (analysis outputs, see crmetrics.analysis.outputs), with changed
        declared entities (a join onto them); none here."""
        return {}

    def entity(self, name: str, raw: Any) -> Entity | None:
        if not isinstance(raw, dict):
            return None
        path = ("entities", name)
        source = self.source(name, raw, path)
        if source is None:
            return None
        dimensions = {
            d: dim
            for d, r in _items(raw.get("dimensions"))
            if (dim := self.dimension(name, d, r, (*path, "dimensions", d))) is not None
        }
        time = raw.get("time") if isinstance(raw.get("time"), str) else None
        if time and time not in dimensions:
            # `time: ordered_at` without a declared dimension means the column of that name
            dimensions[time] = Dimension(name, time, exp.column(time, quoted=True), "time", location=_loc(raw, "time"))
        elif time and not dimensions[time].is_time:
            self.issue(
                "CRM130",
                f"'{time}' is the entity's time but its dimension is not {{type: time}}",
                _loc(raw, "time"),
                (*path, "time"),
            )
        measures = {
            m: meas
            for m, r in _items(raw.get("measures"))
            if (meas := self.measure(name, m, r, (*path, "measures", m))) is not None
        }
        joins = {
            target: Join(name, target, on if isinstance(on, str) else (on or {}).get("on", ""))
            for target, on in _items(raw.get("joins"))
        }
        key = raw.get("key") if isinstance(raw.get("key"), str) else None
        return Entity(
            name,
            source,
            key,
            time,
            joins,
            dimensions,
            measures,
            _text(raw, "label"),
            _text(raw, "description"),
            _key_loc(self.data.get("entities"), name),
            quality=build_quality(self, name, raw.get("quality"), (*path, "quality")),
        )

    def source(self, name: str, raw: dict, path: tuple) -> exp.Expression | None:
        if isinstance(raw.get("table"), str):
            try:
                table = exp.to_table(raw["table"], dialect=self.dialect)
            except (ParseError, TokenError, ValueError):
                table = None
            if table is not None and is_plain_table(table):
                return without_positions(table)
            self.issue("CRM131", f"'{raw['table']}' is not a table name", _loc(raw, "table"), path)
        elif isinstance(raw.get("sql"), str):
            return self.sql_source(raw, path)
        elif isinstance(raw.get("file"), str):
            return self.file_source(raw, path)
        return None

    def sql_source(self, raw: dict, path: tuple) -> exp.Expression | None:
        try:
            statements = sqlglot.parse(raw["sql"], read=self.dialect)
        except (ParseError, TokenError) as error:
            self.issue("CRM132", f"cannot parse sql: {str(error).splitlines()[0]}", _loc(raw, "sql"), path)
            return None
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            self.issue("CRM132", "sql must be a single SELECT statement", _loc(raw, "sql"), path)
            return None
        reason = None if self.allow_outside else file_access(statements[0])
        if reason:
            self.issue("CRM138", f"sql may only read the database's tables: {reason}", _loc(raw, "sql"), path)
            return None
        return exp.Subquery(this=without_positions(statements[0]))

    def file_source(self, raw: dict, path: tuple) -> exp.Expression | None:
        file = raw["file"]
        full = os.path.realpath(os.path.join(self.raw.root, file))
        reader = _FILE_READERS.get(os.path.splitext(full)[1].lower())
        if reader is None:
            self.issue(
                "CRM133",
                f"file '{file}' must end in one of {', '.join(_FILE_READERS)}",
                _loc(raw, "file"),
                path,
            )
            return None
        if not self.allow_outside and not full.startswith(str(self.raw.root) + os.sep):
            self.issue("CRM123", f"file '{file}' is outside the project folder", _loc(raw, "file"), path)
            return None
        return exp.Table(this=exp.Anonymous(this=reader, expressions=[exp.Literal.string(full)]))

    def dimension(self, entity: str, name: str, raw: Any, path: tuple) -> Dimension | None:
        raw = raw if isinstance(raw, dict) else {}
        loc = _key_loc(self.data["entities"][entity].get("dimensions"), name)
        kind = raw.get("type", "categorical")
        grain = raw.get("grain", "day")
        if isinstance(raw.get("measure"), str):  # a number, or with `type: time` the MIN/MAX of a time
            return Dimension(
                entity,
                name,
                None,
                "time" if kind == "time" else "number",
                grain,
                measure=raw["measure"],
                label=_text(raw, "label"),
                description=_text(raw, "description"),
                location=loc,
            )
        if isinstance(raw.get("expr"), str):
            expr = self.expression(raw["expr"], _loc(raw, "expr"), path)
            if expr is None or not self.own_columns(entity, expr, _loc(raw, "expr"), path):
                return None
        elif isinstance(raw.get("tenure"), str):
            expr, kind = None, "number"
        else:
            expr = exp.column(raw.get("column", name) if isinstance(raw.get("column"), str) else name, quoted=True)
        return Dimension(
            entity,
            name,
            expr,
            kind,
            grain,
            None,
            _text(raw, "label"),
            _text(raw, "description"),
            loc,
            raw.get("timezone") if isinstance(raw.get("timezone"), str) else None,
            raw.get("with_time_zone") is True,
            raw.get("tenure") if isinstance(raw.get("tenure"), str) else None,
        )

    def own_columns(self, entity: str, expr: exp.Expression, loc: Location | None, path: tuple) -> bool:
        """Dimension and measure expressions name the entity's own columns, bare or as entity.column."""
        for column in column_refs(expr):
            if column.table and column.table != entity:
                self.issue(
                    "CRM134",
                    f"'{column.sql()}' names another entity; an expression of {entity} may only use {entity}'s columns",
                    loc,
                    path,
                )
                return False
        return True

    def measure(self, entity: str, name: str, raw: Any, path: tuple) -> Measure | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("agg"), str):
            return None
        agg, expr = raw["agg"], None
        if isinstance(raw.get("expr"), str):
            expr = self.expression(raw["expr"], _loc(raw, "expr"), path)
            if expr is None or not self.own_columns(entity, expr, _loc(raw, "expr"), path):
                return None
        elif agg != "count":
            self.issue("CRM135", f"measure '{name}' with agg {agg} needs an expr", _loc(raw, "agg"), path)
            return None
        percentile = raw.get("percentile")
        if agg == "percentile" and not isinstance(percentile, int | float):
            self.issue("CRM135", "agg: percentile needs `percentile:` between 0 and 1", _loc(raw, "agg"), path)
            return None
        filter_ = self.expression(raw["filter"], _loc(raw, "filter"), path) if "filter" in raw else None
        return Measure(
            entity,
            name,
            agg,
            expr,
            percentile,
            filter_,
            _text(raw, "label"),
            _text(raw, "description"),
            _key_loc(self.data["entities"][entity].get("measures"), name),
            raw.get("semi_additive") if isinstance(raw.get("semi_additive"), str) else None,
        )

    def check_joins(self, entities: dict[str, Entity]) -> None:
        for entity in entities.values():
            raw_joins = self.data["entities"][entity.name].get("joins")
            for target, join in entity.joins.items():
                path = ("entities", entity.name, "joins", target)
                if target not in entities:
                    self.issue(
                        "CRM140",
                        f"join to unknown entity '{target}'",
                        _key_loc(raw_joins, target),
                        path,
                        did_you_mean(target, entities),
                        refers_to=("entity", target),
                    )
                elif not join.on:
                    self.issue(
                        "CRM116",
                        "join needs `on:` (the column holding the key)",
                        _key_loc(raw_joins, target),
                        path,
                    )
                elif entities[target].key is None:
                    self.issue(
                        "CRM141",
                        f"cannot join to '{target}': it declares no `key`",
                        _key_loc(raw_joins, target),
                        path,
                    )

    def check_measure_dimensions(self, model: SemanticModel) -> None:
        for entity in model.entities.values():
            for dim in entity.dimensions.values():
                if dim.measure is None:
                    continue
                path = ("entities", entity.name, "dimensions", dim.name, "measure")
                measure = model.measure(dim.measure)
                if measure is None:
                    self.issue(
                        "CRM150",
                        f"unknown measure '{dim.measure}'",
                        dim.location,
                        path,
                        did_you_mean(dim.measure, model.measure_refs()),
                        refers_to=("measure", dim.measure),
                    )
                elif entity.key is None:
                    self.issue(
                        "CRM151",
                        f"measure-based dimension '{dim.ref}' needs `key` on {entity.name}",
                        dim.location,
                        path,
                    )
                elif entity.name not in model.paths[measure.entity].reach:
                    self.issue(
                        "CRM152",
                        f"no join path from {measure.entity} to {entity.name} for '{dim.ref}'",
                        dim.location,
                        path,
                    )
                elif dim.is_time and measure.agg not in ("min", "max"):
                    self.issue(
                        "CRM153",
                        f"'{dim.ref}' has type time, so its measure must be the min or max of a time, "
                        f"not a {measure.agg} ('{dim.measure}')",
                        dim.location,
                        path,
                    )

    def check_refs(
        self,
        model: SemanticModel,
        expr: exp.Expression,
        loc: Location | None,
        path: tuple,
        allow_metric_time: bool = True,
    ) -> bool:
        """Every column of a filter must be a declared `entity.dimension` (or metric_time)."""
        ok = True
        for column in column_refs(expr):
            if not column.table:
                if column.name == METRIC_TIME and allow_metric_time:
                    continue
                self.issue(
                    "CRM160",
                    f"'{column.sql()}' must be written as entity.dimension",
                    loc,
                    path,
                    _qualified(column.name, model.dimension_refs()),
                )
                ok = False
            elif column.table not in model.entities:
                self.issue(
                    "CRM161",
                    f"unknown entity '{column.table}' in '{column.sql()}'",
                    loc,
                    path,
                    did_you_mean(column.table, model.entities),
                    refers_to=("entity", column.table),
                )
                ok = False
            elif column.name not in model.entities[column.table].dimensions:
                ref = f"{column.table}.{column.name}"
                self.issue(
                    "CRM162",
                    f"unknown dimension '{ref}'",
                    loc,
                    path,
                    did_you_mean(ref, model.dimension_refs()),
                    refers_to=("dimension", ref),
                )
                ok = False
        return ok

    def check_measure_filters(self, model: SemanticModel) -> None:
        for entity in model.entities.values():
            for measure in entity.measures.values():
                if measure.filter is not None:
                    raw = self.data["entities"][entity.name]["measures"][measure.name]
                    self.check_refs(
                        model,
                        measure.filter,
                        _loc(raw, "filter"),
                        ("entities", entity.name, "measures", measure.name, "filter"),
                    )

    # --- metrics, segments, security --------------------------------------------------------------------------

    def metrics(self, model: SemanticModel) -> dict[str, Metric]:
        raw_metrics = self.data["metrics"] if isinstance(self.data.get("metrics"), dict) else {}
        names = set(raw_metrics)
        metrics = {}
        for name, raw in _items(raw_metrics):
            metric = self.metric(model, name, raw, names)
            if metric is not None:
                metrics[name] = metric
        self.check_cycles(metrics, raw_metrics)
        return metrics

    def metric(self, model: SemanticModel, name: str, raw: Any, names: set[str]) -> Metric | None:
        if not isinstance(raw, dict):
            return None
        path, loc = ("metrics", name), _key_loc(self.data.get("metrics"), name)
        common = {
            "format": raw.get("format", "number"),
            "label": _text(raw, "label"),
            "description": _text(raw, "description"),
            "location": loc,
        }
        filter_ = None
        if isinstance(raw.get("filter"), str):
            filter_ = self.expression(raw["filter"], _loc(raw, "filter"), (*path, "filter"))
            if filter_ is None or not self.check_refs(model, filter_, _loc(raw, "filter"), (*path, "filter")):
                return None
        if isinstance(raw.get("measure"), str):
            if model.measure(raw["measure"]) is None:
                self.issue(
                    "CRM170",
                    f"unknown measure '{raw['measure']}'",
                    _loc(raw, "measure"),
                    path,
                    did_you_mean(raw["measure"], model.measure_refs()),
                    refers_to=("measure", raw["measure"]),
                )
                return None
            return Metric(name, "simple", measure=raw["measure"], filter=filter_, **common)
        if filter_ is not None:
            self.issue("CRM171", "`filter` applies to a measure metric only", _loc(raw, "filter"), path)
            return None
        if isinstance(raw.get("ratio"), list) and len(raw["ratio"]) == 2:
            return self.ratio(name, raw, names, common, path)
        if isinstance(raw.get("expr"), str):
            expr = self.expression(raw["expr"], _loc(raw, "expr"), (*path, "expr"))
            if expr is None or not self.derived_refs(model, expr, names, _loc(raw, "expr"), path):
                return None
            return Metric(name, "derived", expr=expr, **common)
        if any(key in raw for key in TIME_METRIC_KEYS):
            return time_metric(self, model, name, raw, common)
        return None

    def ratio(self, name: str, raw: dict, names: set[str], common: dict, path: tuple) -> Metric | None:
        ok = True
        for index, part in enumerate(raw["ratio"]):
            if part not in names:
                self.issue(
                    "CRM172",
                    f"unknown metric '{part}' in ratio",
                    raw["ratio"].item_loc(index) if hasattr(raw["ratio"], "item_loc") else None,
                    (*path, "ratio", index),
                    did_you_mean(str(part), names),
                )
                ok = False
        if not ok:
            return None
        return Metric(name, "ratio", numerator=raw["ratio"][0], denominator=raw["ratio"][1], **common)

    def derived_refs(
        self, model: SemanticModel, expr: exp.Expression, names: set[str], loc: Location | None, path: tuple
    ) -> bool:
        """A derived metric names metrics (bare), measures (entity.measure) or a measure name unique in the model."""
        ok = True
        bare_measures = {}
        for ref in model.measure_refs():
            bare_measures.setdefault(ref.split(".")[1], []).append(ref)
        for column in column_refs(expr):
            text = f"{column.table}.{column.name}" if column.table else column.name
            if column.table and model.measure(text) is not None:
                continue
            if not column.table and (column.name in names or len(bare_measures.get(column.name, ())) == 1):
                continue
            self.issue(
                "CRM173",
                f"unknown metric or measure '{text}'",
                loc,
                (*path, "expr"),
                did_you_mean(text, [*names, *model.measure_refs()]),
                refers_to=("measure", text) if column.table else None,
            )
            ok = False
        return ok

    def check_cycles(self, metrics: dict[str, Metric], raw_metrics: Any) -> None:
        def deps(metric: Metric) -> list[str]:
            if metric.kind == "ratio":
                return [metric.numerator or "", metric.denominator or ""]
            if metric.kind == "derived" and metric.expr is not None:
                return [c.name for c in column_refs(metric.expr) if not c.table and c.name in metrics]
            return time_dependencies(metric)

        state: dict[str, int] = {}
        reported: set[frozenset[str]] = set()

        def visit(name: str, stack: list[str]) -> None:
            state[name] = 1
            for dep in deps(metrics[name]):
                if dep not in metrics:
                    continue
                if state.get(dep) == 1:
                    cycle = [*stack[stack.index(dep) :], dep]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        self.issue(
                            "CRM174",
                            f"metrics depend on each other in a cycle: {' -> '.join(cycle)}",
                            _key_loc(raw_metrics, dep),
                            ("metrics", dep),
                        )
                elif state.get(dep) is None:
                    visit(dep, [*stack, dep])
            state[name] = 2

        for name in metrics:
            if name not in state:
                visit(name, [name])

    def segments(self, model: SemanticModel) -> dict[str, Segment]:
        result = {}
        for name, raw in _items(self.data.get("segments")):
            if not isinstance(raw, dict) or not isinstance(raw.get("where"), str):
                continue
            path, entity = ("segments", name), raw.get("entity")
            if entity not in model.entities:
                self.issue(
                    "CRM180",
                    f"unknown entity '{entity}'",
                    _loc(raw, "entity"),
                    (*path, "entity"),
                    did_you_mean(str(entity), model.entities),
                    refers_to=("entity", str(entity)),
                )
                continue
            where = self.expression(raw["where"], _loc(raw, "where"), (*path, "where"))
            if where is None or not self.check_refs(model, where, _loc(raw, "where"), (*path, "where"), False):
                continue
            result[name] = Segment(
                name,
                entity,
                where,
                _text(raw, "label"),
                _text(raw, "description"),
                _key_loc(self.data.get("segments"), name),
            )
        return result

    def row_filters(self, model: SemanticModel) -> dict[str, exp.Expression]:
        security = self.data.get("security")
        raw = security.get("row_filters") if isinstance(security, dict) else None
        filters = {}
        for entity, text in _items(raw):
            path = ("security", "row_filters", entity)
            if entity not in model.entities:
                self.issue(
                    "CRM190",
                    f"row filter for unknown entity '{entity}'",
                    _key_loc(raw, entity),
                    path,
                    did_you_mean(entity, model.entities),
                    refers_to=("entity", entity),
                )
                continue
            expr = self.expression(text, _loc(raw, entity), path)
            if expr is None:
                continue
            for column in column_refs(expr):
                if column.table != entity:
                    self.issue(
                        "CRM191",
                        f"a row filter of {entity} may only name {entity}'s columns, not '{column.sql()}'",
                        _loc(raw, entity),
                        path,
                    )
                    expr = None
                    break
            if expr is not None:
                filters[entity] = expr
        return filters

    def analyses(self) -> dict[str, Analysis]:
        result = {}
        for name, raw in _items(self.data.get("analyses")):
            if isinstance(raw, dict) and isinstance(raw.get("method"), str):
                params = YMap((k, v) for k, v in raw.items() if k not in ("method", "description", "label"))
                params.loc, params.key_locs, params.value_locs = raw.loc, raw.key_locs, raw.value_locs
                result[name] = Analysis(
                    name,
                    raw["method"],
                    params,
                    _text(raw, "description"),
                    _key_loc(self.data.get("analyses"), name),
                )
        return result
