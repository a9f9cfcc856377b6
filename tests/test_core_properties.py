"""Random CRM data sets against a pure-Python reference: simple, filtered, ratio and derived metrics over sum, count,
count_distinct, avg, min and max, one or two fact entities, by any mix of dimensions, over orphans, NULL keys and
amounts, unicode values, ties and timestamps on period boundaries (medians, percentiles, snapshots and the time
metric kinds have their own tests against hand-written references).

Hypothesis draws the rows; the reference below computes each group in plain Python, never through crmetrics' SQL.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sqlite3
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmetrics

PROJECT = """\
version: 1
name: properties
entities:
  customers:
    table: customers
    key: customer_id
    dimensions: {region: {}, tier: {}, lifetime_revenue: {measure: orders.revenue}}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins: {customers: customer_id}
    dimensions: {channel: {}, ordered_at: {type: time}}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
      buyers: {agg: count_distinct, expr: customer_id}
      avg_amount: {agg: avg, expr: amount}
      max_amount: {agg: max, expr: amount}
      min_amount: {agg: min, expr: amount}
  tickets:
    table: tickets
    key: ticket_id
    time: opened_at
    joins: {customers: customer_id}
    measures: {ticket_count: {agg: count}}
metrics:
  revenue: {measure: orders.revenue}
  order_count: {measure: orders.order_count}
  buyers: {measure: orders.buyers}
  avg_amount: {measure: orders.avg_amount}
  max_amount: {measure: orders.max_amount}
  min_amount: {measure: orders.min_amount}
  online_revenue: {measure: orders.revenue, filter: "orders.channel = 'online'"}
  aov: {ratio: [revenue, order_count]}
  revenue_per_buyer: {expr: revenue / buyers}
  ticket_count: {measure: tickets.ticket_count}
segments:
  big_spenders: {entity: customers, where: "customers.lifetime_revenue >= 100"}
"""

# instants on and around period boundaries (month, quarter, year, leap day), and one ordinary one
INSTANTS = [
    dt.datetime(2023, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 1, 1),
    dt.datetime(2024, 1, 31, 23, 59, 59),
    dt.datetime(2024, 2, 1),
    dt.datetime(2024, 2, 29, 12, 30),
    dt.datetime(2024, 3, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 4, 1),
    dt.datetime(2024, 7, 15, 8),
]
REGIONS = [None, "North", "Süd", "O'Brien & Co", "東京", ""]
CUSTOMER_IDS = [1, 2, 3, 4, 5]  # orders also point at 9 (no such customer) and at NULL

customers = st.lists(
    st.fixed_dictionaries({"region": st.sampled_from(REGIONS), "tier": st.sampled_from([None, "gold", "basic"])}),
    min_size=0,
    max_size=len(CUSTOMER_IDS),
)
orders = st.lists(
    st.fixed_dictionaries(
        {
            "customer_id": st.sampled_from([*CUSTOMER_IDS, 9, None]),
            "amount": st.one_of(st.none(), st.decimals(min_value=-50, max_value=500, places=2, allow_nan=False)),
            "channel": st.sampled_from(["online", "store", None]),
            "ordered_at": st.sampled_from(INSTANTS),
        }
    ),
    min_size=0,
    max_size=25,
)
tickets = st.lists(
    st.fixed_dictionaries({"customer_id": st.sampled_from([*CUSTOMER_IDS, 9, None])}), min_size=0, max_size=8
)
DIMENSIONS = ["customers.region", "customers.tier", "orders.channel", "metric_time:month", "metric_time:quarter"]
DIMENSIONS += ["metric_time:year"]
METRICS = ["revenue", "order_count", "buyers", "avg_amount", "max_amount", "min_amount", "online_revenue", "aov"]
questions = st.tuples(
    st.lists(st.sampled_from([*METRICS, "revenue_per_buyer", "ticket_count"]), min_size=1, max_size=4, unique=True),
    st.lists(
        st.sampled_from(DIMENSIONS),
        max_size=2,
        unique=True,
    ),
)
PROPERTIES = settings(
    max_examples=int(os.environ.get("CRMETRICS_PROPERTY_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> crmetrics.Project:
    folder = tmp_path_factory.mktemp("properties")
    (folder / "crmetrics.yml").write_text(PROJECT, encoding="utf-8")
    return crmetrics.load(Path(folder) / "crmetrics.yml")


def database(customer_rows: list[dict], order_rows: list[dict], ticket_rows: list[dict], engine: str = "duckdb"):
    """The rows in a fresh in-memory database: DuckDB, or SQLite (amounts as REAL, instants as ISO text)."""
    con = duckdb.connect() if engine == "duckdb" else sqlite3.connect(":memory:", check_same_thread=False)
    amount, instant = ("DECIMAL(12, 2)", "TIMESTAMP") if engine == "duckdb" else ("REAL", "TEXT")
    con.execute("CREATE TABLE customers (customer_id INT, region VARCHAR, tier VARCHAR)")
    con.execute(
        f"CREATE TABLE orders (order_id INT, customer_id INT, amount {amount}, channel VARCHAR, ordered_at {instant})"
    )
    con.execute(f"CREATE TABLE tickets (ticket_id INT, customer_id INT, opened_at {instant})")

    def stored(value: object) -> object:
        if engine == "sqlite" and isinstance(value, Decimal):
            return float(value)
        if engine == "sqlite" and isinstance(value, dt.datetime):
            return value.isoformat(" ")
        return value

    def insert(table: str, rows: list[list]) -> None:
        for row in rows:
            con.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(row))})", [stored(v) for v in row])

    insert("customers", [[cid, c["region"], c["tier"]] for cid, c in zip(CUSTOMER_IDS, customer_rows, strict=False)])
    keyed = enumerate(order_rows, 1)
    insert("orders", [[i, o["customer_id"], o["amount"], o["channel"], o["ordered_at"]] for i, o in keyed])
    insert("tickets", [[i, t["customer_id"], INSTANTS[i % len(INSTANTS)]] for i, t in enumerate(ticket_rows, 1)])
    return con


def period(instant: dt.datetime, grain: str) -> dt.date:
    month = {"month": instant.month, "quarter": 3 * ((instant.month - 1) // 3) + 1, "year": 1}[grain]
    return dt.date(instant.year, month, 1)


def reference(customer_rows, order_rows, ticket_rows, metrics, by) -> dict[tuple, tuple]:
    """Each group's metric values, computed row by row in Python."""
    known = {cid: c for cid, c in zip(CUSTOMER_IDS, customer_rows, strict=False)}

    def key(row: dict, instant: dt.datetime | None) -> tuple:
        customer = known.get(row["customer_id"], {})
        parts = []
        for ref in by:
            if ref.startswith("metric_time:"):
                parts.append(period(instant, ref.partition(":")[2]) if instant else None)
            elif ref == "orders.channel":
                parts.append(row.get("channel"))
            else:
                parts.append(customer.get(ref.partition(".")[2]))
        return tuple(parts)

    order_groups: dict[tuple, list[dict]] = defaultdict(list)
    for o in order_rows:
        order_groups[key(o, o["ordered_at"])].append(o)
    ticket_groups: dict[tuple, int] = defaultdict(int)
    for tid, t in enumerate(ticket_rows, 1):
        ticket_groups[key(t, INSTANTS[tid % len(INSTANTS)])] += 1
    # tickets have no channel: asked by orders.channel, ticket_count cannot be answered (checked separately)
    asks_tickets = "ticket_count" in metrics
    groups = set(order_groups) if any(m != "ticket_count" for m in metrics) else set()
    groups |= set(ticket_groups) if asks_tickets else set()
    if not by:  # a total is one row, even over no rows
        groups = {()}
    return {g: tuple(value(m, order_groups.get(g, []), ticket_groups.get(g, 0)) for m in metrics) for g in groups}


def value(metric: str, rows: list[dict], ticket_count: int) -> float | int | None:
    amounts = [Decimal(r["amount"]) for r in rows if r["amount"] is not None]
    revenue = float(sum(amounts, Decimal(0)))
    buyers = len({r["customer_id"] for r in rows if r["customer_id"] is not None})
    if metric == "revenue":
        return revenue
    if metric == "order_count":
        return len(rows)
    if metric == "buyers":
        return buyers
    if metric == "avg_amount":
        return float(sum(amounts) / len(amounts)) if amounts else None
    if metric in ("max_amount", "min_amount"):
        return float((max if metric == "max_amount" else min)(amounts)) if amounts else None
    if metric == "online_revenue":
        online = [Decimal(r["amount"]) for r in rows if r["channel"] == "online" and r["amount"] is not None]
        return float(sum(online, Decimal(0)))
    if metric == "aov":
        return revenue / len(rows) if rows else None
    if metric == "revenue_per_buyer":
        return revenue / buyers if buyers else None
    return ticket_count


def close(actual: object, expected: object) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("engine", ["duckdb", "sqlite"])
@PROPERTIES
@given(customers, orders, tickets, questions)
def test_random_crm_data_matches_the_python_reference(
    project, engine, customer_rows, order_rows, ticket_rows, question
):
    metrics, by = question
    if "ticket_count" in metrics and "orders.channel" in by:
        with pytest.raises(crmetrics.QueryError):  # tickets do not reach orders: refused, never guessed
            project.compile(metrics, by=by)
        return
    con = database(customer_rows, order_rows, ticket_rows, engine)
    try:
        result = project.query(metrics, by=by, connection=con)
    finally:
        con.close()
    expected = reference(customer_rows, order_rows, ticket_rows, metrics, by)
    got = {tuple(row[: len(by)]): row[len(by) :] for row in result.rows}
    assert set(got) == set(expected), (sorted(got, key=repr), sorted(expected, key=repr))
    for group, values in expected.items():
        assert all(close(a, e) for a, e in zip(got[group], values, strict=True)), (group, got[group], values)
    keys = [tuple(row[: len(by)]) for row in result.rows]
    assert keys == sorted(keys, key=lambda k: tuple((v is None, v) for v in k))  # every dimension, NULLs last


DAYS = sorted({i.date() for i in INSTANTS})


@PROPERTIES
@given(
    customers,
    orders,
    st.sampled_from([None, "metric_time:month", "customers.region", "customers.lifetime_revenue"]),
    st.booleans(),
    st.booleans(),
    st.tuples(st.sampled_from(DAYS), st.sampled_from(DAYS)).map(sorted),
)
def test_segments_filters_and_date_ranges_match_the_python_reference(
    project, customer_rows, order_rows, dimension, segment, where, days
):
    """A segment over a measure-based dimension, a filter that NULLs fail, and an inclusive date range (widened to
    the start of its first month when the question is by month: docs/time.md)."""
    start, end = days
    if dimension == "metric_time:month":
        start = start.replace(day=1)
    known = {cid: c for cid, c in zip(CUSTOMER_IDS, customer_rows, strict=False)}
    lifetime = {cid: float(sum((Decimal(o["amount"]) for o in order_rows if o["customer_id"] == cid
                                and o["amount"] is not None), Decimal(0))) for cid in known}  # fmt: skip
    kept = [
        o
        for o in order_rows
        if start <= o["ordered_at"].date() <= end
        and (not segment or lifetime.get(o["customer_id"], -1) >= 100)  # orphans are in no customer segment
        and (not where or o["channel"] not in ("store", None))  # NULL <> 'store' is not true
    ]

    def key(o: dict) -> tuple:
        if dimension is None:
            return ()
        if dimension == "metric_time:month":
            return (period(o["ordered_at"], "month"),)
        if dimension == "customers.region":
            return (known.get(o["customer_id"], {}).get("region"),)
        return (lifetime.get(o["customer_id"]),)

    expected: dict[tuple, list[dict]] = defaultdict(list)
    for o in kept:
        expected[key(o)].append(o)
    if dimension is None:
        expected.setdefault((), [])  # a total is one row, even over no orders
    con = database(customer_rows, order_rows, [])
    try:
        result = project.query(
            ["revenue", "order_count"],
            by=[dimension] if dimension else [],
            segments=["big_spenders"] if segment else [],
            where="orders.channel <> 'store'" if where else None,
            start=days[0].isoformat(),
            end=end.isoformat(),
            connection=con,
        )
    finally:
        con.close()
    width = 1 if dimension else 0
    got = {tuple(row[:width]): row[width:] for row in result.rows}
    assert set(got) == set(expected), (sorted(got, key=repr), sorted(expected, key=repr))
    for group, rows in expected.items():
        want = (value("revenue", rows, 0), len(rows))
        assert all(close(a, e) for a, e in zip(got[group], want, strict=True)), (group, got[group], want)
