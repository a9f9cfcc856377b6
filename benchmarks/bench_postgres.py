"""crmetrics' overhead over running the same SQL directly with psycopg on PostgreSQL (target: <= 5 %).

Starts a throwaway PostgreSQL server (as tests/pg_server.py does), loads 1M orders over 50k customers, then times
the same aggregation (revenue, orders and average order value by region and month) two ways, alternating, and prints
the medians and their ratio:

- baseline: the SQL crmetrics compiles, sent with a plain psycopg cursor (fetchall);
- crmetrics: `project.query(...)` (compile, render, read-only guard, execute, normalise types).

Run: python benchmarks/bench_postgres.py [--rows 1000000] [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

import crmetrics
from tests.pg_server import pg_server

PROJECT = """\
version: 1
name: bench
entities:
  customers:
    table: customers
    key: customer_id
    dimensions:
      region: {}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins:
      customers: {on: customer_id}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
metrics:
  revenue: {measure: orders.revenue}
  order_count: {measure: orders.order_count}
  aov: {ratio: [revenue, order_count]}
"""
QUESTION = {"metrics": ["revenue", "order_count", "aov"], "by": ["customers.region", "metric_time:month"]}


def load(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE customers AS SELECT g AS customer_id, (ARRAY['north','south','east','west'])[1 + g % 4]"
            " AS region FROM generate_series(1, 50000) AS g"
        )
        conn.execute(
            "CREATE TABLE orders AS SELECT g AS order_id, (1 + (g * 7919) % 50001)::int AS customer_id,"
            " TIMESTAMP '2022-01-01' + (g % 1096) * INTERVAL '1 day' AS ordered_at,"
            " round(((g * 104729) % 100000) / 100.0, 2)::numeric(12, 2) AS amount"
            f" FROM generate_series(1::bigint, {rows}) AS g"
        )
        conn.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    server = pg_server.__wrapped__()  # the fixture's generator, outside pytest
    url = next(server)
    try:
        load(url, args.rows)
        folder = Path(tempfile.mkdtemp())
        (folder / "crmetrics.yml").write_text(PROJECT.replace("version: 1", f"version: 1\nconnection: {url}", 1))
        project = crmetrics.load(folder / "crmetrics.yml")
        sql = project.compile(**QUESTION, dialect="postgres")
        direct = psycopg.connect(url, autocommit=True)

        def baseline() -> int:
            with direct.cursor() as cursor:
                cursor.execute(sql)
                return len(cursor.fetchall())

        def through_crmetrics() -> int:
            return len(project.query(**QUESTION).rows)

        assert baseline() == through_crmetrics()  # warm both paths and check they agree
        times: dict[str, list[float]] = {"psycopg": [], "crmetrics": []}
        for _ in range(args.runs):
            for name, run in (("psycopg", baseline), ("crmetrics", through_crmetrics)):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        base, ours = statistics.median(times["psycopg"]), statistics.median(times["crmetrics"])
        print(f"{args.rows:,} orders, {args.runs} runs each, medians:")
        print(f"  psycopg directly : {base * 1000:8.1f} ms")
        print(f"  crmetrics query  : {ours * 1000:8.1f} ms")
        print(f"  ratio            : {ours / base:8.3f}  (overhead {100 * (ours / base - 1):+.1f} %, target <= 5 %)")
        direct.close()
        project.close()
    finally:
        next(server, None)


if __name__ == "__main__":
    main()
