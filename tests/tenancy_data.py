"""A small multi-tenant CRM for the security tests, and a pure-Python reference of what one tenant may see.

Every tenant numbers its customers, orders and tickets from 1, so ids overlap between tenants: an order of tenant 1
whose customer does not exist in tenant 1 (an orphan) has a customer of the same id in tenant 3. A row filter that
is applied in the wrong place, or not at all, joins such rows together, and the figures change.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

TENANTS = (1, 2, 3)
REGIONS = ("north", "south", "O'Brien; DROP TABLE orders --", "Zürich", None)
TIERS = ("gold", "silver", "bronze", None)
CHANNELS = ("online", "store", None)
PRIORITIES = ("high", "low")
BIG_SPENDER = 300

PROJECT_YAML = """
version: 1
name: tenants
entities:
  customers:
    table: customers
    key: customer_id
    time: signed_up_at
    dimensions:
      region: {}
      tier: {}
      tenant_id: {type: number}
      signed_up_at: {type: time}
      lifetime_revenue: {measure: orders.revenue}
    measures:
      customer_count: {agg: count}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins:
      customers: {on: customer_id}
    dimensions:
      channel: {}
      tenant_id: {type: number}
      ordered_at: {type: time}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
      buyers: {agg: count_distinct, expr: customer_id}
      biggest: {agg: max, expr: amount}
  tickets:
    table: tickets
    key: ticket_id
    time: opened_at
    joins:
      customers: {on: customer_id}
    dimensions:
      priority: {}
      opened_at: {type: time}
    measures:
      ticket_count: {agg: count}
metrics:
  revenue: {measure: orders.revenue}
  order_count: {measure: orders.order_count}
  buyers: {measure: orders.buyers}
  biggest_order: {measure: orders.biggest}
  online_revenue: {measure: orders.revenue, filter: "orders.channel = 'online'"}
  aov: {ratio: [revenue, order_count]}
  ticket_count: {measure: tickets.ticket_count}
  customers: {measure: customers.customer_count}
  revenue_per_ticket: {expr: revenue / ticket_count}
segments:
  big_spenders: {entity: customers, where: "customers.lifetime_revenue >= 300"}
  northern: {entity: customers, where: "customers.region = 'north'"}
security:
  row_filters:
    customers: "customers.tenant_id = :tenant_id"
    orders: "orders.tenant_id = :tenant_id"
    tickets: "tickets.tenant_id = :tenant_id"
"""


# analyses over the tenants' data, one per installed method that fits this small CRM (name -> YAML declaration)
ANALYSES = {
    "rfm": "{method: rfm, entity: customers, events: orders, monetary: orders.revenue, bins: 5, as_of: '2024-01-01'}",
    "cohort": "{method: cohort, entity: customers, events: orders, grain: month}",
    "pareto": "{method: pareto, metric: revenue, entity: customers}",
    "churn": "{method: churn, entity: customers, events: orders, inactivity_days: 60, as_of: '2024-01-01'}",
    "clv": "{method: clv, entity: customers, events: orders, monetary: orders.revenue, as_of: '2024-01-01'}",
    "new_vs_returning": "{method: new_vs_returning, entity: customers, events: orders, monetary: orders.revenue}",
    "quadrant": "{method: quadrant, x: revenue, y: order_count, entity: customers}",
    "profile": "{method: profile, metrics: [revenue, ticket_count], by: [customers.region]}",
    "quality": "{method: quality, entities: [customers, orders], as_of: '2024-01-01'}",
}


# time metrics (offsets, growth, running totals) read earlier periods through their own CTEs
TIME_METRICS_YAML = """  revenue_prev: {offset: revenue}
  revenue_growth: {growth: revenue, compare: year}
  revenue_change: {change: revenue}
  revenue_running: {cumulative: revenue, window: '3 months'}
  orders_ytd: {cumulative: order_count, to_date: year}
  tickets_total: {cumulative: ticket_count}
"""
TIME_METRICS = ["revenue_prev", "revenue_growth", "revenue_change", "revenue_running", "orders_ytd", "tickets_total"]


def project_with_time_metrics() -> str:
    return PROJECT_YAML.replace("segments:", TIME_METRICS_YAML + "segments:", 1)


# a report over every kind of section, the drill-down included
REPORT_YAML = """reports:
  r:
    title: Tenant report
    parameters: {period: {start: "2023-01-01", end: "2023-12-31"}, grain: month}
    sections:
      - {type: kpis, metrics: [revenue, order_count, customers, ticket_count]}
      - {type: chart, chart: bar, metrics: [revenue], by: [customers.region]}
      - {type: table, metrics: [revenue, ticket_count, aov], by: [customers.tier], segments: [big_spenders]}
      - type: drilldown
        entity: orders
        columns: [orders.channel, customers.region, customers.lifetime_revenue]
        order_by: [-customers.lifetime_revenue]
        limit: 500
        period: false
      - {type: analysis, analysis: a}
      - {type: text, metrics: [revenue], text: "Revenue {{ metrics.revenue }}"}
"""


def project_with_analysis(name: str) -> str:
    """The tenants' project with the analysis `name` declared as `a`."""
    return PROJECT_YAML + f"analyses:\n  a: {ANALYSES[name]}\n"


@dataclass(frozen=True)
class Customer:
    tenant_id: int
    customer_id: int
    region: str | None
    tier: str | None
    signed_up_at: dt.date


@dataclass(frozen=True)
class Order:
    tenant_id: int
    order_id: int
    customer_id: int | None
    channel: str | None
    amount: Decimal | None
    ordered_at: dt.datetime


@dataclass(frozen=True)
class Ticket:
    tenant_id: int
    ticket_id: int
    customer_id: int | None
    priority: str
    opened_at: dt.datetime


@dataclass
class Data:
    customers: list[Customer]
    orders: list[Order]
    tickets: list[Ticket]

    def of(self, tenant: int) -> Data:
        """Only `tenant`'s rows: what the reference computes from."""
        return Data(
            [c for c in self.customers if c.tenant_id == tenant],
            [o for o in self.orders if o.tenant_id == tenant],
            [t for t in self.tickets if t.tenant_id == tenant],
        )


def _moment(rng: random.Random) -> dt.datetime:
    # month boundaries on purpose: the first instant of a month and the last second of the one before
    special = [
        dt.datetime(2023, 2, 1, 0, 0, 0),
        dt.datetime(2023, 1, 31, 23, 59, 59),
        dt.datetime(2023, 12, 31, 23, 59),
    ]
    if rng.random() < 0.15:
        return rng.choice(special)
    return dt.datetime(2023, 1, 1) + dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))


def make_data(seed: int = 7) -> Data:
    """Three tenants with overlapping ids, orphans, NULL amounts and regions, unicode and quotes."""
    rng = random.Random(seed)
    customers, orders, tickets = [], [], []
    for tenant in TENANTS:
        size = 8 + 4 * tenant  # tenant 1 has customers 1..12, tenant 3 has 1..20
        for cid in range(1, size + 1):
            signed = dt.date(2022, 6, 1) + dt.timedelta(days=rng.randrange(0, 600))
            customers.append(Customer(tenant, cid, rng.choice(REGIONS), rng.choice(TIERS), signed))
        for oid in range(1, 41 + 5 * tenant):
            cid = rng.randrange(1, size + 6) if rng.random() > 0.05 else None  # ids above `size` are orphans
            amount = None if rng.random() < 0.08 else Decimal(rng.randrange(100, 40000)) / 100
            orders.append(Order(tenant, oid, cid, rng.choice(CHANNELS), amount, _moment(rng)))
        for tid in range(1, 16 + 2 * tenant):
            cid = rng.randrange(1, size + 4) if rng.random() > 0.05 else None
            tickets.append(Ticket(tenant, tid, cid, rng.choice(PRIORITIES), _moment(rng)))
    return Data(customers, orders, tickets)


def scramble_others(data: Data, keep: int, seed: int = 99) -> Data:
    """Change every row of the tenants other than `keep`, and add rows that collide with `keep`'s ids.

    If no result of tenant `keep` depends on another tenant's rows, queries return the same before and after.
    """
    rng = random.Random(seed)
    mine = data.of(keep)
    others = [c for c in data.customers if c.tenant_id != keep]
    customers = mine.customers + [
        replace(c, region=rng.choice(REGIONS), tier="gold", signed_up_at=c.signed_up_at - dt.timedelta(days=40))
        for c in others
        if rng.random() > 0.2  # and some rows disappear
    ]
    # another tenant gains customers with exactly the ids of `keep`'s orphans and big orders for them
    for cid in range(1, 40):
        customers.append(Customer(9, cid, "north", "gold", dt.date(2023, 3, 3)))
    orders = mine.orders + [
        replace(o, amount=(o.amount or Decimal(0)) * 3 + 1, channel="online", customer_id=rng.randrange(1, 30))
        for o in data.orders
        if o.tenant_id != keep
    ]
    orders += [Order(9, oid, rng.randrange(1, 30), "online", Decimal(999), _moment(rng)) for oid in range(1, 60)]
    tickets = mine.tickets + [replace(t, priority="high") for t in data.tickets if t.tenant_id != keep]
    tickets += [Ticket(9, tid, rng.randrange(1, 30), "low", _moment(rng)) for tid in range(1, 30)]
    return Data(customers, orders, tickets)


def load_duckdb(data: Data, connection: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """Write `data` into DuckDB tables customers, orders and tickets."""
    con = connection or duckdb.connect()
    con.execute(
        "CREATE TABLE customers (tenant_id INTEGER, customer_id INTEGER, region VARCHAR, tier VARCHAR, "
        "signed_up_at DATE)"
    )
    con.execute(
        "CREATE TABLE orders (tenant_id INTEGER, order_id INTEGER, customer_id INTEGER, channel VARCHAR, "
        "amount DECIMAL(12, 2), ordered_at TIMESTAMP)"
    )
    con.execute(
        "CREATE TABLE tickets (tenant_id INTEGER, ticket_id INTEGER, customer_id INTEGER, priority VARCHAR, "
        "opened_at TIMESTAMP)"
    )
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?)", [_row(c) for c in data.customers])
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", [_row(o) for o in data.orders])
    con.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?, ?)", [_row(t) for t in data.tickets])
    return con


def _row(record: Any) -> tuple:
    return tuple(record.__dict__.values())


def write_project(folder: Path, yaml_text: str = PROJECT_YAML) -> Path:
    path = folder / "crmetrics.yml"
    path.write_text(yaml_text, encoding="utf-8")
    return path


# --- the reference: what tenant t's figures must be, computed from tenant t's rows only ------------------------


def month(value: dt.date | dt.datetime) -> dt.date:
    return dt.date(value.year, value.month, 1)


class Reference:
    """The metrics of one tenant computed in plain Python from that tenant's rows."""

    def __init__(self, data: Data) -> None:
        self.data = data
        self.customers = {c.customer_id: c for c in data.customers}
        self.lifetime: dict[int, Decimal] = {}
        for o in data.orders:
            if o.customer_id is not None and o.amount is not None:
                self.lifetime[o.customer_id] = self.lifetime.get(o.customer_id, Decimal(0)) + o.amount

    def lifetime_revenue(self, customer: Customer | None) -> Decimal | None:
        if customer is None:
            return None  # an orphan fact row has no customer, so no value (NULL, like the LEFT JOIN)
        return self.lifetime.get(customer.customer_id, Decimal(0))

    def customer_of(self, row: Any) -> Customer | None:
        return row if isinstance(row, Customer) else self.customers.get(row.customer_id)

    def dimension(self, ref: str, row: Any) -> Any:
        customer = self.customer_of(row)
        if ref == "metric_time:month":
            when = {Customer: "signed_up_at", Order: "ordered_at", Ticket: "opened_at"}[type(row)]
            return month(getattr(row, when))
        if ref == "orders.channel":
            return row.channel
        if ref == "customers.lifetime_revenue":
            return self.lifetime_revenue(customer)
        return getattr(customer, ref.split(".")[1]) if customer is not None else None


SEGMENTS: dict[str, Callable[[Reference, Customer | None], bool]] = {
    "big_spenders": lambda ref, c: c is not None and ref.lifetime_revenue(c) >= BIG_SPENDER,
    "northern": lambda ref, c: c is not None and c.region == "north",
}

# (where text, the same predicate over a row's customer; SQL's NULL comparisons are false)
WHERES: dict[str, Callable[[Customer | None], bool]] = {
    "customers.region = 'north'": lambda c: c is not None and c.region == "north",
    "customers.region <> 'north'": lambda c: c is not None and c.region is not None and c.region != "north",
    "customers.tier IN ('gold', 'silver')": lambda c: c is not None and c.tier in ("gold", "silver"),
    "customers.region IS NULL": lambda c: c is None or c.region is None,
    "customers.region = 'O''Brien; DROP TABLE orders --'": lambda c: (
        c is not None and c.region == "O'Brien; DROP TABLE orders --"
    ),
    "customers.region = 'Zürich' OR customers.tenant_id <> 0": lambda c: c is not None,
}

METRIC_ENTITIES = {
    "revenue": {"orders"},
    "order_count": {"orders"},
    "buyers": {"orders"},
    "biggest_order": {"orders"},
    "online_revenue": {"orders"},
    "aov": {"orders"},
    "ticket_count": {"tickets"},
    "customers": {"customers"},
    "revenue_per_ticket": {"orders", "tickets"},
}


def _sum(values: Iterable[Decimal | None]) -> Decimal:
    return sum((v for v in values if v is not None), Decimal(0))


def _ratio(numerator: Any, denominator: Any) -> float | None:
    return None if not denominator else float(numerator) / float(denominator)


def reference_rows(
    data: Data, metrics: list[str], by: list[str], where: str | None, segments: list[str]
) -> list[tuple]:
    """The rows `project.query(metrics, by, where, segments)` must return for the tenant whose rows `data` holds."""
    ref = Reference(data)

    def keep(row: Any) -> bool:
        customer = ref.customer_of(row)
        if where is not None and not WHERES[where](customer):
            return False
        return all(SEGMENTS[s](ref, customer) for s in segments)

    facts = {
        "orders": [o for o in data.orders if keep(o)],
        "tickets": [t for t in data.tickets if keep(t)],
        "customers": [c for c in data.customers if keep(c)],
    }
    entities = set().union(*(METRIC_ENTITIES[m] for m in metrics))
    groups: dict[tuple, dict[str, list]] = {}
    for entity in sorted(entities):
        for row in facts[entity]:
            key = tuple(ref.dimension(b, row) for b in by)
            groups.setdefault(key, {e: [] for e in entities})[entity].append(row)
    if not by and not groups:
        groups[()] = {e: [] for e in entities}  # a query without dimensions always returns one row
    rows = []
    for key, rows_of in groups.items():
        orders, tickets = rows_of.get("orders", []), rows_of.get("tickets", [])
        revenue = _sum(o.amount for o in orders)
        amounts = [o.amount for o in orders if o.amount is not None]
        values = {
            "revenue": revenue,
            "order_count": len(orders),
            # a distinct count over no rows is 0, like every count
            "buyers": len({o.customer_id for o in orders if o.customer_id is not None}),
            "biggest_order": max(amounts) if amounts else None,
            "online_revenue": _sum(o.amount for o in orders if o.channel == "online"),
            "aov": _ratio(revenue, len(orders)),
            "ticket_count": len(tickets),
            "customers": len(rows_of.get("customers", [])),
            "revenue_per_ticket": _ratio(revenue, len(tickets)),
        }
        rows.append(key + tuple(values[m] for m in metrics))
    return rows


def normalise(rows: Iterable[tuple]) -> list[tuple]:
    """Rows as comparable, order-independent data: numbers as rounded floats, dates as dates."""

    def cell(value: Any) -> Any:
        if isinstance(value, bool) or value is None:
            return value
        if isinstance(value, int | float | Decimal):
            return round(float(value), 6)
        if isinstance(value, dt.datetime):
            return value.date() if value == dt.datetime.combine(value.date(), dt.time()) else value
        return value

    cells = [tuple(cell(v) for v in row) for row in rows]
    return sorted(cells, key=lambda r: tuple((v is None, str(type(v)), str(v)) for v in r))


def same_rows(first: Iterable[tuple], second: Iterable[tuple]) -> bool:
    return Counter(normalise(first)) == Counter(normalise(second))
