"""Data quality: completeness, duplicates, staleness, orphans and invalid values, per entity and column, in SQL.

Every entity gets completeness (of its key and its column-backed dimensions, or of `quality.columns`), duplicate
keys and orphans per declared join; the rules declared under `quality:` next to the entity add duplicates by natural
key, values outside accepted values or ranges, and staleness. The query's where, segments and row filters apply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.valuesql import check_date, col, count_if, date_literal, literal, parse_date, select, with_ctes
from crmetrics.compiler.frames import Frame
from crmetrics.compiler.scope import qualify
from crmetrics.dsl.schema import Field, ListOf, Obj, Str
from crmetrics.errors import ReferenceNotFound
from crmetrics.model.quality import QualityRules
from crmetrics.model.types import Entity, SemanticModel
from crmetrics.result import Result

PARAMETERS = Obj(
    description="Completeness, duplicates, staleness, referential integrity and validity of the entities.",
    fields={
        "entities": Field(ListOf(item=Str(), single=True, description="Entities to check (default: all).")),
        "as_of": Field(Str(description="Date staleness is measured at, YYYY-MM-DD (default: today, UTC).")),
    },
)

TABLES = {
    "completeness": ["entity", "column", "rows", "non_null", "completeness"],
    "duplicates": [
        "entity",
        "key",
        "kind",
        "non_null",
        "distinct",
        "duplicate_groups",
        "duplicate_rows",
        "duplicate_rate",
    ],
    "staleness": ["entity", "column", "days", "as_of", "rows", "stale", "unknown", "stale_rate"],
    "integrity": ["entity", "join", "column", "rows", "with_reference", "orphans", "orphan_rate"],
    "validity": ["entity", "column", "rule", "checked", "invalid", "invalid_rate"],
}


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """At load time: the entities exist and as_of is a date."""
    names = params.get("entities") or []
    problems = [
        ("entities", f"unknown entity '{n}'")
        for n in ([names] if isinstance(names, str) else names)
        if isinstance(n, str) and n not in model.entities
    ]
    return problems + check_date(params, "as_of")


def _value(frame: Frame, entity: Entity, name: str) -> exp.Expression:
    """A declared dimension of that name (column-backed or computed), else the raw column."""
    if name in entity.dimensions:
        dim = entity.dimensions[name]
        return qualify(dim.expr, entity.name) if dim.expr is not None else frame.dimension(f"{entity.name}.{name}")
    return frame.column(name)


def _completeness_columns(entity: Entity, rules: QualityRules) -> list[str]:
    if rules.columns:
        return list(rules.columns)
    names = [entity.key] if entity.key else []
    for dim in entity.dimensions.values():
        if isinstance(dim.expr, exp.Column) and dim.name not in names:
            names.append(dim.name)
    return names


def _ratio(part: Any, whole: Any) -> float | None:
    return part / whole if whole else None


class _EntityCheck:
    """The checks of one entity; each method runs its SQL and appends rows to the shared tables."""

    def __init__(self, ctx: AnalysisContext, entity: Entity, as_of: dt.date, rows: dict[str, list[tuple]]) -> None:
        self.ctx, self.entity, self.as_of, self.out = ctx, entity, as_of, rows
        self.rules = entity.quality or QualityRules()

    def profile(self) -> int:
        """One pass over the rows: completeness, validity and staleness counts."""
        frame = self.ctx.frame(self.entity.name)
        columns: dict[str, exp.Expression] = {"rows": exp.Count(this=exp.Star())}
        complete = _completeness_columns(self.entity, self.rules)
        for index, name in enumerate(complete):
            columns[f"nn{index}"] = exp.Count(this=_value(frame, self.entity, name))
        checks: list[tuple[str, str]] = []
        for name, values in self.rules.accepted_values.items():
            value = _value(frame, self.entity, name)
            allowed = [literal(v) for v in values if v is not None]
            columns[f"ck{len(checks)}"] = exp.Count(this=value.copy())
            bad = exp.Not(this=exp.In(this=value.copy(), expressions=allowed)) if allowed else exp.true()
            columns[f"bad{len(checks)}"] = count_if(exp.and_(value.copy().is_(exp.null()).not_(), bad))
            checks.append((name, "accepted_values"))
        for name, (low, high) in self.rules.ranges.items():
            value = _value(frame, self.entity, name)
            outside = [value.copy() < literal(low)] if low is not None else []
            outside += [value.copy() > literal(high)] if high is not None else []
            columns[f"ck{len(checks)}"] = exp.Count(this=value.copy())
            columns[f"bad{len(checks)}"] = count_if(exp.or_(*outside)) if outside else exp.Literal.number(0)
            checks.append((name, "range"))
        if self.rules.staleness is not None:
            name, days = self.rules.staleness
            stamp = _value(frame, self.entity, name)
            cutoff = date_literal(self.as_of - dt.timedelta(days=days))
            old = exp.cast(stamp.copy(), exp.DataType.Type.DATE) < cutoff
            columns["stale"] = count_if(exp.or_(stamp.copy().is_(exp.null()), old))
            columns["unknown"] = count_if(stamp.copy().is_(exp.null()))
        sums = self.ctx.run(frame.select(columns)).records()[0]
        total = sums["rows"]
        for index, name in enumerate(complete):
            non_null = sums[f"nn{index}"]
            self.out["completeness"].append((self.entity.name, name, total, non_null, _ratio(non_null, total)))
        for index, (name, rule) in enumerate(checks):
            checked, bad = sums[f"ck{index}"], sums[f"bad{index}"] or 0
            self.out["validity"].append((self.entity.name, name, rule, checked, bad, _ratio(bad, checked)))
        if self.rules.staleness is not None:
            name, days = self.rules.staleness
            stale = sums["stale"] or 0
            row = (self.entity.name, name, days, self.as_of, total, stale, sums["unknown"] or 0, _ratio(stale, total))
            self.out["staleness"].append(row)
        return total

    def duplicates(self) -> None:
        """Duplicate values of the key and of each natural key; NULLs are missing, never duplicates."""
        keys: list[tuple[str, str, exp.Expression | None]] = []
        if self.entity.key:
            keys.append((self.entity.key, "key", None))
        keys += [(name, "natural key", expr) for name, expr in self.rules.natural_keys.items()]
        for name, kind, expr in keys:
            frame = self.ctx.frame(self.entity.name)
            value = frame.key() if expr is None else qualify(expr, self.entity.name)
            values = frame.select({"v": value}).where(value.copy().is_(exp.null()).not_(), copy=False)
            groups = select({"c": exp.Count(this=exp.Star())}, "dq_values").group_by(col("v"))
            query = select(
                {
                    "non_null": exp.func("COALESCE", exp.Sum(this=col("c")), exp.Literal.number(0)),
                    "distinct": exp.Count(this=exp.Star()),
                    "groups": count_if(col("c") > exp.Literal.number(1)),
                    "dup_rows": exp.Sum(
                        this=exp.Case(
                            ifs=[exp.If(this=col("c") > exp.Literal.number(1), true=col("c"))],
                            default=exp.Literal.number(0),
                        )
                    ),
                },
                "dq_groups",
            )
            sums = self.ctx.run(with_ctes(query, {"dq_values": values, "dq_groups": groups})).records()[0]
            non_null, distinct = sums["non_null"], sums["distinct"]
            row = (
                self.entity.name,
                name,
                kind,
                non_null,
                distinct,
                sums["groups"] or 0,
                sums["dup_rows"] or 0,
                _ratio(non_null - distinct, non_null),
            )
            self.out["duplicates"].append(row)

    def integrity(self) -> None:
        """Per declared join: rows whose foreign key is set but matches no row of the target (as the caller sees it)."""
        for target, join in self.entity.joins.items():
            if target in self.ctx.model.analyses:
                # an analysis's output entity (RFM scores, CLV, ...) joined on automatically: a customer without
                # a score is unscored, not a broken reference
                continue
            frame = self.ctx.frame(self.entity.name)
            target_entity = self.ctx.model.entities[target]
            foreign = frame.key(target)
            keys = exp.select(exp.alias_(col(target_entity.key or "", target), "k", quoted=True)).from_(
                frame.scope.table(target)
            )
            guard = frame.scope.row_filter(target)
            keys = (keys.where(guard) if guard is not None else keys).distinct()
            query = (
                exp.select(
                    exp.alias_(exp.Count(this=exp.Star()), "rows", quoted=True),
                    exp.alias_(exp.Count(this=col("fk", "f")), "with_reference", quoted=True),
                    exp.alias_(
                        count_if(exp.and_(col("fk", "f").is_(exp.null()).not_(), col("k", "t").is_(exp.null()))),
                        "orphans",
                        quoted=True,
                    ),
                )
                .from_(exp.alias_(exp.Subquery(this=frame.select({"fk": foreign})), "f"))
                .join(exp.alias_(exp.Subquery(this=keys), "t"), on=col("fk", "f").eq(col("k", "t")), join_type="left")
            )
            sums = self.ctx.run(query).records()[0]
            orphans = sums["orphans"] or 0
            self.out["integrity"].append(
                (
                    self.entity.name,
                    target,
                    join.on,
                    sums["rows"],
                    sums["with_reference"],
                    orphans,
                    _ratio(orphans, sums["with_reference"]),
                )
            )


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Tables completeness, duplicates, staleness, integrity and validity, one row per entity and column or rule."""
    names = ctx.params.get("entities") or list(ctx.model.entities)
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in ctx.model.entities:
            raise ReferenceNotFound("entity", name, ctx.model.entities)
    as_of = (
        parse_date(ctx.params["as_of"], "quality: as_of") if ctx.params.get("as_of") else dt.datetime.now(dt.UTC).date()
    )
    rows: dict[str, list[tuple]] = {table: [] for table in TABLES}
    total_rows = 0
    for name in names:
        check = _EntityCheck(ctx, ctx.model.entities[name], as_of, rows)
        total_rows += check.profile()
        check.duplicates()
        check.integrity()
    tables = {table: Result(list(columns), rows[table]) for table, columns in TABLES.items()}
    result = AnalysisResult("quality", ctx.name, "Data quality", tables)
    result.figures = _figures(rows, total_rows)
    result.notes = _notes(rows)
    result.charts = [_chart()]
    return result


def _chart() -> dict[str, Any]:
    """Completeness of every column checked, one bar each, grouped by entity."""
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Completeness by column",
        "data": {"name": "completeness"},
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "column", "type": "nominal", "sort": None},
            "x": {
                "field": "completeness",
                "type": "quantitative",
                "axis": {"format": "%"},
                "scale": {"domain": [0, 1]},
            },
            "row": {"field": "entity", "type": "nominal"},
        },
    }


def _figures(rows: dict[str, list[tuple]], total_rows: int) -> list[Figure]:
    cells = sum(r[2] for r in rows["completeness"])
    filled = sum(r[3] for r in rows["completeness"])
    orphans = sum(r[5] for r in rows["integrity"])
    duplicates = sum(r[3] - r[4] for r in rows["duplicates"])
    return [
        Figure("records", "Records checked", total_rows, "integer"),
        Figure("completeness", "Completeness", _ratio(filled, cells), "percent"),
        Figure("duplicates", "Duplicate records", duplicates, "integer"),
        Figure("orphans", "Orphan references", orphans, "integer"),
    ]


def _notes(rows: dict[str, list[tuple]]) -> list[str]:
    """Each failing check in words, and what was not checked because no rule asks for it."""
    notes = [f"{r[0]}.{r[1]}: {r[4]:,} value(s) outside the {RULES[r[2]]}." for r in rows["validity"] if r[4]]
    notes += [
        f"{r[0]}: {r[5]:,} orphan row(s), whose {r[1]} reference matches no record." for r in rows["integrity"] if r[5]
    ]
    notes += [
        f"{r[0]}: {r[3] - r[4]:,} row(s) repeat the {r[1]} of another ({r[2]})."
        for r in rows["duplicates"]
        if r[3] > r[4]
    ]
    if not rows["staleness"]:
        notes.append("Staleness was not checked: no entity checked declares a staleness rule in its quality block.")
    if not rows["validity"]:
        notes.append("Validity was not checked: no entity checked declares accepted values or ranges.")
    return notes


RULES = {"accepted_values": "accepted values", "range": "accepted range"}


METHOD = AnalysisMethod(
    "quality", "Data quality: completeness, duplicates, staleness, orphans, validity.", PARAMETERS, run, check=check
)
