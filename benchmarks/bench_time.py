"""Time-intelligence benchmark on generated orders (default 1M rows, two years, 50k customers).

    python benchmarks/bench_time.py [--orders 1000000] [--runs 5]

Prints medians of several runs, each against a baseline run in the same process on the same DuckDB connection:
- cumulative revenue by day (crmetrics `cumulative:` metric, compile included) against a hand-written daily
  aggregate plus SUM() OVER: the target is at most 1.5x;
- trailing-30-day active customers by day (a distinct count over the window; target at most 5 s), against the
  hand-written range join that joins every customer-day to the 30 days it counts in (MetricFlow's shape);
- month-over-month growth and year-to-date revenue by month with gap filling, against a hand-written LAG query.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

import crmetrics

PROJECT = """\
version: 1
name: bench_time
connection: duckdb:///{database}
entities:
  orders:
    table: orders
    key: order_id
    time: ordered_at
    dimensions: {{ordered_at: {{type: time}}}}
    measures:
      revenue: {{agg: sum, expr: amount}}
      buyers: {{agg: count_distinct, expr: customer_id}}
metrics:
  revenue: {{measure: orders.revenue}}
  buyers: {{measure: orders.buyers}}
  revenue_running: {{cumulative: revenue}}
  revenue_ytd: {{cumulative: revenue, to_date: year}}
  revenue_growth: {{growth: revenue}}
  active_30d: {{cumulative: buyers, window: 30 days}}
"""

CUMULATIVE_BASELINE = """
SELECT d, SUM(revenue) OVER (ORDER BY d ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
FROM (SELECT CAST(ordered_at AS DATE) AS d, SUM(amount) AS revenue FROM orders GROUP BY 1) AS daily
ORDER BY d
"""

ACTIVE_BASELINE = """
WITH days AS (SELECT DISTINCT CAST(ordered_at AS DATE) AS d, customer_id FROM orders),
     spine AS (SELECT DISTINCT d FROM days)
SELECT spine.d, COUNT(DISTINCT days.customer_id)
FROM spine JOIN days ON days.d BETWEEN spine.d - INTERVAL 29 DAY AND spine.d
GROUP BY spine.d ORDER BY spine.d
"""

GROWTH_BASELINE = """
SELECT m, revenue, (revenue - LAG(revenue) OVER (ORDER BY m)) / NULLIF(LAG(revenue) OVER (ORDER BY m), 0),
       SUM(revenue) OVER (PARTITION BY YEAR(m) ORDER BY m)
FROM (SELECT CAST(DATE_TRUNC('month', ordered_at) AS DATE) AS m, SUM(amount) AS revenue FROM orders GROUP BY 1)
ORDER BY m
"""


def generate(path: Path, orders: int) -> None:
    con = duckdb.connect(str(path))
    con.execute(
        f"""
        CREATE TABLE orders AS
        SELECT i AS order_id,
               (hash(i) % 50000)::INTEGER AS customer_id,
               TIMESTAMP '2023-01-01' + to_seconds((hash(i * 7) % (730 * 86400))::BIGINT) AS ordered_at,
               round((hash(i * 13) % 20000) / 100.0, 2) AS amount
        FROM range({orders}) AS t(i)
        """
    )
    con.close()


def interleaved(first: Callable[[], list], second: Callable[[], list], runs: int) -> tuple[float, float, int, int]:
    """Medians of alternating runs of two callables (so that load from other processes hits both alike)."""
    rows = (len(first()), len(second()))  # warm-up: caches, first-use loading
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for index, run in enumerate((first, second)):
            start = time.perf_counter()
            run()
            times[index].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1]), *rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "orders.duckdb"
        generate(database, args.orders)
        (Path(folder) / "crmetrics.yml").write_text(PROJECT.format(database=database))
        project = crmetrics.load(Path(folder) / "crmetrics.yml")
        cursor = project.engine().cursor()
        print(f"{args.orders:,} orders; medians of {args.runs} alternating runs")

        def ours(metrics: list[str], grain: str, **options: object) -> Callable[[], list]:
            # compile + run on the same cursor as the baseline; the engine's Result conversion is timed apart below
            by = [f"metric_time:{grain}"]
            return lambda: cursor.execute(project.compile(metrics, by=by, **options)).fetchall()

        def hand(sql: str) -> Callable[[], list]:
            return lambda: cursor.execute(sql).fetchall()

        cases = [
            ("cumulative revenue by day", ours(["revenue_running"], "day"), hand(CUMULATIVE_BASELINE), 1.5, args.runs),
            (
                "growth + YTD by month, gaps filled",
                ours(["revenue", "revenue_growth", "revenue_ytd"], "month", fill_gaps=True),
                hand(GROWTH_BASELINE),
                None,
                args.runs,
            ),
            # the range join takes tens of seconds: one run is enough to show the difference
            ("trailing-30-day active customers by day", ours(["active_30d"], "day"), hand(ACTIVE_BASELINE), None, 1),
        ]
        for name, crm, baseline, limit, runs in cases:
            ours_s, base_s, ours_rows, base_rows = interleaved(crm, baseline, runs)
            assert ours_rows == base_rows, (name, ours_rows, base_rows)
            ratio = ours_s / base_s
            verdict = f"  (target <= {limit}x: {'ok' if ratio <= limit else 'MISSED'})" if limit else ""
            print(
                f"{name:40} crmetrics {ours_s * 1000:8.1f} ms   hand-written {base_s * 1000:8.1f} ms"
                f"   {ratio:5.2f}x{verdict}"
            )
        for name, metric in (
            ("cumulative revenue", "revenue_running"),
            ("trailing-30-day active customers", "active_30d"),
        ):
            timed = []
            for _ in range(args.runs):
                start = time.perf_counter()
                project.query([metric], by=["metric_time:day"])
                timed.append(time.perf_counter() - start)
            print(f"{name} by day, project.query end to end: {statistics.median(timed) * 1000:8.1f} ms")
        project.close()


if __name__ == "__main__":
    main()
