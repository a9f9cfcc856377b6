"""The built-in report formats, registered through the same hook as a third-party format: html, md, json, csv."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from crmetrics.hookspecs import hookimpl
from crmetrics.reports.base import RenderRequest, ReportFormat
from crmetrics.reports.tables import records


def sparkline(values: list[Any], width: int = 120, height: int = 32) -> str:
    """A tiny trend line as inline SVG (a path and its last point); empty when there are fewer than 2 numbers."""
    points = [(i, float(v)) for i, v in enumerate(values) if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(points) < 2:
        return ""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span, last = (high - low) or 1.0, len(values) - 1 or 1

    def xy(i: int, v: float) -> tuple[float, float]:
        return 2 + i / last * (width - 4), height - 3 - (v - low) / span * (height - 6)

    coords = [xy(i, v) for i, v in points]
    path = " ".join(f"{'M' if n == 0 else 'L'}{x:.1f},{y:.1f}" for n, (x, y) in enumerate(coords))
    area = f"{path} L{coords[-1][0]:.1f},{height} L{coords[0][0]:.1f},{height} Z"
    cx, cy = coords[-1]
    return (
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="trend"><path d="{area}" class="spark-area"/><path d="{path}" class="spark-line"/>'
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.5" class="spark-dot"/></svg>'
    )


def _with_svgs(request: RenderRequest) -> dict[str, Any]:
    """The document with each chart's SVG and each tile's sparkline added. Only the dicts that change are copied:
    a deep copy of an analysis's full tables (every customer) would cost more than drawing the page."""
    sections = []
    for original in request.document["sections"]:
        section = dict(original)
        if section["type"] == "chart":
            section["svg"] = request.chart_svg(section)
        if "charts" in section:
            section["charts"] = [{**chart, "svg": request.chart_svg(chart)} for chart in section["charts"]]
        if "tiles" in section:
            section["tiles"] = [{**tile, "spark_svg": sparkline(tile["spark"])} for tile in section["tiles"]]
        sections.append(section)
    return {**request.document, "sections": sections}


def render_html(request: RenderRequest) -> str:
    """One self-contained page: inline CSS, inline SVG charts, no external requests."""
    css = request.template("report.css")
    script = request.template("interactive.js") if request.options.get("interactive") else ""
    return request.template(
        "report.html.j2", report=_with_svgs(request), css=css, script=script, options=dict(request.options)
    )


def render_md(request: RenderRequest) -> str:
    return request.template("report.md.j2", report=request.document)


def _json_ready(document: dict[str, Any]) -> dict[str, Any]:
    """Tables as arrays of row objects (with their column metadata alongside), as `analyze --format json` has them.
    Builds new containers all the way down, so the document itself is left as it was."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            if "columns" in node and "rows" in node and isinstance(node["rows"], list):
                return {**{k: convert(v) for k, v in node.items() if k != "rows"}, "rows": records(node)}
            return {k: convert(v) for k, v in node.items()}
        if isinstance(node, list):
            return [convert(v) for v in node]
        return node

    return convert(document)


def render_json(request: RenderRequest) -> str:
    return json.dumps(_json_ready(request.document), indent=2, ensure_ascii=False, default=str) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "table"


def _csv(columns: list[str], rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


def report_tables(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every table of a report with a unique file-friendly name, in page order (KPI tiles become a table too)."""
    found: list[tuple[str, dict[str, Any]]] = []
    for number, section in enumerate(document["sections"], start=1):
        prefix = f"{number:02d}-{_slug(section.get('title') or section['type'])}"
        if section["type"] == "kpis":
            # delta: value - previous, which is how a percent or score metric's change reads (pp, pts)
            names = ("metric", "value", "previous", "delta", "change")
            columns = [{"name": n, "label": n, "format": "number", "numeric": n != "metric"} for n in names]
            rows = [[t[n] for n in names] for t in section["tiles"]]
            found.append((prefix, {"columns": columns, "rows": rows, "title": section.get("title", "")}))
        if "table" in section:
            found.append((prefix, section["table"]))
        for table in section.get("tables", []):
            found.append((f"{prefix}-{_slug(table['name'])}", table))
        if section.get("figures"):
            columns = [
                {"name": n, "label": n, "format": "number", "numeric": n == "value"}
                for n in ("name", "label", "value", "format")
            ]
            rows = [[f["name"], f["label"], f["value"], f["format"]] for f in section["figures"]]
            found.append((f"{prefix}-figures", {"columns": columns, "rows": rows, "title": "Figures"}))
    return found


def render_csv(request: RenderRequest) -> dict[str, str]:
    """A folder: one CSV per table, named by position and title, plus an index."""
    files = {}
    index = [["file", "title"]]
    for name, table in report_tables(request.document):
        files[f"{name}.csv"] = _csv([c["name"] for c in table["columns"]], table["rows"])
        index.append([f"{name}.csv", table.get("title", "")])
    files["index.csv"] = _csv(index[0], index[1:])
    return files


FORMATS = (
    ReportFormat("html", "One self-contained HTML page with inline SVG charts", ".html", render_html),
    ReportFormat("md", "Markdown: figures, tables and chart data", ".md", render_md),
    ReportFormat("json", "Machine-readable JSON: every table, figure and chart spec", ".json", render_json),
    ReportFormat("csv", "A folder with one CSV file per table", "", render_csv),
)


@hookimpl
def register_report_formats(register: Any) -> None:
    for report_format in FORMATS:
        register(report_format)
