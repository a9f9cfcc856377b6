"""A small CRM data set with every awkward case, and a project over it, shared by the core tests.

The rows are generated in Python (seeded) and kept, so tests compute their expected numbers in pure Python from the
same rows, independently of the compiler.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

import duckdb

PROJECT_YAML = """\
version: 1
name: core_test
connection: duckdb:///crm.duckdb
entities:
  regions:
    table: regions
    key: region_id
    dimensions:
      name: {column: region_name}
  customers:
    table: customers
    key: customer_id
    joins:
      regions: {on: region_id}
    dimensions:
      segment: {}
      age_band:
        expr: CASE WHEN age < 35 THEN 'under 35' WHEN age >= 35 THEN '35+' END
      signed_up_at: {type: time}
      lifetime_revenue: {measure: orders.revenue}
      order_total: {measure: orders.order_count}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins:
      customers: customer_id
    dimensions:
      channel: {}
      ordered_at: {type: time}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
      buyers: {agg: count_distinct, expr: customer_id}
      avg_amount: {agg: avg, expr: amount}
      max_amount: {agg: max, expr: amount}
      min_amount: {agg: min, expr: amount}
      median_amount: {agg: median, expr: amount}
      p90_amount: {agg: percentile, expr: amount, percentile: 0.9}
      big_orders: {agg: count, filter: "orders.channel = 'web'"}
  tickets:
    table: tickets
    key: ticket_id
    time: opened_at
    joins:
      customers: {on: customer_id}
    dimensions:
      opened_at: {type: time}
    measures:
      ticket_count: {agg: count}
      satisfied: {agg: sum, expr: "CASE WHEN satisfied THEN 1 ELSE 0 END"}
metrics:
  revenue: {measure: orders.revenue}
  order_count: {measure: orders.order_count}
  buyers: {measure: orders.buyers}
  avg_amount: {measure: orders.avg_amount}
  max_amount: {measure: orders.max_amount}
  min_amount: {measure: orders.min_amount}
  median_amount: {measure: orders.median_amount}
  p90_amount: {measure: orders.p90_amount}
  web_orders: {measure: orders.big_orders}
  web_revenue: {measure: orders.revenue, filter: "orders.channel = 'web'"}
  aov: {ratio: [revenue, order_count]}
  revenue_per_buyer: {expr: revenue / buyers}
  web_share: {expr: "web_revenue / revenue"}
  ticket_count: {measure: tickets.ticket_count}
  satisfied_tickets: {measure: tickets.satisfied}
  csat: {ratio: [satisfied_tickets, ticket_count]}
  revenue_per_ticket: {ratio: [revenue, ticket_count]}
segments:
  high_value: {entity: customers, where: "customers.lifetime_revenue >= 500"}
  young: {entity: customers, where: "customers.age_band = 'under 35'"}
"""

REGIONS = [(1, "Île-de-France"), (2, "O'Higgins"), (3, "東京"), (4, 'Quote "Land"')]
SEGMENTS = ["consumer", "business", None]
CHANNELS = ["web", "store", "phone", None]


@dataclass
class CRM:
    root: Path
    regions: list[dict]
    customers: list[dict]
    orders: list[dict]
    tickets: list[dict]


def build(root: Path, seed: int = 11) -> CRM:
    """Write crm.duckdb and crmetrics.yml into `root` and return the rows."""
    rng = random.Random(seed)
    regions = [{"region_id": i, "region_name": n} for i, n in REGIONS]
    customers = []
    for cid in range(1, 61):
        region = rng.choice([1, 2, 3, 4, None, 99])  # 99: a region that does not exist
        customers.append(
            {
                "customer_id": cid,
                "region_id": region,
                "segment": rng.choice(SEGMENTS),
                "age": rng.choice([None, 22, 34, 35, 50, 71]),
                "signed_up_at": dt.datetime(2023, 1, 1) + dt.timedelta(days=rng.randrange(700)),
            }
        )
    boundaries = [
        dt.datetime(2024, 1, 31, 23, 59, 59),
        dt.datetime(2024, 2, 1, 0, 0, 0),
        dt.datetime(2024, 2, 29, 12, 0),
        dt.datetime(2023, 12, 31, 23, 59, 59),
        dt.datetime(2024, 1, 1),
    ]
    orders = []
    for oid in range(1, 401):
        customer = rng.choice([*range(1, 51), 500, 501])  # 500, 501: orphans; 51..60 never order
        when = (
            rng.choice(boundaries)
            if oid % 9 == 0
            else dt.datetime(2023, 6, 1) + dt.timedelta(minutes=rng.randrange(60 * 24 * 500))
        )
        amount = None if oid % 17 == 0 else round(rng.choice([10, 10, 25.5, 99.99, 250, 1000]) * rng.random(), 2)
        orders.append(
            {
                "order_id": oid,
                "customer_id": customer,
                "ordered_at": when,
                "amount": amount,
                "channel": rng.choice(CHANNELS),
            }
        )
    tickets = []
    for tid in range(1, 121):
        customer = rng.choice([*range(1, 41), 777])  # 777: orphan
        tickets.append(
            {
                "ticket_id": tid,
                "customer_id": customer,
                "opened_at": dt.datetime(2023, 9, 1) + dt.timedelta(hours=rng.randrange(24 * 300)),
                "satisfied": rng.choice([True, False, None]),
            }
        )
    _write(root / "crm.duckdb", regions, customers, orders, tickets)
    (root / "crmetrics.yml").write_text(PROJECT_YAML, encoding="utf-8")
    return CRM(root, regions, customers, orders, tickets)


def _write(path: Path, regions: list, customers: list, orders: list, tickets: list) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE regions (region_id INTEGER, region_name VARCHAR)")
    con.execute(
        "CREATE TABLE customers (customer_id INTEGER, region_id INTEGER, segment VARCHAR, age INTEGER, "
        "signed_up_at TIMESTAMP)"
    )
    con.execute(
        "CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, "
        "amount DOUBLE, channel VARCHAR)"
    )
    con.execute("CREATE TABLE tickets (ticket_id INTEGER, customer_id INTEGER, opened_at TIMESTAMP, satisfied BOOLEAN)")
    for table, rows in (("regions", regions), ("customers", customers), ("orders", orders), ("tickets", tickets)):
        columns = list(rows[0])
        con.executemany(
            f"INSERT INTO {table} VALUES ({', '.join('?' for _ in columns)})",
            [tuple(r[c] for c in columns) for r in rows],
        )
    con.close()
