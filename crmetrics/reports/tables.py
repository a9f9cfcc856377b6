"""Query results as plain report tables: labelled, typed columns and JSON-ready rows."""

from __future__ import annotations

from typing import Any

from crmetrics.model.references import RefSyntaxError, parse_ref
from crmetrics.model.types import SemanticModel
from crmetrics.result import Result, plain

__all__ = ["analysis_column_meta", "analysis_metrics", "column_meta", "humanize", "table_data"]

# abbreviations readers know in capitals: `clv` → `CLV`, `p_alive` stays words
ACRONYMS = {"aov": "AOV", "clv": "CLV", "csat": "CSAT", "nps": "NPS", "rfm": "RFM", "roi": "ROI", "id": "ID"}
ACRONYMS |= {"r": "R", "f": "F", "m": "M", "p75": "75th percentile", "p90": "90th percentile"}  # RFM means, quantiles
# analysis result columns whose values are fractions of one (shown as percentages) or amounts of money
PERCENT_WORDS = ("share", "rate", "rate_low", "rate_high", "completeness", "support", "confidence", "leverage",
                 "probability", "csat", "csat_low", "csat_high", "conversion_step", "conversion_overall", "p_alive",
                 "retention", "margin")  # fmt: skip
CURRENCY_WORDS = ("revenue", "monetary", "amount", "clv", "aov", "forecast", "deal_size")


def humanize(name: str) -> str:
    """`won_amount` → `Won amount`; `customers.region` → `Region`; `metric_time:month` → `Month`; `clv` → `CLV`."""
    if name.startswith("metric_time"):
        return (name.partition(":")[2] or "time").capitalize()
    base = name.rpartition(".")[2].partition(":")[0]
    words = [ACRONYMS.get(w, w) for w in base.replace("_", " ").split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _suffix(name: str, words: tuple[str, ...]) -> bool:
    return any(name == w or name.endswith(f"_{w}") for w in words)


def analysis_metrics(model: SemanticModel, params: dict[str, Any]) -> frozenset[str]:
    """The metrics an analysis was given: every metric name among its parameters' strings. A parameter naming an
    entity (`entity: customers`) is not the metric that shares its name."""
    return frozenset(m for m in _strings(params) if m in model.metrics and m not in model.entities)


def _strings(params: dict[str, Any]) -> frozenset[str]:
    """Every string in an analysis's parameters (nested lists included): the metrics it was given are among them."""
    found: set[str] = set()
    stack: list[Any] = [params]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return frozenset(found)


def analysis_column_meta(
    model: SemanticModel | None, name: str, values: list[Any], metrics: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Label and format of an analysis result column.

    The column names are the analysis's own (`customers`, `share`, `clv`), so a metric of the same name is used
    only when the analysis was asked for it (`metrics`): a count column `customers` is not the metric "New
    customers". Otherwise the name decides: shares and rates are percentages, amounts are currency.
    """
    if name in metrics or "." in name or name.startswith("metric_time"):
        return column_meta(model, name, values)
    meta = column_meta(None, name, values)
    if not meta["numeric"] or meta["format"] == "id":
        return meta
    if _suffix(name, PERCENT_WORDS):
        return {**meta, "format": "percent"}
    if name == "value" or _suffix(name, CURRENCY_WORDS):
        return {**meta, "format": "currency"}
    return meta


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
        # a plain-number metric with fractions in the column shows two decimals on every row (30.00 next to 27.36)
        fmt = meta["format"] if metric.format == "number" and meta["format"] == "decimal" else metric.format
        return {**meta, "label": metric.label or humanize(name), "format": fmt, "numeric": True}
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


def table_data(
    result: Result,
    model: SemanticModel | None,
    name: str = "",
    title: str = "",
    analysis_metrics: frozenset[str] | None = None,
) -> dict[str, Any]:
    """A `Result` as a plain table: `columns` (name, label, format, numeric) and `rows` of JSON values.

    `analysis_metrics` marks an analysis's table: its columns are labelled by `analysis_column_meta`, and only
    these metrics (the ones the analysis was given) lend their label and format.
    """
    rows = [[plain(v) for v in row] for row in result.rows]
    if analysis_metrics is None:
        columns = [column_meta(model, c, [r[i] for r in rows]) for i, c in enumerate(result.columns)]
    else:
        columns = [
            analysis_column_meta(model, c, [r[i] for r in rows], analysis_metrics) for i, c in enumerate(result.columns)
        ]
    return {"name": name, "title": title or humanize(name) if name else title, "columns": columns, "rows": rows}


def records(table: dict[str, Any]) -> list[dict[str, Any]]:
    """A plain table as row objects keyed by column name."""
    names = [c["name"] for c in table["columns"]]
    return [dict(zip(names, row, strict=True)) for row in table["rows"]]
