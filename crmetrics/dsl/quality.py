"""The `quality:` block of an entity: its schema and its resolution into `QualityRules` (issues collected)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmetrics.dsl.schema import AnyValue, Field, ListOf, MapOf, Num, Obj, Str
from crmetrics.dsl.yamlfile import YMap
from crmetrics.model.quality import NORMALIZERS, QualityRules, normalized

if TYPE_CHECKING:
    from crmetrics.dsl.build import ModelBuilder

NATURAL_KEY = Obj(
    description="An expression over the entity's columns, or a column with a normaliser.",
    fields={
        "expr": Field(Str(description="SQL expression over this entity's columns, e.g. lower(trim(email)).")),
        "column": Field(Str(description="A column of this entity.")),
        "normalize": Field(Str(enum=NORMALIZERS, description="text: trim + lower; email: lower, no spaces; phone.")),
    },
    shorthand="expr",
    one_of=("expr", "column"),
)

QUALITY = Obj(
    description="Data-quality rules checked by the `quality` analysis.",
    fields={
        "columns": Field(ListOf(item=Str(), description="Columns whose completeness is measured (default: all).")),
        "natural_keys": Field(MapOf(NATURAL_KEY)),
        "accepted_values": Field(MapOf(ListOf(item=AnyValue(), min_items=1, description="Allowed values."))),
        "ranges": Field(MapOf(Obj(fields={"min": Field(AnyValue()), "max": Field(AnyValue())}))),
        "staleness": Field(
            Obj(
                fields={
                    "column": Field(Str(description="When the record was last updated."), required=True),
                    "days": Field(Num(integer=True, minimum=0, description="Older than this is stale."), required=True),
                }
            )
        ),
    },
)


def build_quality(builder: ModelBuilder, entity: str, raw: Any, path: tuple) -> QualityRules | None:
    """The entity's quality rules, or None when it declares none; bad natural-key expressions become issues."""
    if not isinstance(raw, dict):
        return None
    keys = {}
    raw_keys = raw.get("natural_keys") if isinstance(raw.get("natural_keys"), dict) else {}
    for name, spec in raw_keys.items():
        where = (*path, "natural_keys", name)
        loc = raw_keys.value_loc(name) if isinstance(raw_keys, YMap) else None
        spec = {"expr": spec} if isinstance(spec, str) else spec if isinstance(spec, dict) else {}
        if isinstance(spec.get("expr"), str):
            expr = builder.expression(spec["expr"], loc, where)
            if expr is not None and builder.own_columns(entity, expr, loc, where):
                keys[name] = expr
        elif isinstance(spec.get("column"), str):
            keys[name] = normalized(spec["column"], spec.get("normalize", "exact"))
    staleness = raw.get("staleness")
    stale = None
    if (
        isinstance(staleness, dict)
        and isinstance(staleness.get("column"), str)
        and isinstance(staleness.get("days"), int)
    ):
        stale = (staleness["column"], staleness["days"])
    ranges = {
        column: (spec.get("min"), spec.get("max"))
        for column, spec in (raw.get("ranges") or {}).items()
        if isinstance(spec, dict)
    }
    accepted = {
        column: tuple(values)
        for column, values in (raw.get("accepted_values") or {}).items()
        if isinstance(values, list)
    }
    columns = tuple(c for c in raw.get("columns") or () if isinstance(c, str))
    return QualityRules(columns, keys, accepted, ranges, stale)
