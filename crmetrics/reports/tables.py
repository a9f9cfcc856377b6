"""Query results as plain report tables: labelled, typed columns and JSON-ready rows."""

from __future__ import annotations

from typing import Any

from crmetrics.model.references import RefSyntaxError, parse_ref
from crmetrics.model.types import SemanticModel
from crmetrics.result import Result, plain

__all__ = ["column_meta", "humanize", "table_data"]


def humanize(name: str) -> str:
    """`won_amount` → `Won amount`; `customers.region` → `Region`; `metric_time:month` → `Month`."""
    if name.startswith("metric_time"):
        return (name.partition(":")[2] or "time").capitalize()
    base = name.rpartition(".")[2].partition(":")[0]
    text = base.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def column_meta(model: SemanticModel | None, name: str, values: list[Any]) -> dict[str, Any]:
    """Label, format and kind of a column named by a metric, a dimension reference or anything else."""
    numeric = bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values if v is not None
    )
    numeric = numeric and any(v is not None for v in values)
    # identifiers are numbers but not quantities: no thousands separators
    kind = "id" if name == "id" or name.endswith(("_id", ".id")) else "number"
    if kind == "number" and any(isinstance(v, float) and not v.is_integer() for v in values):
        kind = "decimal"  # one format for the whole column: 5,987.00 next to 5,929.47, not 5,987
    meta: dict[str, Any] = {"name": name, "label": humanize(name), "format": kind, "numeric": numeric}
    if model is None:
        return meta
    metric = model.metrics.get(name)
    if metric is not None:
        return {**meta, "label": metric.label or humanize(name), "format": metric.format, "numeric": True}
    try:
        ref = parse_ref(name)
    except RefSyntaxError:
        return meta
    if ref.is_metric_time:
        return {**meta, "format": "date", "numeric": False, "time": True}
    dim = model.dimension(ref.entity or "", ref.name)
    if dim is None:
        return meta
    label = dim.label or humanize(name)
    if ref.grain:
        label = f"{label} ({ref.grain})"
    return {**meta, "label": label, "format": "date" if dim.is_time else meta["format"], "time": dim.is_time}


def table_data(result: Result, model: SemanticModel | None, name: str = "", title: str = "") -> dict[str, Any]:
    """A `Result` as a plain table: `columns` (name, label, format, numeric) and `rows` of JSON values."""
    rows = [[plain(v) for v in row] for row in result.rows]
    columns = [column_meta(model, c, [r[i] for r in rows]) for i, c in enumerate(result.columns)]
    return {"name": name, "title": title or humanize(name) if name else title, "columns": columns, "rows": rows}


def records(table: dict[str, Any]) -> list[dict[str, Any]]:
    """A plain table as row objects keyed by column name."""
    names = [c["name"] for c in table["columns"]]
    return [dict(zip(names, row, strict=True)) for row in table["rows"]]
