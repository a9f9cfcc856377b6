"""Core benchmark: compile time, project load time, CLI start-up and generated-SQL speed.

    python benchmarks/bench_core.py [--orders 1000000] [--runs 7]

Prints medians of several runs and ratios against baselines run in the same process:
- compile, warm, in-process, for a 5-entity project and for a generated 100-entity / 1,000-metric project;
- load of the generated project;
- `crmetrics query` end to end on a 1M-row DuckDB file against a bare `python -c "import duckdb; ..."` process
  running the equivalent hand-written SQL (crmetrics' bytecode compiled first, as `pip install` does);
- the generated SQL against the hand-written equivalent, same process, same data.
"""

from __future__ import annotations

import argparse
import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

import crmetrics
from crmetrics.compiler import build_query, compile_select, render

FIVE_ENTITIES = """\
version: 1
name: bench
connection: duckdb:///bench.duckdb
entities:
  regions: {table: regions, key: region_id, dimensions: {region: {}}}
  customers:
    table: customers
    key: customer_id
    joins: {regions: region_id}
    dimensions: {segment: {}, signed_up_at: {type: time}, lifetime_revenue: {measure: orders.revenue}}
  products: {table: products, key: product_id, dimensions: {category: {}}}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins: {customers: customer_id, products: product_id}
    dimensions: {channel: {}, ordered_at: {type: time}}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
      buyers: {agg: count_distinct, expr: customer_id}
  tickets:
    table: tickets
    key: ticket_id
    time: opened_at
    joins: {customers: customer_id}
    dimensions: {opened_at: {type: time}}
    measures: {ticket_count: {agg: count}}
metrics:
  revenue: {measure: orders.revenue}
  order_count: {measure: orders.order_count}
  online_revenue: {measure: orders.revenue, filter: "orders.channel = 'online'"}
  aov: {ratio: [revenue, order_count]}
  revenue_per_buyer: {expr: revenue / buyers}
  ticket_count: {measure: tickets.ticket_count}
segments:
  high_value: {entity: customers, where: "customers.lifetime_revenue >= 1000"}
"""

QUESTIONS = {
    "one metric by a dimension": {"metrics": ["revenue"], "by": ["regions.region"]},
    "ratio by month": {"metrics": ["revenue", "aov"], "by": ["metric_time:month"]},
    "filtered + derived, 2 dims, where": {
        "metrics": ["online_revenue", "revenue_per_buyer"],
        "by": ["customers.segment", "metric_time:month"],
        "where": "regions.region <> 'Test'",
    },
    "two fact entities": {"metrics": ["revenue", "ticket_count"], "by": ["regions.region"]},
    "segment over a measure dimension": {
        "metrics": ["revenue", "aov"],
        "by": ["products.category"],
        "segments": ["high_value"],
    },
}

HAND_WRITTEN = """
SELECT r.region, CAST(DATE_TRUNC('month', o.ordered_at) AS DATE) AS month, SUM(o.amount) AS revenue,
       CAST(SUM(o.amount) AS DOUBLE) / NULLIF(COUNT(*), 0) AS aov
FROM orders o LEFT JOIN customers c ON o.customer_id = c.customer_id LEFT JOIN regions r ON c.region_id = r.region_id
GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST
"""


ALL = "all questions"


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def interleaved_medians(cases: dict[str, Callable[[], object]], runs: int, rounds: int = 5) -> dict[str, float]:
    """Median ms of each case over `runs` calls, taken in `rounds` turns across the cases (a burst of noise on a
    shared machine then lands on every case a little, not on one case whole), and under ALL the median of every
    call of every case: the time of a typical question."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            for _ in range(max(1, runs // rounds)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    times[ALL] = [sample for samples in times.values() for sample in samples]
    return {name: statistics.median(samples) * 1000 for name, samples in times.items()}


def compile_times(project: crmetrics.Project, questions: dict[str, dict]) -> tuple[dict, dict]:
    """Median ms per question (and over ALL), built without the SQL cache and asked again through it, 200 calls."""
    for question in questions.values():
        project.compile(**question)
    built = interleaved_medians({n: lambda q=q: uncached(project, q) for n, q in questions.items()}, 200)
    cached = interleaved_medians({n: lambda q=q: project.compile(**q) for n, q in questions.items()}, 200)
    return built, cached


def sqlglot_build() -> str:
    """Which sqlglot runs: compile times roughly halve with its compiled build (the `fast` extra)."""
    import sqlglot
    import sqlglot.generator

    compiled = not sqlglot.generator.__file__.endswith(".py")
    kind = "compiled by mypyc (sqlglotc)" if compiled else "pure Python; `pip install 'crmetrics[fast]'` compiles it"
    return f"sqlglot {sqlglot.__version__}, {kind}"


def uncached(project: crmetrics.Project, question: dict) -> str:
    """Compile without the project's SQL cache: check the question, build the tree, render it."""
    query = build_query(project.model, **question)
    return render(compile_select(project.model, query), project.model.dialect)


def build_data(path: Path, orders: int) -> None:
    customers = max(orders // 10, 10)
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE regions AS SELECT range AS region_id, 'region ' || range AS region FROM range(12)")
    con.execute(f"""CREATE TABLE customers AS SELECT range AS customer_id, (hash(range) % 13)::INT AS region_id,
        ['consumer', 'business', 'enterprise'][1 + (hash(range, 's') % 3)::INT] AS segment,
        TIMESTAMP '2022-01-01' + to_days((hash(range, 'd') % 900)::INT) AS signed_up_at FROM range({customers})""")
    con.execute(
        "CREATE TABLE products AS SELECT range AS product_id, 'cat ' || (range % 9) AS category FROM range(500)"
    )
    con.execute(f"""CREATE TABLE orders AS SELECT range AS order_id, (hash(range) % {customers + 50})::BIGINT
        AS customer_id, (hash(range, 'p') % 500)::INT AS product_id,
        TIMESTAMP '2023-01-01' + to_seconds((hash(range, 't') % 63072000)::BIGINT) AS ordered_at,
        ['online', 'store', 'phone'][1 + (hash(range, 'c') % 3)::INT] AS channel,
        round((hash(range, 'a') % 100000) / 100.0, 2)::DECIMAL(12, 2) AS amount FROM range({orders})""")
    con.execute(f"""CREATE TABLE tickets AS SELECT range AS ticket_id, (hash(range, 'tc') % {customers})::BIGINT
        AS customer_id, TIMESTAMP '2023-01-01' + to_seconds((hash(range, 'to') % 63072000)::BIGINT) AS opened_at
        FROM range({orders // 5})""")
    con.close()


def generated_project(entities: int, metrics: int) -> str:
    lines = ["version: 1", "name: generated", "entities:"]
    for e in range(entities):
        lines += [f"  e{e}:", f"    table: t{e}", "    key: id", "    time: created_at"]
        # e0..e9 and e10..e19 are two trees of dimension entities (think regions and product categories);
        # every other entity is a fact joined to one node of each tree
        if 0 < e < 10:
            parents = [f"e{(e - 1) // 2}"]
        elif 10 < e < 20:
            parents = [f"e{10 + (e - 11) // 2}"]
        elif e >= 20:
            parents = [f"e{e % 10}", f"e{10 + e % 10}"]
        else:
            parents = []
        if parents:
            lines += ["    joins:", *(f"      {p}: {{on: {p}_id}}" for p in dict.fromkeys(parents))]
        lines += ["    dimensions:", "      created_at: {type: time}"]
        lines += [f"      d{d}: {{}}" for d in range(5)]
        lines += ["    measures:"]
        lines += [f"      m{m}: {{agg: sum, expr: v{m}}}" for m in range(5)]
    lines += ["metrics:"]
    for i in range(metrics):
        e, m = i % entities, i % 5
        kind = i % 4
        if kind == 0 or i < 4:
            lines.append(f"  k{i}: {{measure: e{e}.m{m}}}")
        elif kind == 1:
            lines.append(f"  k{i}: {{measure: e{e}.m{m}, filter: \"e{e}.d1 = 'x'\"}}")
        elif kind == 2:
            lines.append(f"  k{i}: {{ratio: [k{i - 2}, k{i - 1}]}}")
        else:
            lines.append(f"  k{i}: {{expr: k{i - 3} * 2 + k{i - 2}}}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="crmetrics-bench-"))
    (folder / "crmetrics.yml").write_text(FIVE_ENTITIES)
    print(sqlglot_build())
    print(f"building {args.orders:,} orders in {folder} ...")
    build_data(folder / "bench.duckdb", args.orders)
    project = crmetrics.load(folder / "crmetrics.yml")

    print("\n== compile, warm, in-process (5-entity project; target: median <= 1 ms)")
    print(f"  {'question':40s} {'built':>10s} {'cached':>10s}")
    built, cached = compile_times(project, QUESTIONS)
    for name in [*QUESTIONS, ALL]:
        print(f"  {name:40s} {built[name]:7.3f} ms {cached[name]:7.3f} ms")

    print("\n== generated project: 100 entities, 1,000 metrics (targets: load <= 1 s, compile <= 2 ms)")
    (folder / "big.yml").write_text(generated_project(100, 1000))
    load_ms = median_ms(lambda: crmetrics.load(folder / "big.yml"), 3)
    big = crmetrics.load(folder / "big.yml")
    print(f"  load                                     {load_ms:7.1f} ms")
    big_questions = {
        f"{','.join(metrics):16s} by {','.join(by):26s}": {"metrics": metrics, "by": by}
        for metrics, by in (
            (["k0"], ["e0.d1"]),
            (["k998", "k999"], ["e0.d2", "metric_time:month"]),
            (["k25", "k570", "k999"], ["e0.d0", "e10.d4"]),  # five fact entities, 36 joins
        )
    }
    built, cached = compile_times(big, big_questions)
    for name in [*big_questions, ALL]:
        print(f"  compile {name:46s} built {built[name]:7.3f} ms  cached {cached[name]:6.3f} ms")

    print("\n== generated SQL vs hand-written, same process, same data (target: <= 1.05x)")
    con = duckdb.connect(str(folder / "bench.duckdb"), read_only=True)
    generated = project.compile(["revenue", "aov"], by=["regions.region", "metric_time:month"])
    assert con.execute(generated).fetchall() == con.execute(HAND_WRITTEN).fetchall()
    hand_times, our_times = [], []
    for run in range(2 + max(args.runs, 15)):  # interleaved, so both see the same machine state
        for sql, times in ((HAND_WRITTEN, hand_times), (generated, our_times)):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            if run >= 2:
                times.append(time.perf_counter() - start)
    hand, ours = statistics.median(hand_times) * 1000, statistics.median(our_times) * 1000
    print(f"  hand-written {hand:8.1f} ms   generated {ours:8.1f} ms   ratio {ours / hand:5.2f}x")
    con.close()

    print("\n== CLI end to end vs a bare python+duckdb process (target: <= 2x)")
    simple = (
        "SELECT r.region, SUM(o.amount) FROM orders o LEFT JOIN customers c ON o.customer_id = c.customer_id "
        "LEFT JOIN regions r ON c.region_id = r.region_id GROUP BY 1 ORDER BY 1"
    )
    bare = [
        sys.executable,
        "-c",
        f"import duckdb; con = duckdb.connect({str(folder / 'bench.duckdb')!r}, "
        f"read_only=True); print(con.execute({simple!r}).fetchall())",
    ]
    cli = [
        sys.executable,
        "-m",
        "crmetrics",
        "query",
        "-m",
        "revenue",
        "--by",
        "regions.region",
        "--project",
        str(folder / "crmetrics.yml"),
    ]
    # `pip install` writes every module's bytecode; an editable install under PYTHONDONTWRITEBYTECODE never does, and
    # each start of the CLI would recompile crmetrics from source: compile it once, as an installation would
    compileall.compile_dir(Path(crmetrics.__file__).parent, quiet=1)
    for command in (bare, cli):
        subprocess.run(command, check=True, capture_output=True)
    commands = {"bare": bare, "cli": cli}
    timed = interleaved_medians(  # alternated, so both see the same machine state
        {name: lambda c=c: subprocess.run(c, check=True, capture_output=True) for name, c in commands.items()},
        args.runs * 3,
        rounds=args.runs * 3,
    )
    bare_ms, cli_ms = timed["bare"], timed["cli"]
    print(f"  bare python+duckdb {bare_ms:7.0f} ms   crmetrics query {cli_ms:7.0f} ms   ratio {cli_ms / bare_ms:5.2f}x")


if __name__ == "__main__":
    main()
