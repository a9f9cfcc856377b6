"""Invariants of the demo CRM database, checked with hand-written SQL on a small build."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from crmetrics.demo.generate import TABLES, build_demo_database

N = 2_000
PROJECT_FILE = Path(__file__).resolve().parents[1] / "crmetrics" / "demo" / "project.yml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("demo") / "crm.duckdb"
    calls: list[tuple[str, float]] = []
    counts = build_demo_database(path, customers=N, seed=7, progress=lambda step, done: calls.append((step, done)))
    return {"path": path, "counts": counts, "progress": calls}


@pytest.fixture(scope="module")
def con(demo: dict) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(demo["path"]), read_only=True)
    yield connection
    connection.close()


def one(con: duckdb.DuckDBPyConnection, sql: str):
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0] if len(row) == 1 else row


def test_returns_row_counts_of_every_table(demo: dict, con: duckdb.DuckDBPyConnection) -> None:
    counts = demo["counts"]
    assert list(counts) == list(TABLES)
    for table, count in counts.items():
        assert one(con, f"SELECT count(*) FROM {table}") == count


def test_row_counts_follow_the_number_of_customers(demo: dict) -> None:
    c = demo["counts"]
    assert c["customers"] == N
    assert c["sales_reps"] == N // 500 + 20
    assert c["products"] == 200
    assert 3.2 * N <= c["orders"] <= 4.8 * N
    assert 2.3 <= c["order_lines"] / c["orders"] <= 2.8
    assert c["leads"] == N // 2
    assert c["opportunities"] == N // 5
    assert c["tickets"] == N // 2
    assert c["nps_responses"] == N // 3
    assert c["targets"] == c["sales_reps"] * 36
    assert c["opportunity_stage_history"] > c["opportunities"]
    assert c["account_balances"] > 0


def test_progress_is_reported_after_each_table(demo: dict) -> None:
    steps = [step for step, _ in demo["progress"]]
    fractions = [done for _, done in demo["progress"]]
    assert steps == list(TABLES)
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)


def test_columns_and_types(con: duckdb.DuckDBPyConnection) -> None:
    def columns(table: str) -> dict[str, str]:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
        return dict(rows)

    assert columns("customers") == {
        "customer_id": "INTEGER", "name": "VARCHAR", "email": "VARCHAR", "phone": "VARCHAR", "region": "VARCHAR",
        "country": "VARCHAR", "city": "VARCHAR", "age": "INTEGER", "gender": "VARCHAR", "segment": "VARCHAR",
        "acquisition_channel": "VARCHAR", "signed_up_at": "TIMESTAMP", "updated_at": "TIMESTAMP",
        "tenant_id": "INTEGER", "owner_rep_id": "INTEGER",
    }  # fmt: skip
    assert columns("orders") == {
        "order_id": "INTEGER", "customer_id": "INTEGER", "ordered_at": "TIMESTAMP", "channel": "VARCHAR",
        "status": "VARCHAR", "amount": "DECIMAL(12,2)", "tenant_id": "INTEGER",
    }  # fmt: skip
    assert list(columns("sales_reps")) == ["rep_id", "name", "region", "team", "hired_at"]
    assert list(columns("products")) == ["product_id", "name", "category", "list_price"]
    assert list(columns("order_lines")) == [
        "order_line_id", "order_id", "product_id", "quantity", "unit_price", "line_amount",
    ]  # fmt: skip
    assert list(columns("leads")) == [
        "lead_id", "created_at", "source", "country", "converted_at", "customer_id", "cost",
    ]  # fmt: skip
    assert list(columns("opportunities")) == [
        "opportunity_id", "customer_id", "owner_rep_id", "created_at", "closed_at", "stage",
        "last_stage_reached", "amount", "product_id",
    ]  # fmt: skip
    assert list(columns("opportunity_stage_history")) == ["opportunity_id", "stage", "entered_at"]
    assert list(columns("tickets")) == [
        "ticket_id", "customer_id", "opened_at", "closed_at", "channel", "priority", "csat_score",
    ]  # fmt: skip
    assert list(columns("nps_responses")) == ["response_id", "customer_id", "answered_at", "score"]
    assert columns("targets") == {
        "rep_id": "INTEGER", "region": "VARCHAR", "month": "DATE", "revenue_target": "DECIMAL(12,2)",
    }  # fmt: skip
    assert columns("account_balances") == {
        "customer_id": "INTEGER", "snapshot_date": "DATE", "balance": "DECIMAL(12,2)",
    }  # fmt: skip


def test_keys_are_unique(con: duckdb.DuckDBPyConnection) -> None:
    for table, key in [
        ("sales_reps", "rep_id"), ("customers", "customer_id"), ("products", "product_id"), ("orders", "order_id"),
        ("order_lines", "order_line_id"), ("leads", "lead_id"), ("opportunities", "opportunity_id"),
        ("tickets", "ticket_id"), ("nps_responses", "response_id"), ("targets", "rep_id, month"),
        ("account_balances", "customer_id, snapshot_date"),
    ]:  # fmt: skip
        assert one(con, f"SELECT count(*) - count(DISTINCT ({key})) FROM {table}") == 0, table


def _snapshot(path: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as c:
        return {t: c.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}


def test_same_seed_gives_identical_data(demo: dict, tmp_path: Path) -> None:
    again = tmp_path / "again.duckdb"
    build_demo_database(again, customers=N, seed=7)
    first, second = _snapshot(demo["path"]), _snapshot(again)
    for table in TABLES:
        assert first[table] == second[table], table


def test_rebuilding_overwrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "crm.duckdb"
    build_demo_database(path, customers=300, seed=1)
    counts = build_demo_database(path, customers=200, seed=1)
    assert counts["customers"] == 200
    with duckdb.connect(str(path), read_only=True) as c:
        assert c.execute("SELECT count(*) FROM customers").fetchone() == (200,)


def test_another_seed_gives_other_data(demo: dict, tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    build_demo_database(other, customers=N, seed=8)
    first, second = _snapshot(demo["path"]), _snapshot(other)
    for table in ("customers", "orders", "order_lines", "opportunities", "tickets"):
        assert first[table] != second[table], table


def test_all_timestamps_fall_in_the_fixed_range(con: duckdb.DuckDBPyConnection) -> None:
    for table, column in [
        ("customers", "signed_up_at"), ("customers", "updated_at"), ("orders", "ordered_at"),
        ("leads", "created_at"), ("leads", "converted_at"), ("opportunities", "created_at"),
        ("opportunities", "closed_at"), ("opportunity_stage_history", "entered_at"), ("tickets", "opened_at"),
        ("tickets", "closed_at"), ("nps_responses", "answered_at"), ("targets", "month"),
        ("account_balances", "snapshot_date"),
    ]:  # fmt: skip
        low, high = one(con, f"SELECT min({column}), max({column}) FROM {table}")
        assert str(low) >= "2022-01-01" and str(high) < "2025-01-01", (table, column, low, high)


def test_customers_are_realistically_imperfect(con: duckdb.DuckDBPyConnection) -> None:
    assert 0 < one(con, "SELECT count(*) FROM customers WHERE region IS NULL") < N * 0.05
    assert 0 < one(con, "SELECT count(*) FROM customers WHERE age IS NULL") < N * 0.2
    assert one(con, "SELECT min(age) >= 18 AND max(age) <= 80 FROM customers")
    # duplicate e-mails that differ only in case or surrounding spaces
    dup_groups = one(
        con,
        "SELECT count(*) FROM (SELECT lower(trim(email)) FROM customers WHERE email IS NOT NULL "
        "GROUP BY 1 HAVING count(DISTINCT email) > 1)",
    )
    assert dup_groups >= 5
    assert (
        one(
            con,
            "SELECT count(*) FROM (SELECT email FROM customers WHERE email IS NOT NULL GROUP BY 1 HAVING count(*) > 1)",
        )
        == 0
    )
    assert one(con, "SELECT count(*) FROM customers WHERE updated_at < signed_up_at") == 0
    assert one(con, "SELECT list_sort(list(DISTINCT tenant_id)) FROM customers") == [1, 2]
    assert one(con, "SELECT list_sort(list(DISTINCT segment)) FROM customers") == [
        "consumer", "enterprise", "small business",
    ]  # fmt: skip


def test_unicode_and_quotes_survive(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(*) FROM customers WHERE name = 'Zoë Müller'") >= 1
    assert one(con, "SELECT count(*) FROM customers WHERE name LIKE '%O''Brien%'") >= 1
    cities = {row[0] for row in con.execute("SELECT DISTINCT city FROM customers").fetchall()}
    assert {"東京", "São Paulo"} <= cities


def test_owners_are_reps_of_the_customers_region(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(*) FROM customers WHERE owner_rep_id IS NULL") > 0
    mismatched = one(
        con,
        "SELECT count(*) FROM customers AS c JOIN sales_reps AS r ON r.rep_id = c.owner_rep_id "
        "WHERE c.region IS NOT NULL AND c.region <> r.region",
    )
    assert mismatched == 0
    assert one(con, "SELECT count(*) FROM customers WHERE owner_rep_id NOT IN (SELECT rep_id FROM sales_reps)") == 0


def test_orders_have_orphans_nulls_and_skew(con: duckdb.DuckDBPyConnection) -> None:
    orphans = one(con, "SELECT count(*) FROM orders WHERE customer_id NOT IN (SELECT customer_id FROM customers)")
    assert 1 <= orphans <= 20
    assert 1 <= one(con, "SELECT count(*) FROM orders WHERE amount IS NULL") <= 0.01 * N * 4
    # some customers never order; the top fifth of buyers bring most of the revenue (Pareto)
    assert one(con, "SELECT count(*) FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM orders)") > 0
    top_share = one(
        con,
        """
        WITH per_buyer AS (SELECT customer_id, sum(amount) AS revenue FROM orders GROUP BY customer_id),
        ranked AS (SELECT revenue, ntile(5) OVER (ORDER BY revenue DESC NULLS LAST) AS quintile FROM per_buyer)
        SELECT sum(revenue) FILTER (WHERE quintile = 1) / sum(revenue) FROM ranked
        """,
    )
    assert top_share > 0.6
    assert one(con, "SELECT list_sort(list(DISTINCT channel)) FROM orders") == ["online", "phone", "store"]
    assert one(con, "SELECT count(*) FROM orders WHERE tenant_id NOT IN (1, 2)") == 0


def test_orders_follow_their_customer(con: duckdb.DuckDBPyConnection) -> None:
    assert (
        one(
            con,
            "SELECT count(*) FROM orders AS o JOIN customers AS c USING (customer_id) "
            "WHERE o.ordered_at < c.signed_up_at OR o.tenant_id <> c.tenant_id",
        )
        == 0
    )


def test_orders_exactly_on_month_boundaries(con: duckdb.DuckDBPyConnection) -> None:
    on_boundary = one(con, "SELECT count(*) FROM orders WHERE ordered_at = date_trunc('month', ordered_at)")
    assert on_boundary >= 5


def test_order_amount_is_the_sum_of_its_lines(con: duckdb.DuckDBPyConnection) -> None:
    mismatches = one(
        con,
        """
        SELECT count(*) FROM orders AS o
        JOIN (SELECT order_id, sum(line_amount) AS total FROM order_lines GROUP BY order_id) AS l USING (order_id)
        WHERE o.amount IS NOT NULL AND o.amount <> l.total
        """,
    )
    assert mismatches == 0
    assert one(con, "SELECT count(*) FROM orders WHERE order_id NOT IN (SELECT order_id FROM order_lines)") == 0
    assert one(con, "SELECT count(*) FROM order_lines WHERE line_amount <> quantity * unit_price") == 0
    assert one(con, "SELECT count(*) FROM order_lines WHERE product_id NOT IN (SELECT product_id FROM products)") == 0
    single = one(con, "SELECT count(*) FROM (SELECT order_id FROM order_lines GROUP BY 1 HAVING count(*) = 1)")
    assert single > 0.15 * one(con, "SELECT count(*) FROM orders")


def test_market_basket_finds_real_associations(con: duckdb.DuckDBPyConnection) -> None:
    # lift of the strongest product pair bought together in at least 20 orders
    best_lift = one(
        con,
        """
        WITH baskets AS (SELECT DISTINCT order_id, product_id FROM order_lines),
        total AS (SELECT count(DISTINCT order_id) AS n FROM baskets),
        single AS (SELECT product_id, count(*) AS c FROM baskets GROUP BY 1),
        pairs AS (
            SELECT a.product_id AS x, b.product_id AS y, count(*) AS c
            FROM baskets AS a JOIN baskets AS b ON a.order_id = b.order_id AND a.product_id < b.product_id
            GROUP BY ALL
        )
        SELECT max(p.c * t.n / (sx.c * sy.c))
        FROM pairs AS p, total AS t
        JOIN single AS sx ON sx.product_id = p.x JOIN single AS sy ON sy.product_id = p.y
        WHERE p.c >= 20
        """,
    )
    assert best_lift > 5


def test_leads_convert_into_distinct_customers(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(*) FROM leads WHERE (converted_at IS NULL) <> (customer_id IS NULL)") == 0
    converted = one(con, "SELECT count(customer_id) FROM leads")
    assert 0.1 * N / 2 < converted < 0.5 * N / 2
    assert one(con, "SELECT count(DISTINCT customer_id) FROM leads") == converted
    assert (
        one(
            con,
            "SELECT count(*) FROM leads AS l JOIN customers AS c USING (customer_id) "
            "WHERE l.converted_at <> c.signed_up_at OR l.created_at > l.converted_at",
        )
        == 0
    )
    assert one(con, "SELECT list_sort(list(DISTINCT source)) FROM leads") == [
        "event", "paid_search", "partner", "referral", "web",
    ]  # fmt: skip
    assert one(con, "SELECT min(cost) > 0 FROM leads")


def test_opportunity_stages_are_consistent(con: duckdb.DuckDBPyConnection) -> None:
    stages = "('prospecting', 'qualification', 'proposal', 'negotiation', 'closed_won', 'closed_lost')"
    assert one(con, f"SELECT count(*) FROM opportunities WHERE stage NOT IN {stages}") == 0
    closed = "stage IN ('closed_won', 'closed_lost')"
    assert one(con, f"SELECT count(*) FROM opportunities WHERE ({closed}) <> (closed_at IS NOT NULL)") == 0
    assert one(con, "SELECT count(*) FROM opportunities WHERE closed_at < created_at") == 0
    assert (
        one(con, "SELECT count(*) FROM opportunities WHERE (stage = 'closed_lost') <> (last_stage_reached IS NOT NULL)")
        == 0
    )
    assert (
        one(
            con,
            "SELECT count(*) FROM opportunities WHERE last_stage_reached NOT IN "
            "('prospecting', 'qualification', 'proposal', 'negotiation')",
        )
        == 0
    )
    by_stage = dict(con.execute("SELECT stage, count(*) FROM opportunities GROUP BY 1").fetchall())
    assert by_stage["closed_won"] > 0 and by_stage["closed_lost"] > by_stage["closed_won"]
    assert sum(by_stage.get(s, 0) for s in ("prospecting", "qualification", "proposal", "negotiation")) > 0
    # opportunities belong to business customers
    assert (
        one(con, "SELECT count(*) FROM opportunities JOIN customers USING (customer_id) WHERE segment = 'consumer'")
        == 0
    )


STAGE_ORDER = (
    "CASE stage WHEN 'prospecting' THEN 1 WHEN 'qualification' THEN 2 WHEN 'proposal' THEN 3 "
    "WHEN 'negotiation' THEN 4 ELSE 5 END"
)


def test_stage_history_is_ordered(con: duckdb.DuckDBPyConnection) -> None:
    # entered_at never decreases along the stage order
    backwards = one(
        con,
        f"""
        SELECT count(*) FROM (
            SELECT entered_at < lag(entered_at) OVER (PARTITION BY opportunity_id ORDER BY {STAGE_ORDER}) AS back
            FROM opportunity_stage_history
        ) WHERE back
        """,
    )
    assert backwards == 0
    assert one(con, "SELECT count(*) - count(DISTINCT (opportunity_id, stage)) FROM opportunity_stage_history") == 0
    # every opportunity starts in prospecting at its creation time
    assert (
        one(
            con,
            "SELECT count(*) FROM opportunities AS o LEFT JOIN opportunity_stage_history AS h "
            "ON h.opportunity_id = o.opportunity_id AND h.stage = 'prospecting' "
            "WHERE h.entered_at IS DISTINCT FROM o.created_at",
        )
        == 0
    )
    # the last history row is the opportunity's current stage, entered at closed_at for closed deals
    mismatched = one(
        con,
        f"""
        WITH last AS (
            SELECT opportunity_id, arg_max(stage, {STAGE_ORDER}) AS stage, max(entered_at) AS entered_at
            FROM opportunity_stage_history GROUP BY 1
        )
        SELECT count(*) FROM opportunities AS o JOIN last AS l USING (opportunity_id)
        WHERE l.stage <> o.stage OR (o.closed_at IS NOT NULL AND l.entered_at <> o.closed_at)
        """,
    )
    assert mismatched == 0
    # lost deals record the furthest open stage they reached
    assert (
        one(
            con,
            f"""
            SELECT count(*) FROM opportunities AS o
            JOIN (SELECT opportunity_id, arg_max(stage, {STAGE_ORDER}) AS reached
                  FROM opportunity_stage_history WHERE stage NOT LIKE 'closed%' GROUP BY 1) AS h USING (opportunity_id)
            WHERE o.stage = 'closed_lost' AND o.last_stage_reached <> h.reached
            """,
        )
        == 0
    )


def test_stage_history_has_skips_and_ties(con: duckdb.DuckDBPyConnection) -> None:
    skipped = one(
        con,
        """
        SELECT count(*) FROM (
            SELECT opportunity_id FROM opportunity_stage_history GROUP BY 1
            HAVING bool_or(stage = 'proposal') AND NOT bool_or(stage = 'qualification')
        )
        """,
    )
    assert skipped > 0
    ties = one(
        con,
        "SELECT count(*) FROM (SELECT opportunity_id, entered_at FROM opportunity_stage_history "
        "GROUP BY ALL HAVING count(*) > 1)",
    )
    assert ties > 0


def test_tickets_and_surveys(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(*) FROM tickets WHERE closed_at < opened_at") == 0
    assert one(con, "SELECT count(*) FROM tickets WHERE closed_at IS NULL") > 0
    assert one(con, "SELECT count(*) FROM tickets WHERE csat_score IS NOT NULL AND closed_at IS NULL") == 0
    assert one(con, "SELECT min(csat_score), max(csat_score) FROM tickets") == (1, 5)
    answered = one(con, "SELECT count(csat_score) FROM tickets")
    assert 0 < answered < one(con, "SELECT count(*) FROM tickets")
    low, high = one(con, "SELECT min(score), max(score) FROM nps_responses")
    assert low >= 0 and high == 10
    promoters, detractors = one(
        con, "SELECT count(*) FILTER (WHERE score >= 9), count(*) FILTER (WHERE score <= 6) FROM nps_responses"
    )
    assert promoters > 0 and detractors > 0
    for table in ("tickets", "nps_responses"):
        missing = one(con, f"SELECT count(*) FROM {table} WHERE customer_id NOT IN (SELECT customer_id FROM customers)")
        assert missing == 0, table


def test_targets_cover_every_rep_and_month(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(DISTINCT month) FROM targets") == 36
    assert one(con, "SELECT min(month), max(month) FROM targets") == (
        one(con, "SELECT DATE '2022-01-01'"),
        one(con, "SELECT DATE '2024-12-01'"),
    )
    assert one(con, "SELECT count(*) FROM targets WHERE day(month) <> 1 OR revenue_target <= 0") == 0
    assert (
        one(con, "SELECT count(*) FROM targets AS t JOIN sales_reps AS r USING (rep_id) WHERE t.region <> r.region")
        == 0
    )


def test_account_balances_are_month_end_snapshots(con: duckdb.DuckDBPyConnection) -> None:
    assert one(con, "SELECT count(*) FROM account_balances WHERE snapshot_date <> last_day(snapshot_date)") == 0
    assert one(con, "SELECT count(*) FROM account_balances WHERE balance < 0") == 0
    assert (
        one(
            con,
            "SELECT count(*) FROM account_balances AS b JOIN customers AS c USING (customer_id) "
            "WHERE b.snapshot_date < c.signed_up_at::DATE",
        )
        == 0
    )
    # balances change from month to month (otherwise the snapshot table would be trivially additive)
    assert one(con, "SELECT count(DISTINCT balance) FROM account_balances") > 100


def test_rejects_an_empty_database(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_demo_database(tmp_path / "x.duckdb", customers=0)


def test_tiny_database_still_builds(tmp_path: Path) -> None:
    counts = build_demo_database(tmp_path / "tiny.duckdb", customers=10)
    assert counts["customers"] == 10 and counts["orders"] > 0 and counts["opportunities"] >= 1


# --- the shipped project file --------------------------------------------------------------------------------------


def _project() -> dict:
    # BaseLoader keeps every scalar a string (YAML 1.2 treats `on` as a string; PyYAML's default would not)
    return yaml.load(PROJECT_FILE.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)


def test_project_file_has_no_yaml_11_booleans() -> None:
    text = PROJECT_FILE.read_text(encoding="utf-8")
    assert not re.search(r":\s*(yes|no|on|off|y|n)\s*$", text, re.IGNORECASE | re.MULTILINE)
    project = _project()
    assert set(project) == {"version", "name", "description", "entities", "metrics", "segments"}


def test_project_file_matches_the_tables(con: duckdb.DuckDBPyConnection) -> None:
    project = _project()
    for name, entity in project["entities"].items():
        source = entity["table"] if "table" in entity else f"({entity['sql']})"
        columns = {d[0] for d in con.execute(f"SELECT * FROM {source} AS t LIMIT 0").description}
        for column in [entity.get("key"), *(j["on"] for j in entity.get("joins", {}).values())]:
            assert column is None or column in columns, (name, column)
        for dim_name, dim in entity.get("dimensions", {}).items():
            if "measure" in dim:
                continue
            expr = dim.get("expr") or dim.get("column") or dim_name
            con.execute(f"SELECT {expr} FROM {source} AS t LIMIT 1")  # raises on an unknown column
        for measure in entity.get("measures", {}).values():
            if "expr" in measure:
                con.execute(f"SELECT {measure['expr']} FROM {source} AS t LIMIT 1")
        for target in entity.get("joins", {}):
            assert target in project["entities"], (name, target)


def test_project_file_answers_every_metric(demo: dict) -> None:
    """Every metric of the shipped project runs on the demo data through the real compiler."""
    import crmetrics

    project = crmetrics.load(PROJECT_FILE)
    url = f"duckdb:///{demo['path']}"
    metrics = list(project.model.metrics)
    for metric in metrics:
        rows = project.query(metrics=[metric], by=["metric_time:year"], connection=url).rows
        assert rows, metric
    total = project.query(metrics=["revenue", "order_count"], connection=url).rows[0]
    by_region = project.query(metrics=["revenue", "order_count"], by=["customers.region"], connection=url).rows
    assert sum(r[2] for r in by_region) == total[1]
    high_value = project.query(metrics=["revenue"], segments=["high_value"], connection=url).rows[0][0]
    assert 0 < high_value < total[0]
