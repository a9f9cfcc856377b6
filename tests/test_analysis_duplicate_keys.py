"""An entity whose table holds a key twice (a data defect `crmetrics validate` reports as CRM541): the analyses that
aggregate events by the foreign key count each key once (rfm, new_vs_returning, cohort by first event).

The customers table holds customer 2 twice with different attributes and customer 3 twice as an exact copy; the
products table holds product 2 twice. Every expected number is computed here in plain Python from the rows the test
writes, treating each key as one entity, never from crmetrics' own output.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest
import yaml

import crmetrics

D = dt.date
CUSTOMERS = [  # customer_id, name, country, signed_up_at, tenant_id
    (1, "Ana", "PT", D(2023, 12, 5), 1),
    (2, "Bé", "FR", D(2024, 1, 3), 1),
    (2, "Bé (duplicate row)", "DE", D(2024, 1, 3), 2),  # another tenant's copy
    (3, "Cy", "PT", D(2024, 1, 20), 2),
    (3, "Cy", "PT", D(2024, 1, 20), 2),
    (4, "Dee", "DE", D(2024, 2, 1), 1),
]
ORDERS = [  # order_id, customer_id, ordered_at, amount
    (1, 1, D(2024, 1, 10), 100.0),
    (2, 2, D(2024, 1, 15), 50.0),
    (3, 2, D(2024, 2, 1), 20.0),
    (4, 3, D(2024, 2, 10), 30.0),
    (5, 3, D(2024, 3, 5), 70.0),
    (6, 1, D(2024, 3, 20), 10.0),
    (7, 99, D(2024, 3, 21), 5.0),  # an unknown customer: no entity to score
]
PRODUCTS = [(1, "Pen"), (2, "Ink"), (2, "Ink"), (3, "Pad")]
LINES = [(1, 1, 1), (2, 1, 2), (3, 2, 2), (4, 2, 3), (5, 3, 1), (6, 3, 2), (7, 4, 2), (8, 5, 1), (9, 6, 3)]
OPPORTUNITIES = [(10, "a"), (10, "a (duplicate row)"), (11, "b"), (12, "c")]
HISTORY = [  # opportunity_id, stage, entered_at
    (10, "lead", D(2024, 1, 1)),
    (10, "demo", D(2024, 1, 5)),
    (10, "won", D(2024, 1, 9)),
    (11, "lead", D(2024, 1, 2)),
    (11, "demo", D(2024, 1, 6)),
    (12, "lead", D(2024, 1, 3)),
]
STAGES = ["lead", "demo", "won"]

TABLES = {
    "customers": ("customer_id INT, name VARCHAR, country VARCHAR, signed_up_at DATE, tenant_id INT", CUSTOMERS),
    "orders": ("order_id INT, customer_id INT, ordered_at DATE, amount DOUBLE", ORDERS),
    "products": ("product_id INT, name VARCHAR", PRODUCTS),
    "order_lines": ("line_id INT, order_id INT, product_id INT", LINES),
    "opportunities": ("opportunity_id INT, title VARCHAR", OPPORTUNITIES),
    "history": ("opportunity_id INT, stage VARCHAR, entered_at DATE", HISTORY),
}
PROJECT = {
    "version": 1,
    "name": "duplicate_keys",
    "connection": "duckdb:///dup.duckdb",
    "entities": {
        "customers": {
            "table": "customers",
            "key": "customer_id",
            "dimensions": {"name": {}, "country": {}, "signed_up_at": {"type": "time"}},
            "measures": {"customer_count": {"agg": "count"}},
        },
        "orders": {
            "table": "orders",
            "key": "order_id",
            "time": "ordered_at",
            "joins": {"customers": {"on": "customer_id"}},
            "dimensions": {"ordered_at": {"type": "time"}},
            "measures": {"revenue": {"agg": "sum", "expr": "amount"}, "order_count": {"agg": "count"}},
        },
        "products": {"table": "products", "key": "product_id", "dimensions": {"name": {}}},
        "order_lines": {
            "table": "order_lines",
            "key": "line_id",
            "joins": {"orders": {"on": "order_id"}, "products": {"on": "product_id"}},
        },
        "opportunities": {"table": "opportunities", "key": "opportunity_id", "dimensions": {"title": {}}},
        "history": {
            "table": "history",
            "time": "entered_at",
            "joins": {"opportunities": {"on": "opportunity_id"}},
            "dimensions": {"stage": {}, "entered_at": {"type": "time"}},
        },
    },
    "metrics": {
        "revenue": {"measure": "orders.revenue"},
        "order_count": {"measure": "orders.order_count"},
        "customer_count": {"measure": "customers.customer_count"},
    },
    "analyses": {
        "rfm": {"method": "rfm", "entity": "customers", "events": "orders", "monetary": "orders.revenue"},
        "nvr": {"method": "new_vs_returning", "entity": "customers", "events": "orders", "monetary": "orders.revenue"},
        "pareto": {"method": "pareto", "entity": "customers", "metric": "revenue"},
        "quadrant": {"method": "quadrant", "entity": "customers", "x": "order_count", "y": "revenue"},
        "customers_pareto": {"method": "pareto", "entity": "customers", "metric": "customer_count"},
        "cohort": {"method": "cohort", "entity": "customers", "events": "orders"},
        "signup_cohort": {
            "method": "cohort",
            "entity": "customers",
            "events": "orders",
            "cohort_by": "customers.signed_up_at",
        },
        "country_cohort": {
            "method": "cohort",
            "entity": "customers",
            "events": "orders",
            "cohort_by": "customers.country",
        },
        "basket": {"method": "basket", "entity": "order_lines", "order": "orders", "item": "products.name"},
        "funnel": {
            "method": "funnel",
            "entity": "opportunities",
            "stages": STAGES,
            "history": "history",
            "history_stage": "history.stage",
        },
    },
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = Path(tmp_path_factory.mktemp("duplicate_keys"))
    con = duckdb.connect(str(root / "dup.duckdb"))
    for table, (columns, rows) in TABLES.items():
        con.execute(f"CREATE TABLE {table} ({columns})")
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' for _ in rows[0])})", rows)
    con.close()
    (root / "crmetrics.yml").write_text(yaml.safe_dump(PROJECT, sort_keys=False, allow_unicode=True))
    loaded = crmetrics.load(root / "crmetrics.yml")
    yield loaded
    loaded.close()


# --- the reference: each key is one entity ----------------------------------------------------------------------

KEYS = {row[0] for row in CUSTOMERS}


def known_orders(keep=lambda customer: True) -> list[tuple]:
    return [o for o in ORDERS if o[1] in KEYS and keep(o[1])]


def month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def quantile_scores(values: dict, bins: int = 5) -> dict:
    """1 + floor(bins * (r - 1) / n), r the minimum rank ascending (ties share it)."""
    ordered = sorted(values.values())
    return {k: 1 + bins * ordered.index(v) // len(values) for k, v in values.items()}


def records(result, table: str) -> list[dict]:
    return result.tables[table].records()


# --- tests ------------------------------------------------------------------------------------------------------


def test_the_metric_layer_total_is_the_reference(project):
    assert project.query(metrics=["revenue"], by=[]).rows[0][0] == pytest.approx(sum(o[3] for o in ORDERS))


def test_rfm_scores_each_key_once(project):
    orders = known_orders()
    last = {c: max(o[2] for o in orders if o[1] == c) for c in {o[1] for o in orders}}
    frequency = {c: sum(1 for o in orders if o[1] == c) for c in last}
    monetary = {c: sum(o[3] for o in orders if o[1] == c) for c in last}
    as_of = max(last.values()) + dt.timedelta(days=1)
    r, f, m = quantile_scores(last), quantile_scores(frequency), quantile_scores(monetary)

    result = project.analyze("rfm")
    scores = records(result, "scores")
    assert [s["customer_id"] for s in scores] == sorted(last)
    for s in scores:
        key = s["customer_id"]
        assert s["recency_days"] == (as_of - last[key]).days
        assert (s["frequency"], s["monetary"]) == (frequency[key], pytest.approx(monetary[key]))
        assert (s["r_score"], s["f_score"], s["m_score"]) == (r[key], f[key], m[key])
    figures = {f.name: f.value for f in result.figures}
    assert figures["entities"] == len(last)
    assert figures["monetary"] == pytest.approx(sum(monetary.values()))


def test_new_vs_returning_counts_each_key_once(project):
    orders = known_orders()
    first = {c: min(month(o[2]) for o in orders if o[1] == c) for c in {o[1] for o in orders}}
    expected: dict = defaultdict(lambda: [set(), set(), 0.0, 0.0])
    for _, customer, day, amount in orders:
        row = expected[month(day)]
        new = first[customer] == month(day)
        row[0 if new else 1].add(customer)
        row[2 if new else 3] += amount
    periods = records(project.analyze("nvr"), "periods")
    assert [p["period"] for p in periods] == sorted(expected)
    for p in periods:
        new, returning, new_revenue, returning_revenue = expected[p["period"]]
        assert (p["customers"], p["new_customers"], p["returning_customers"]) == (
            len(new | returning),
            len(new),
            len(returning),
        )
        assert p["revenue"] == pytest.approx(new_revenue + returning_revenue)
        assert p["new_revenue"] == pytest.approx(new_revenue)


def cohort_matrix(cohort_of: dict) -> dict:
    """{(cohort, period): (active members, cohort size)} for the periods with activity (events of every key that has
    a cohort, an unknown customer's too: cohort counts an orphan under its own key)."""
    sizes = defaultdict(int)
    for cohort in cohort_of.values():
        sizes[cohort] += 1
    active = defaultdict(set)
    for _, customer, day, _ in ORDERS:
        cohort = cohort_of.get(customer)
        if cohort is not None and month(day) >= cohort:
            steps = (month(day).year - cohort.year) * 12 + month(day).month - cohort.month
            active[(cohort, steps)].add(customer)
    return {key: (len(members), sizes[key[0]]) for key, members in active.items()}


def check_cohorts(rows: list[dict], cohort_of: dict) -> None:
    expected = cohort_matrix(cohort_of)
    sizes = {row["cohort"]: row["cohort_size"] for row in rows}
    assert sizes == {cohort: sum(1 for c in cohort_of.values() if c == cohort) for cohort in set(cohort_of.values())}
    for row in rows:
        assert (row["customers"], row["cohort_size"]) == expected.get(
            (row["cohort"], row["period"]), (0, sizes[row["cohort"]])
        )


def test_cohort_by_first_order_counts_each_member_once(project):
    orders = ORDERS  # an unknown customer's first order makes a cohort too (docs/analyses-lifecycle.md)
    first = {c: min(month(o[2]) for o in orders if o[1] == c) for c in {o[1] for o in orders}}
    check_cohorts(records(project.analyze("cohort"), "retention"), first)
