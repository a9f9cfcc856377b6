"""A small CRM in DuckDB and a project with reports over it, for the report tests.

The rows are chosen to hit the edges: a NULL amount, an order whose customer is unknown, a NULL region, unicode and
HTML-looking names, timestamps on the last second of the period and on the first second after it, ties.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import duckdb

T = dt.datetime
CUSTOMERS = [
    (1, "Ana", "north", "ana@example.com"),
    (2, "Bé Ünïcødé", "south", "be@example.com"),
    (3, "<script>alert(1)</script>", None, None),
    (4, "李雷", "north", "BE@example.com "),
    (5, "Dan (no orders)", "south", "dan@example.com"),
]
ORDERS = [
    (1, 1, T(2023, 1, 15, 10), 100.00, "online"),
    (2, 1, T(2023, 12, 31, 23, 59, 59), 50.00, "store"),
    (3, 2, T(2024, 1, 1, 0, 0, 0), 200.00, "online"),
    (4, 2, T(2024, 3, 10, 12), None, "online"),
    (5, 3, T(2024, 6, 30, 8), 75.50, "store"),
    (6, 4, T(2024, 12, 31, 23, 59, 59), 200.00, "online"),
    (7, 99, T(2024, 7, 4, 9), 30.00, "phone"),  # orphan: customer 99 does not exist
    (8, 4, T(2025, 1, 1, 0, 0, 0), 999.00, "online"),  # the first second after the period
    (9, 1, T(2024, 2, 29, 12), 125.25, "store"),
]
TICKETS = [
    (1, 1, T(2024, 2, 1), None, "urgent", 5),
    (2, 3, T(2024, 5, 1), T(2024, 5, 2), "low", None),
    (3, 4, T(2023, 8, 1), None, "urgent", 2),
]

PROJECT = """
version: 1
name: report_test
connection: duckdb:///crm.duckdb
entities:
  customers:
    table: customers
    key: customer_id
    dimensions:
      name: {}
      region: {}
      email: {}
    measures:
      customer_count: {agg: count}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins:
      customers: {on: customer_id}
    dimensions:
      order_id: {type: number}
      channel: {}
      amount: {type: number}
      ordered_at: {type: time}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
      buyers: {agg: count_distinct, expr: customer_id}
  tickets:
    table: tickets
    key: ticket_id
    time: opened_at
    joins:
      customers: {on: customer_id}
    dimensions:
      ticket_id: {type: number}
      priority: {}
      is_open: {expr: closed_at IS NULL, type: boolean}
      opened_at: {type: time}
    measures:
      ticket_count: {agg: count}
      avg_csat: {agg: avg, expr: csat}
metrics:
  revenue: {measure: orders.revenue, format: currency, label: Revenue}
  order_count: {measure: orders.order_count, format: integer}
  buyers: {measure: orders.buyers, format: integer}
  aov: {ratio: [revenue, order_count], format: currency, label: Average order value}
  online_revenue: {measure: orders.revenue, filter: "orders.channel = 'online'", format: currency}
  online_share: {ratio: [online_revenue, revenue], format: percent}
  tickets: {measure: tickets.ticket_count, format: integer}
  csat: {measure: tickets.avg_csat}
segments:
  north: {entity: customers, where: "customers.region = 'north'"}
"""

REPORTS = """
reports:
  review:
    title: Review <2024>
    parameters:
      period: {start: "2024-01-01", end: "2024-12-31"}
      grain: month
    sections:
      - type: kpis
        title: KPIs
        metrics: [revenue, order_count, aov, online_share]
        trend: 3
      - type: text
        metrics: [buyers]
        text: >-
          Revenue {{ kpis.revenue.value | fmt('currency') }} from {{ metrics.buyers }} buyers
          in {{ report.period.label }}.
      - type: table
        title: By region
        metrics: [revenue, order_count]
        by: [customers.region]
      - type: chart
        chart: bar
        title: Revenue by channel
        metrics: [revenue]
        by: [orders.channel]
      - type: chart
        chart: line
        title: Monthly
        metrics: [revenue, order_count]
        by: [metric_time:month]
        period: false
      - type: drilldown
        title: Orders
        entity: orders
        columns: [orders.order_id, customers.name, orders.amount, orders.ordered_at]
        order_by: [-orders.amount, orders.order_id]
        limit: 5
      - type: analyses
"""


def build(root: Path, reports: str = REPORTS, extra: str = "") -> Path:
    """Write crm.duckdb and crmetrics.yml into `root`; return the project file."""
    root.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(root / "crm.duckdb"))
    con.execute("CREATE TABLE customers (customer_id INT, name VARCHAR, region VARCHAR, email VARCHAR)")
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", CUSTOMERS)
    con.execute(
        "CREATE TABLE orders (order_id INT, customer_id INT, ordered_at TIMESTAMP, amount DECIMAL(10, 2), "
        "channel VARCHAR)"
    )
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", ORDERS)
    con.execute(
        "CREATE TABLE tickets (ticket_id INT, customer_id INT, opened_at TIMESTAMP, closed_at TIMESTAMP, "
        "priority VARCHAR, csat INT)"
    )
    con.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?)", TICKETS)
    con.close()
    path = root / "crmetrics.yml"
    path.write_text(textwrap.dedent(PROJECT) + textwrap.dedent(reports) + textwrap.dedent(extra), encoding="utf-8")
    return path


def sql(root: Path, query: str) -> list[tuple]:
    """Run hand-written SQL on the test database (the independent reference)."""
    con = duckdb.connect(str(root / "crm.duckdb"), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()
