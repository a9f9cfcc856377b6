"""Vega-Lite specifications for the report's chart kinds, built from a plain table.

Data goes into the spec as `data.values` under short safe field names (`x`, `y`, `series`, `value`): Vega-Lite
reads a dot in a field name as nested access, and our column names (`customers.region`, `metric_time:month`) have
dots and colons. Axis titles carry the human labels instead. Quadrant lines are computed here and written as
`datum` rules, so both renderers (vl-convert and the built-in one) draw exactly the same lines.
"""

from __future__ import annotations

import copy
import datetime as dt
import statistics
from typing import Any

from crmetrics.reports.formatting import short_number

__all__ = ["SCHEMA", "chart_spec", "resolve_data", "time_label"]

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
WIDTH, HEIGHT = 760, 230
TIME_FORMATS = {"day": "%d %b %Y", "week": "%d %b %Y", "month": "%b %Y", "quarter": "Q%q %Y", "year": "%Y"}
CONFIG = {
    "font": "Inter, Segoe UI, Helvetica, Arial, sans-serif",
    "view": {"stroke": None},
    "mark": {"color": "#4f46e5"},
    "axis": {"labelColor": "#475467", "titleColor": "#344054", "gridColor": "#eaecf0", "domainColor": "#d0d5dd"},
    "legend": {"labelColor": "#475467", "titleColor": "#344054", "orient": "top"},
    "range": {"category": ["#4f46e5", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#f97316"]},
}


def time_label(value: Any, grain: str | None) -> str:
    """An ISO date as the axis shows it at `grain` (Jan 2024, Q1 2024, 2024)."""
    try:
        day = dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    if grain == "year":
        return str(day.year)
    if grain == "quarter":
        return f"Q{(day.month - 1) // 3 + 1} {day.year}"
    if grain == "month":
        return day.strftime("%b %Y")
    return day.isoformat()


MISSING = "—"  # a missing category, shown as tables show a NULL


def _category(value: Any) -> str:
    return MISSING if value is None else str(value)


def _grain(column: dict[str, Any]) -> str | None:
    if not column.get("time"):
        return None
    grain = column["name"].partition(":")[2]
    return grain or "day"


def _base(data: list[dict[str, Any]], mark: Any, encoding: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "$schema": SCHEMA,
        "width": WIDTH,
        "height": HEIGHT,
        "data": {"values": data},
        "mark": mark,
        "encoding": encoding,
        "config": CONFIG,
        **extra,
    }


def _quant(title: str, fmt: str) -> dict[str, Any]:
    axis: dict[str, Any] = {"title": title}
    if fmt == "percent":
        axis["format"] = ".0%"
    elif fmt in ("currency", "integer", "number"):
        axis["format"] = "~s"
    return {"field": "y", "type": "quantitative", "axis": axis}


def chart_spec(kind: str, table: dict[str, Any], by: list[str], metrics: list[str], quadrant: str = "median") -> dict:
    """The Vega-Lite spec of a report chart of `kind` over `table` (columns: `by` then `metrics`)."""
    cols = {c["name"]: c for c in table["columns"]}
    rows = [dict(zip(cols, row, strict=True)) for row in table["rows"]]
    if kind == "scatter":
        return _scatter(rows, cols, by, metrics, quadrant)
    if kind == "funnel":
        return _funnel(rows, cols, by, metrics)
    x = cols[by[0]]
    grain = _grain(x)
    if kind == "heatmap":
        return _heatmap(rows, cols, by, metrics[0])
    data = []
    for row in rows:
        for metric in metrics:
            series = cols[metric]["label"] if len(by) == 1 else row[by[1]]
            xv = row[by[0]] if kind == "line" and grain else time_label(row[by[0]], grain) if grain else row[by[0]]
            data.append(
                {
                    "x": MISSING if xv is None else xv,
                    "series": MISSING if series is None else series,
                    "y": row[metric],
                }
            )
    many = len(metrics) > 1 or len(by) > 1
    y = _quant(cols[metrics[0]]["label"] if len(metrics) == 1 else "", cols[metrics[0]]["format"])
    color = {"field": "series", "type": "nominal", "title": cols[by[1]]["label"] if len(by) > 1 else None}
    if kind == "line":
        xenc: dict[str, Any] = (
            {
                "field": "x",
                "type": "temporal",
                "timeUnit": "utcyearmonthdate",
                "axis": {"title": None, "format": TIME_FORMATS[grain], "formatType": "utc"},
            }
            if grain
            else {"field": "x", "type": "ordinal", "sort": None, "axis": {"title": x["label"]}}
        )
        enc = {"x": xenc, "y": y, **({"color": color} if many else {})}
        return _base(data, {"type": "line", "point": True, "strokeWidth": 2}, enc)
    sort = None if grain else "-y" if not many else None
    xenc = {
        "field": "x",
        "type": "ordinal" if grain else "nominal",
        "sort": sort,
        "axis": {"title": None if grain else x["label"], "labelAngle": -40 if len(rows) > 8 else 0},
    }
    enc = {"x": xenc, "y": y}
    if many:
        enc["color"] = color
        if kind == "bar":
            enc["xOffset"] = {"field": "series"}
    return _base(data, {"type": "bar", "cornerRadiusEnd": 2}, enc)


def _heatmap(rows: list[dict], cols: dict[str, dict], by: list[str], metric: str) -> dict[str, Any]:
    gx, gy = _grain(cols[by[0]]), _grain(cols[by[1]])
    fmt = cols[metric]["format"]
    numbers = [r[metric] for r in rows if isinstance(r[metric], int | float)]
    low, high = min(numbers, default=0), max(numbers, default=0)
    data = [
        {
            "x": time_label(r[by[0]], gx) if gx else _category(r[by[0]]),
            "y": time_label(r[by[1]], gy) if gy else _category(r[by[1]]),
            "value": r[metric],
            "label": short_number(r[metric], fmt),
        }
        for r in rows
    ]
    enc = {
        "x": {"field": "x", "type": "ordinal", "sort": None, "axis": {"title": cols[by[0]]["label"]}},
        "y": {"field": "y", "type": "ordinal", "sort": None, "axis": {"title": cols[by[1]]["label"]}},
    }
    layer = [
        {
            "mark": "rect",
            "encoding": {
                "color": {
                    "field": "value",
                    "type": "quantitative",
                    "title": cols[metric]["label"],
                    "scale": {"scheme": "blues"},
                    "legend": {"format": "~s"},
                }
            },
        },
        {
            "mark": {"type": "text", "fontSize": 10},
            "encoding": {
                "text": {"field": "label"},
                "color": {
                    "condition": {"test": {"field": "value", "gt": (low + high) / 2}, "value": "#ffffff"},
                    "value": "#101828",
                },
            },
        },
    ]
    spec = _base(data, None, enc, layer=layer)
    del spec["mark"]
    return spec


def _scatter(rows: list[dict], cols: dict[str, dict], by: list[str], metrics: list[str], quadrant: str) -> dict:
    mx, my = metrics
    data = [
        {"label": " / ".join(_category(r[b]) for b in by), "x": r[mx], "y": r[my]}
        for r in rows
        if r[mx] is not None and r[my] is not None
    ]
    center = statistics.median if quadrant == "median" else statistics.fmean
    xs, ys = [d["x"] for d in data], [d["y"] for d in data]
    # a quadrant is read around its centre lines, not from zero
    x_axis = _quant(cols[mx]["label"], cols[mx]["format"]) | {"field": "x", "scale": {"zero": False}}
    y_axis = _quant(cols[my]["label"], cols[my]["format"]) | {"scale": {"zero": False}}
    layer: list[dict[str, Any]] = [
        {
            "mark": {"type": "circle", "size": 70, "opacity": 0.8},
            "encoding": {"x": x_axis, "y": y_axis, "tooltip": [{"field": "label"}, {"field": "x"}, {"field": "y"}]},
        },
    ]
    if data:
        rule = {"type": "rule", "strokeDash": [4, 4], "color": "#98a2b3"}
        layer.append({"mark": rule, "encoding": {"x": {"datum": center(xs)}}})
        layer.append({"mark": rule, "encoding": {"y": {"datum": center(ys)}}})
    if len(data) <= 25:
        layer.append(
            {
                "mark": {"type": "text", "dx": 7, "align": "left", "fontSize": 10, "color": "#475467"},
                "encoding": {"x": x_axis, "y": y_axis, "text": {"field": "label"}},
            }
        )
    spec = _base(data, None, {}, layer=layer)
    del spec["mark"], spec["encoding"]
    return spec


def _funnel(rows: list[dict], cols: dict[str, dict], by: list[str], metrics: list[str]) -> dict[str, Any]:
    if by:
        stages = [(str(r[by[0]]), r[metrics[0]]) for r in rows]
        fmt = cols[metrics[0]]["format"]
    else:
        stages = [(cols[m]["label"], rows[0][m] if rows else None) for m in metrics]
        fmt = cols[metrics[0]]["format"]
    first = stages[0][1] if stages else None
    data = []
    for stage, value in stages:
        share = f" ({value / first:.0%})" if first and value is not None else ""
        data.append({"stage": stage, "value": value, "label": f"{short_number(value, fmt)}{share}"})
    enc = {
        "y": {"field": "stage", "type": "nominal", "sort": None, "axis": {"title": None}},
        "x": {"field": "value", "type": "quantitative", "axis": {"title": None, "format": "~s", "tickCount": 5}},
    }
    layer = [
        {"mark": {"type": "bar", "cornerRadiusEnd": 3, "color": "#4f46e5"}},
        {
            "mark": {"type": "text", "align": "left", "dx": 4, "color": "#344054"},
            "encoding": {"text": {"field": "label"}},
        },
    ]
    spec = _base(data, None, enc, layer=layer)
    del spec["mark"]
    return spec


CHANNELS = ("x", "y", "color", "size", "theta")


def label_channels(spec: dict[str, Any], columns: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """A copy of an analysis's spec whose channels carry their column's label and, for shares, a percent format.

    `columns` maps each table name to its columns' metadata (label, format), as the report tables have them; a
    channel that already sets its title or format keeps it.
    """
    spec = copy.deepcopy(spec)

    def visit(node: Any, table: dict[str, dict[str, Any]]) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item, table)
            return
        if not isinstance(node, dict):
            return
        data = node.get("data")
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            table = columns.get(data["name"], {})
        encoding = node.get("encoding")
        for name in CHANNELS if isinstance(encoding, dict) else ():
            channel = encoding.get(name)
            meta = table.get(channel.get("field", "")) if isinstance(channel, dict) else None
            if meta is None or channel.get("aggregate") == "count":
                continue
            channel.setdefault("title", meta["label"])
            if meta.get("format") == "percent":
                guide = "legend" if name in ("color", "size") else "axis"
                if isinstance(channel.get(guide, {}), dict):
                    channel[guide] = {"format": "%", **channel.get(guide, {})}
        for key in ("layer", "spec"):
            visit(node.get(key), table)

    visit(spec, {})
    return spec


def resolve_data(spec: dict[str, Any], tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A copy of an analysis's spec with every `data: {name: table}` replaced by the table's rows."""
    spec = copy.deepcopy(spec)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and isinstance(data.get("name"), str) and data["name"] in tables:
                node["data"] = {"values": tables[data["name"]]}
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(spec)
    spec.setdefault("$schema", SCHEMA)
    spec.setdefault("config", CONFIG)
    if "layer" not in spec and "facet" not in spec and "concat" not in spec:
        spec.setdefault("width", WIDTH)
        spec.setdefault("height", HEIGHT)
    return spec
