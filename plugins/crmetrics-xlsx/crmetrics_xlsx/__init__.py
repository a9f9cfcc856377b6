"""crmetrics-xlsx: the `xlsx` report format (one sheet per table, with number formats), as a third-party plugin."""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from crmetrics.hookspecs import hookimpl
from crmetrics.reports import RenderRequest, ReportFormat, report_tables

__all__ = ["NUMBER_FORMATS", "register_report_formats", "render_xlsx"]

NUMBER_FORMATS = {
    "currency": "#,##0.00",
    "integer": "#,##0",
    "percent": "0.0%",
    "number": "#,##0.00##",
    "decimal": "#,##0.00",
    "duration": "#,##0.0",
    "id": "0",
    "date": "yyyy-mm-dd",
}
HEADER = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="4F46E5")
MAX_WIDTH = 48
_BAD = re.compile(r"[\[\]:*?/\\]")


def _sheet_name(title: str, taken: set[str]) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique regardless of case."""
    base = _BAD.sub(" ", title).strip() or "Sheet"
    name, n = base[:31], 2
    while name.lower() in taken:
        suffix = f" ({n})"
        name, n = base[: 31 - len(suffix)] + suffix, n + 1
    taken.add(name.lower())
    return name


def _cell(value: Any, fmt: str) -> Any:
    if fmt == "date" and isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value


def _write(sheet: Worksheet, columns: list[dict[str, Any]], rows: list[list[Any]]) -> None:
    sheet.append([c.get("label") or c["name"] for c in columns])
    for cell in sheet[1]:
        cell.font, cell.fill = HEADER, HEADER_FILL
    formats = [c.get("format", "number") for c in columns]
    for row in rows:
        sheet.append([_cell(v, f) for v, f in zip(row, formats, strict=True)])
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        number_format = NUMBER_FORMATS.get(formats[index - 1]) if column.get("numeric") or column.get("time") else None
        if number_format:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = number_format
        width = max([len(str(column.get("label") or column["name"]))] + [len(str(r[index - 1])) for r in rows[:200]])
        sheet.column_dimensions[letter].width = min(MAX_WIDTH, width + 3)
    sheet.freeze_panes = "A2"
    if rows:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"


def _summary(sheet: Worksheet, document: dict[str, Any]) -> None:
    sheet.append([document["title"]])
    sheet["A1"].font = Font(bold=True, size=14)
    params = document["parameters"]
    if params.get("period"):
        sheet.append(["Period", params["period"]["label"]])
        sheet.append(["Compared with", params["previous_period"]["label"]])
    if params.get("segments"):
        sheet.append(["Segments", ", ".join(params["segments"])])
    if params.get("where"):
        sheet.append(["Filter", params["where"]])
    sheet.append(["Generated", document["generated_at"]])
    sheet.append([])
    sheet.append(["KPI", "Value", "Previous", "Change"])
    for cell in sheet[sheet.max_row]:
        cell.font, cell.fill = HEADER, HEADER_FILL
    for section in document["sections"]:
        for tile in section.get("tiles", []):
            sheet.append([tile["label"], tile["value"], tile["previous"], tile["change"]])
            fmt = NUMBER_FORMATS.get(tile["format"], NUMBER_FORMATS["number"])
            row = sheet.max_row
            sheet.cell(row, 2).number_format = sheet.cell(row, 3).number_format = fmt
            sheet.cell(row, 4).number_format = "+0.0%;-0.0%;0.0%"
        for figure in section.get("figures", []):
            sheet.append([f"{section['title']}: {figure['label']}", figure["value"]])
            sheet.cell(sheet.max_row, 2).number_format = NUMBER_FORMATS.get(figure["format"], "General")
    sheet.column_dimensions["A"].width = 44
    for letter in "BCD":
        sheet.column_dimensions[letter].width = 18


def render_xlsx(request: RenderRequest) -> bytes:
    """The report as an xlsx workbook: a Summary sheet, then one sheet per table."""
    book = Workbook()
    summary = book.active
    summary.title = "Summary"
    taken = {"summary"}
    _summary(summary, request.document)
    for name, table in report_tables(request.document):
        title = table.get("title") or name
        sheet = book.create_sheet(_sheet_name(f"{name[:2]} {title}", taken))
        _write(sheet, table["columns"], table["rows"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


XLSX = ReportFormat("xlsx", "Excel workbook: one sheet per table, with number formats", ".xlsx", render_xlsx)


@hookimpl
def register_report_formats(register: Callable[[ReportFormat], None]) -> None:
    """Register the xlsx format."""
    register(XLSX)
