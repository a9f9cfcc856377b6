"""What row-level security costs, and how compiling scales over threads.

    python benchmarks/bench_security.py [--orders 1000000] [--runs 7]

1. The cost of row filters: the same questions on 1M orders of one tenant, through the same project with row filters
   (context tenant_id=1, so every row passes) and without them. Both read and aggregate the same rows, so the ratio
   is what evaluating the filters (in WHERE and in every join's ON) costs. Runs alternate between the two.
   Then, for scale, the same questions on 1M orders of 10 tenants: one tenant through row filters.
2. Compile time with and without row filters.
3. 16 threads compiling at once against one shared project: compiles per second against one thread, and errors.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

import crmetrics
from crmetrics.engines.duckdb import DuckDBEngine

PROJECT = """
version: 1
name: bench
entities:
  customers:
    table: customers
    key: customer_id
    dimensions:
      region: {}
      tenant_id: {type: number}
      lifetime_revenue: {measure: orders.revenue}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins: {customers: {on: customer_id}}
    dimensions:
      channel: {}
      tenant_id: {type: number}
      ordered_at: {type: time}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
      buyers: {agg: count_distinct, expr: customer_id}
metrics:
  revenue: {measure: orders.revenue}
  order_count: {measure: orders.order_count}
  buyers: {measure: orders.buyers}
  aov: {ratio: [revenue, order_count]}
segments:
  big: {entity: customers, where: "customers.lifetime_revenue >= 2000"}
"""
SECURITY = """
security:
  row_filters:
    customers: "customers.tenant_id = :tenant_id"
    orders: "orders.tenant_id = :tenant_id"
"""
QUESTIONS = {
    "revenue, aov by region": {"metrics": ["revenue", "aov"], "by": ["customers.region"]},
    "revenue by month and channel": {"metrics": ["revenue", "buyers"], "by": ["metric_time:month", "orders.channel"]},
    "orders of big customers": {"metrics": ["order_count"], "segments": ["big"]},
}


def build(orders: int, tenants: int = 10) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    customers = max(orders // 10, 10)
    # every tenant numbers its customers from 1: ids overlap, as in a real multi-tenant schema
    con.execute(
        f"""CREATE TABLE customers AS
        SELECT (i % {tenants}) + 1 AS tenant_id, i // {tenants} + 1 AS customer_id,
               ['north', 'south', 'east', 'west', NULL][(i * 7) % 5 + 1] AS region
        FROM range({customers}) t(i)"""
    )
    con.execute(
        f"""CREATE TABLE orders AS
        SELECT i + 1 AS order_id, (i % {tenants}) + 1 AS tenant_id,
               (hash(i) % {customers // tenants + 50}) + 1 AS customer_id,
               ['online', 'store', 'phone'][i % 3 + 1] AS channel, (hash(i * 31) % 50000) / 100.0 AS amount,
               TIMESTAMP '2022-01-01' + INTERVAL (hash(i * 17) % (3 * 365 * 24 * 60)) MINUTE AS ordered_at
        FROM range({orders}) t(i)"""
    )
    return con


def alternating_medians(first: Callable[[], object], second: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median seconds of each, running them in turns so that load on the machine hits both alike."""
    first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for action, bucket in ((first, times[0]), (second, times[1])):
            started = time.perf_counter()
            action()
            bucket.append(time.perf_counter() - started)
    return statistics.median(times[0]), statistics.median(times[1])


def median_seconds(action: Callable[[], object], runs: int) -> float:
    action()  # warm up: plans, caches, plugin loading
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp())
    (folder / "plain").mkdir()
    (folder / "secure").mkdir()
    (folder / "plain" / "crmetrics.yml").write_text(PROJECT, encoding="utf-8")
    (folder / "secure" / "crmetrics.yml").write_text(PROJECT + SECURITY, encoding="utf-8")
    plain = crmetrics.load(folder / "plain" / "crmetrics.yml")
    secure = crmetrics.load(folder / "secure" / "crmetrics.yml")
    context = {"tenant_id": 3}
    print(f"building {args.orders:,} orders of one tenant ...", file=sys.stderr)
    single = DuckDBEngine(connection=build(args.orders, tenants=1))
    print(f"\n1. queries on {args.orders:,} orders of one tenant, median of {args.runs} alternating runs")
    print(f"{'question':32} {'no filters':>11} {'row filters':>12} {'ratio':>6}")
    ratios = []
    for label, question in QUESTIONS.items():
        without, with_rls = alternating_medians(
            lambda q=question: plain.query(**q, connection=single),
            lambda q=question: secure.query(**q, context={"tenant_id": 1}, connection=single),
            args.runs,
        )
        ratios.append(with_rls / without)
        print(f"{label:32} {without * 1000:9.1f}ms {with_rls * 1000:10.1f}ms {with_rls / without:6.3f}")
    print(f"median ratio {statistics.median(ratios):.3f} (target: at most 1.05)")
    single.connection.close()

    print(f"building {args.orders:,} orders of 10 tenants ...", file=sys.stderr)
    shared = DuckDBEngine(connection=build(args.orders))
    print(f"\n   the same questions on {args.orders:,} orders of 10 tenants, one tenant through row filters")
    for label, question in QUESTIONS.items():
        seconds = median_seconds(lambda q=question: secure.query(**q, context=context, connection=shared), args.runs)
        print(f"{label:32} {seconds * 1000:9.1f}ms")

    print(f"\n2. compile, median of {args.runs} alternating runs of 200 compiles")
    for label, question in QUESTIONS.items():
        without, with_rls = alternating_medians(
            lambda q=question: [plain.compile(**q) for _ in range(200)],
            lambda q=question: [secure.compile(**q, context=context) for _ in range(200)],
            args.runs,
        )
        without, with_rls = without / 200, with_rls / 200
        print(f"{label:32} {without * 1e6:8.0f}us without {with_rls * 1e6:8.0f}us with  ratio {with_rls / without:.2f}")

    print(f"\n3. {args.threads} threads compiling against one shared project")
    questions = list(QUESTIONS.values())
    per_thread = 150
    errors: list[BaseException] = []
    lock = threading.Lock()

    def compile_many(seed: int) -> None:
        for i in range(per_thread):
            try:
                secure.compile(**questions[(seed + i) % len(questions)], context={"tenant_id": seed % 10 + 1})
            except BaseException as error:  # counted and reported: the point is that there are none
                with lock:
                    errors.append(error)

    started = time.perf_counter()
    compile_many(0)
    single = per_thread / (time.perf_counter() - started)
    started = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(compile_many, range(args.threads)))
    many = args.threads * per_thread / (time.perf_counter() - started)
    print(f"1 thread: {single:8.0f} compiles/s   {args.threads} threads: {many:8.0f} compiles/s total")
    print(f"ratio {many / single:.2f} (compiling is pure Python: the GIL keeps it near 1); errors: {len(errors)}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
