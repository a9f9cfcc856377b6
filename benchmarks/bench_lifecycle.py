"""Benchmark of the lifecycle analyses on generated data: cohort matrix by month and the stage-history funnel.

    python benchmarks/bench_lifecycle.py            # 1M events / 100k customers, 100k opportunities
    python benchmarks/bench_lifecycle.py --full     # 10M events / 1M customers, 1M opportunities (the targets)

Prints the median of several runs of `Project.analyze` and, as a baseline in the same process, of a hand-written
DuckDB query computing the same counts with no filters, security or dialect portability; the ratio shows what the
generated SQL costs on top of the bare computation. Targets: cohort <= 10 s, funnel <= 5 s at full size.
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
name: bench_lifecycle
connection: duckdb:///bench.duckdb
entities:
  customers:
    table: customers
    key: customer_id
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins:
      customers: customer_id
    dimensions:
      ordered_at: {type: time}
    measures:
      revenue: {agg: sum, expr: amount}
  opportunities:
    table: opportunities
    key: opportunity_id
    time: created_at
    dimensions:
      created_at: {type: time}
      owner: {}
  stage_history:
    table: stage_history
    time: entered_at
    joins:
      opportunities: opportunity_id
    dimensions:
      stage: {}
      entered_at: {type: time}
analyses:
  retention: {method: cohort, entity: customers, events: orders, grain: month}
  funnel:
    method: funnel
    entity: opportunities
    stages: [prospecting, qualification, proposal, negotiation, closed_won]
    history: stage_history
    history_stage: stage_history.stage
    lost_stages: [closed_lost]
"""

STAGES = ["prospecting", "qualification", "proposal", "negotiation", "closed_won"]


def generate(path: Path, customers: int, events: int, opportunities: int) -> None:
    """Seeded synthetic data, written with DuckDB SQL (hash-based pseudo-random numbers)."""
    con = duckdb.connect(str(path))
    con.execute("CREATE MACRO u(k, salt) AS (hash(k * 7919 + salt) % 1000000) / 1000000.0")
    con.execute(f"CREATE TABLE customers AS SELECT range AS customer_id FROM range(1, {customers} + 1)")
    # each customer starts within three years and buys with a decaying rate; orders cluster on early months
    con.execute(
        f"""
        CREATE TABLE orders AS
        SELECT range AS order_id,
               1 + (hash(range) % {customers})::BIGINT AS customer_id,
               TIMESTAMP '2021-01-01' + to_seconds((u(1 + (hash(range) % {customers}), 1) * 900 * 86400)::BIGINT)
                 + to_seconds((u(range, 2) * u(range, 3) * 600 * 86400)::BIGINT) AS ordered_at,
               round(u(range, 4) * 400, 2) AS amount
        FROM range(1, {events} + 1)
        """
    )
    con.execute(
        f"""
        CREATE TABLE opportunities AS
        SELECT range AS opportunity_id,
               TIMESTAMP '2022-01-01' + to_seconds((u(range, 5) * 700 * 86400)::BIGINT) AS created_at,
               'rep ' || (range % 50)::VARCHAR AS owner,
               1 + floor(u(range, 6) * 5)::INT AS furthest,
               u(range, 7) < 0.5 AS lost
        FROM range(1, {opportunities} + 1)
        """
    )
    stages = ", ".join(f"'{s}'" for s in STAGES)
    con.execute(
        f"""
        CREATE TABLE stage_history AS
        SELECT o.opportunity_id, ([{stages}])[s.i] AS stage,
               o.created_at + to_seconds((s.i * u(o.opportunity_id, 8) * 10 * 86400)::BIGINT) AS entered_at
        FROM opportunities AS o, range(1, 6) AS s(i)
        WHERE s.i <= o.furthest AND NOT (s.i = 2 AND u(o.opportunity_id, 9) < 0.1)
        UNION ALL
        SELECT opportunity_id, 'closed_lost', created_at + INTERVAL 60 DAY
        FROM opportunities WHERE lost AND furthest < 5
        """
    )
    con.close()


def baseline_cohort(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        WITH a AS (SELECT DISTINCT customer_id, date_trunc('month', ordered_at) AS p FROM orders),
             f AS (SELECT customer_id, min(p) AS c FROM a GROUP BY customer_id)
        SELECT f.c, date_diff('month', f.c, a.p) AS k, count(*) FROM a JOIN f USING (customer_id) GROUP BY ALL
        """
    ).fetchall()


def baseline_funnel(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        WITH h AS (SELECT opportunity_id, max(list_position(['prospecting', 'qualification', 'proposal',
                                               'negotiation', 'closed_won'], stage)) AS r
                   FROM stage_history GROUP BY opportunity_id)
        SELECT i, count(*) FILTER (WHERE r >= i) FROM h, range(1, 6) AS t(i) GROUP BY i
        """
    ).fetchall()


def timed(function: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall-clock and median CPU seconds (all threads of this process) over `runs` runs.

    CPU time is reported too because on a shared machine the wall clock also measures the other processes.
    """
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def report(what: str, ours: tuple[float, float], baseline: tuple[float, float], target: float) -> None:
    print(
        f"{what}: median {ours[0]:.2f} s wall, {ours[1]:.2f} s CPU; hand-written DuckDB baseline {baseline[0]:.2f} s "
        f"wall, {baseline[1]:.2f} s CPU; ratio {ours[0] / baseline[0]:.2f} (target <= {target} s at full size)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="10M events / 1M customers / 1M opportunities")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    customers, events, opportunities = (
        (1_000_000, 10_000_000, 1_000_000) if args.full else (100_000, 1_000_000, 100_000)
    )
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        start = time.perf_counter()
        generate(root / "bench.duckdb", customers, events, opportunities)
        print(
            f"generated {events:,} events / {customers:,} customers / {opportunities:,} opportunities "
            f"in {time.perf_counter() - start:.1f} s"
        )
        (root / "crmetrics.yml").write_text(PROJECT)
        project = crmetrics.load(root / "crmetrics.yml")
        con = duckdb.connect(str(root / "bench.duckdb"), read_only=True)
        rows = len(project.analyze("retention").tables["retention"])
        report(
            f"cohort matrix by month ({rows} rows)",
            timed(lambda: project.analyze("retention"), args.runs),
            timed(lambda: baseline_cohort(con), args.runs),
            10,
        )
        report(
            "funnel over stage history",
            timed(lambda: project.analyze("funnel"), args.runs),
            timed(lambda: baseline_funnel(con), args.runs),
            5,
        )
        con.close()
        project.close()


if __name__ == "__main__":
    main()
