"""Benchmark of the customer-value analyses: basket, the clv summary SQL and the BG/NBD + Gamma-Gamma fit.

    python benchmarks/bench_value.py [--full] [--runs 3]

Default sizes are a tenth of the targets; `--full` runs the targets of the issue on this machine:
- basket over 1M order lines and 5k products (target <= 10 s);
- the clv summary SQL over 10M events (target <= 10 s);
- the model fit (and per-customer predictions) for 100k customers (target <= 30 s).
Prints the median of several runs and its ratio to a baseline run in the same process on the same data: for basket
and the clv summary, a bare scan that only counts distinct (order, product) or (customer, day) pairs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

import crmetrics
from crmetrics.analysis import clv, clv_fit
from crmetrics.analysis.base import AnalysisContext
from crmetrics.engines.duckdb import DuckDBEngine

PROJECT = """\
version: 1
name: bench
entities:
  customers: {table: customers, key: customer_id}
  products: {table: products, key: product_id}
  orders: {table: orders, key: order_id}
  order_lines:
    table: order_lines
    key: line_id
    joins: {orders: order_id, products: product_id}
  events:
    table: events
    key: event_id
    time: bought_at
    joins: {customers: customer_id}
    measures: {revenue: {agg: sum, expr: amount}}
analyses:
  basket: {method: basket, entity: order_lines, order: orders, item: products, min_support: 0.0005, triples: false}
  clv: {method: clv, entity: customers, events: events, monetary: events.revenue, as_of: "2024-12-31",
        model: bgnbd, time_unit: week, horizon: 52, discount_rate: 0.1}
"""


def median_time(fn: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_lines(con: duckdb.DuckDBPyConnection, lines: int, products: int) -> None:
    """~2.5 lines per order; product popularity skewed (a few best sellers, a long tail)."""
    con.execute(f"CREATE TABLE products AS SELECT range AS product_id FROM range(1, {products} + 1)")
    con.execute(
        f"""CREATE TABLE order_lines AS
        SELECT range AS line_id, 1 + floor(range / 2.5)::BIGINT AS order_id,
               1 + floor({products} * pow(random(), 2.5))::BIGINT AS product_id
        FROM range({lines})"""
    )
    con.execute("CREATE TABLE orders AS SELECT DISTINCT order_id FROM order_lines")


def build_events(con: duckdb.DuckDBPyConnection, events: int, customers: int) -> None:
    con.execute(f"CREATE TABLE customers AS SELECT range AS customer_id FROM range(1, {customers} + 1)")
    con.execute(
        f"""CREATE TABLE events AS
        SELECT range AS event_id, 1 + (hash(range) % {customers})::BIGINT AS customer_id,
               TIMESTAMP '2022-01-01' + to_seconds((random() * 3 * 365 * 86400)::BIGINT) AS bought_at,
               round(5 + random() * 200, 2) AS amount
        FROM range({events})"""
    )


def simulated_summary(customers: int, seed: int = 7) -> Any:
    """A BG/NBD + Gamma-Gamma summary (frequency, recency, T, monetary) for `customers`, simulated in numpy."""
    import numpy as np

    from crmetrics.result import Result

    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.24, 1 / 4.41, customers)
    drop = rng.beta(0.79, 2.43, customers)
    scale = rng.gamma(3.74, 1 / 15.44, customers)
    big_t = rng.uniform(20, 156, customers)
    x, t_x, t = np.zeros(customers), np.zeros(customers), np.zeros(customers)
    active = np.ones(customers, dtype=bool)
    while active.any():
        t[active] += rng.exponential(1 / rate[active])
        active &= t <= big_t
        x[active] += 1
        t_x[active] = t[active]
        active &= rng.random(customers) >= drop
    spend = np.where(x > 0, rng.gamma(6.25 * np.maximum(x, 1), 1 / scale) / np.maximum(x, 1), np.nan)
    rows = [
        (i, int(f), float(r), float(b), None if np.isnan(m) else float(m), 0.0)
        for i, (f, r, b, m) in enumerate(zip(x, t_x, big_t, spend, strict=True))
    ]
    return Result(["customer_id", "frequency", "recency", "T", "monetary", "revenue"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the target sizes (1M lines, 10M events, 100k customers)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    scale = 1 if args.full else 10
    lines, products, events, event_customers, fit_customers = (
        1_000_000 // scale,
        5_000,
        10_000_000 // scale,
        100_000 // scale,  # the customers of the fit target: 100 events (about 90 purchase days) each
        100_000 // scale,
    )
    folder = Path(tempfile.mkdtemp())
    (folder / "crmetrics.yml").write_text(PROJECT)
    project = crmetrics.load(folder / "crmetrics.yml")
    con = duckdb.connect()
    engine = DuckDBEngine(connection=con)

    build_lines(con, lines, products)
    basket = median_time(lambda: project.analyze("basket", connection=engine), args.runs)
    bare = median_time(
        lambda: con.execute("SELECT count(*) FROM (SELECT DISTINCT order_id, product_id FROM order_lines)").fetchall(),
        args.runs,
    )
    print(
        f"basket, {lines:,} lines, {products:,} products: median {basket:.2f} s "
        f"({basket / bare:.1f}x a bare distinct scan of {bare:.3f} s); target <= 10 s at 1M lines"
    )

    build_events(con, events, event_customers)
    ctx = AnalysisContext("clv", dict(project.model.analyses["clv"].params), project.model, engine)
    setup = clv.Setup(ctx)
    as_of = setup.as_of
    summary = median_time(lambda: ctx.run(clv.summary_query(ctx, setup, as_of)), args.runs)
    bare = median_time(
        lambda: con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT customer_id, CAST(bought_at AS DATE) FROM events)"
        ).fetchall(),
        args.runs,
    )
    print(
        f"clv summary SQL, {events:,} events, {event_customers:,} customers: median {summary:.2f} s "
        f"({summary / bare:.1f}x a bare distinct scan of {bare:.3f} s); target <= 10 s at 10M events"
    )

    rows = simulated_summary(fit_customers)
    fit = median_time(lambda: clv_fit.bgnbd_result(ctx, setup, as_of, rows), args.runs)
    print(
        f"clv BG/NBD + Gamma-Gamma fit and predictions, {fit_customers:,} customers: median {fit:.2f} s; "
        f"target <= 30 s at 100k customers"
    )


if __name__ == "__main__":
    main()
