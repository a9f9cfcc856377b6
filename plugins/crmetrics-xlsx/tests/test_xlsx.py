"""The xlsx format: found through its entry point, one sheet per table, number formats, every row."""

from __future__ import annotations

import datetime as dt
import io
import textwrap
from pathlib import Path

import crmetrics_xlsx
import duckdb
import pytest
from openpyxl import load_workbook

import crmetrics
from crmetrics.plugins import get_plugin_manager
from crmetrics.reports import render_report

PROJECT = """
version: 1
name: xlsx_test
connection: duckdb:///crm.duckdb
entities:
  orders:
    table: orders
    key: order_id
    time: ordered_at
    dimensions:
      order_id: {type: number}
      channel: {}
      ordered_at: {type: time}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
metrics:
  revenue: {measure: orders.revenue, format: currency}
  order_count: {measure: orders.order_count, format: integer}
  online_revenue: {measure: orders.revenue, filter: "orders.channel = 'online'", format: currency}
  online_share: {ratio: [online_revenue, revenue], format: percent}
reports:
  r:
    title: "A very long report title: with [brackets] and / slashes"
    parameters: {period: {start: "2024-01-01", end: "2024-12-31"}}
    sections:
      - {type: kpis, title: KPIs, metrics: [revenue, order_count, online_share], trend: 0}
      - type: table
        title: Revenue by channel, a title much longer than Excel allows
        metrics: [revenue, online_share]
        by: [orders.channel]
      - type: table
        title: Revenue by channel, a title much longer than Excel allows
        metrics: [order_count]
        by: [orders.channel]
      - type: drilldown
        title: Orders
        entity: orders
        columns: [orders.order_id, orders.ordered_at, orders.channel]
        order_by: [orders.order_id]
        limit: 1000
"""


@pytest.fixture()
def project(tmp_path: Path):
    con = duckdb.connect(str(tmp_path / "crm.duckdb"))
    con.execute("CREATE TABLE orders (order_id INT, ordered_at TIMESTAMP, amount DECIMAL(10, 2), channel VARCHAR)")
    rows = [
        (i, dt.datetime(2024, 1 + i % 12, 1 + i % 28, 9), 10 + i, ("online", "store", None)[i % 3]) for i in range(300)
    ]
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", rows)
    con.close()
    (tmp_path / "crmetrics.yml").write_text(textwrap.dedent(PROJECT), encoding="utf-8")
    project = crmetrics.load(tmp_path / "crmetrics.yml")
    yield project
    project.close()


def test_registered_through_the_entry_point() -> None:
    registry = get_plugin_manager()[1]
    assert "xlsx" in registry.of("report format")
    assert registry.owners[("report format", "xlsx")].startswith("crmetrics-xlsx")
    assert registry.problems == [] or all("xlsx" not in p.plugin for p in registry.problems)


def test_one_sheet_per_table_with_number_formats(project, tmp_path: Path) -> None:
    path = render_report(project, "r", "xlsx", tmp_path / "r.xlsx")
    book = load_workbook(io.BytesIO(path.read_bytes()))
    names = book.sheetnames
    assert names[0] == "Summary" and len(names) == 5  # summary, kpi tiles, two tables, the drill-down
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)
    assert len({n.lower() for n in names}) == len(names)
    summary = book["Summary"]
    assert summary["A1"].value.startswith("A very long report title")
    revenue_row = next(r for r in summary.iter_rows() if r[0].value == "Revenue")
    assert revenue_row[1].value == pytest.approx(sum(10 + i for i in range(300)))
    assert revenue_row[1].number_format == "#,##0.00"
    share_row = next(r for r in summary.iter_rows() if r[0].value == "Online share")
    assert share_row[1].number_format == "0.0%"
    table = book[names[2]]
    assert [c.value for c in table[1]] == ["Channel", "Revenue", "Online share"]
    by_channel = {r[0].value: r for r in table.iter_rows(min_row=2)}
    expected = sum(10 + i for i in range(300) if i % 3 == 0)
    assert (
        by_channel["online"][1].value == pytest.approx(expected) and by_channel["online"][1].number_format == "#,##0.00"
    )
    assert by_channel[None][2].value == 0  # the NULL channel keeps its row (none of its revenue is online)
    orders = book[names[4]]
    assert orders.max_row == 301  # every row, not the HTML's first few
    assert orders["B2"].is_date and orders["B2"].number_format == "yyyy-mm-dd"
    assert orders["A2"].number_format == "0" and orders.freeze_panes == "A2"


def test_render_returns_bytes_and_formats_match_the_doc() -> None:
    assert crmetrics_xlsx.XLSX.extension == ".xlsx"
    assert set(crmetrics_xlsx.NUMBER_FORMATS) >= {"currency", "integer", "percent", "number", "date"}
