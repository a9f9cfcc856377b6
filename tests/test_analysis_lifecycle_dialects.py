"""The lifecycle analyses compile for other dialects, and give the same numbers on PostgreSQL and ClickHouse as on
DuckDB."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from sqlglot import exp

import crmetrics
from crmetrics.analysis import churn, cohort, funnel, pipeline, time_to_event
from crmetrics.analysis.base import AnalysisContext
from crmetrics.compiler import render
from crmetrics.errors import CompileError
from tests import lifecycle_fixture
from tests.lifecycle_fixture import OPPORTUNITY_COLUMNS, LifecycleData
from tests.pg_server import pg_server  # noqa: F401  (the session fixture)

DIALECTS = ["duckdb", "postgres", "snowflake", "clickhouse", "spark", "databricks"]
# engines lacking an exact PERCENTILE_CONT refuse the queries that need one with a CompileError rather than produce
# approximate SQL; everything else compiles
PARTIAL = ["bigquery", "trino"]
CONTEXT = {"tenant_id": 1}

# every analysis of the fixture project, with overrides that switch on the optional parts
CASES: list[tuple[str, dict[str, Any]]] = [
    ("retention", {}),
    ("retention", {"grain": "week", "measure": "orders.revenue", "periods": 6}),
    ("retention", {"cohort_by": "customers.channel", "grain": "quarter"}),
    ("retention_by_signup", {}),
    ("lead_time", {"by": "leads.source", "cohort": "month"}),
    ("stage_funnel", {"by": "opportunities.owner", "amount": "opportunities.amount"}),
    ("time_funnel", {"window_days": 7, "skipped": "not_reached"}),
    ("history_funnel", {"window_days": 7, "by": "opportunities.region"}),
    ("forecast", {"by": "opportunities.owner"}),
    ("forecast", {"stage": "opportunities.kept_stage", "lost_stages": [], "lost_when": "opportunities.is_lost"}),
    ("forecast", {"probabilities": {"prospecting": 0.1, "qualification": 0.2, "proposal": 0.4, "negotiation": 0.7}}),
    ("activity_churn", {"measure": "orders.revenue"}),
    ("activity_churn", {"grain": "week", "inactivity_days": 30}),
    ("contract_churn", {"measure": "contracts.mrr"}),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> LifecycleData:
    return lifecycle_fixture.build(tmp_path_factory.mktemp("lifecycle_dialects"))


@pytest.fixture(scope="module")
def project(data: LifecycleData) -> Iterator[crmetrics.Project]:
    loaded = crmetrics.load(data.root / "crmetrics.yml")
    yield loaded
    loaded.close()


def statements(project: crmetrics.Project, name: str, overrides: dict[str, Any]) -> list:
    """Every SELECT the analysis builds, without running it."""
    analysis = project.model.analyses[name]
    ctx = AnalysisContext(name, {**analysis.params, **overrides}, project.model, project.engine(), context=CONTEXT)
    if analysis.method == "cohort":
        return [cohort.build(ctx)[0]]
    if analysis.method == "time_to_event":
        return [time_to_event.build(ctx)[0], time_to_event.build(ctx, grouped=False)[0]]
    if analysis.method == "funnel":
        return [funnel.build(ctx)[0]]
    if analysis.method == "pipeline":
        weights = {1: 0.1, 2: 0.3, 3: None, 4: 0.8}
        return [pipeline.rates_query(ctx), pipeline.build(ctx, weights)[0]]
    trees = [churn.churn_query(ctx, ctx.params.get("grain", "month"))]
    if ctx.params.get("events"):
        trees.append(churn.risk_query(ctx)[0])
        if ctx.params.get("measure"):
            trees.append(churn.revenue_query(ctx, "month"))
    return trees


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_compiles_for_dialect(project: crmetrics.Project, name: str, overrides: dict, dialect: str) -> None:
    for tree in statements(project, name, overrides):
        assert render(tree, dialect).upper().startswith(("WITH", "SELECT"))


@pytest.mark.parametrize("dialect", PARTIAL)
@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_compiles_or_refuses_cleanly(project: crmetrics.Project, name: str, overrides: dict, dialect: str) -> None:
    for tree in statements(project, name, overrides):
        try:
            assert render(tree, dialect).upper().startswith(("WITH", "SELECT"))
        except CompileError as error:
            assert tree.find(exp.PercentileCont) is not None, error


def test_cohort_and_churn_need_no_percentile(project: crmetrics.Project) -> None:
    for name in ("retention", "contract_churn"):
        for tree in statements(project, name, {}):
            render(tree, "bigquery")


@pytest.fixture(scope="module")
def postgres(pg_server: str, data: LifecycleData) -> str:  # noqa: F811
    """The fixture's tables copied into the test PostgreSQL server."""
    psycopg = pytest.importorskip("psycopg")
    tables = {
        "customers": ("customer_id INT, channel TEXT, signed_up_at TIMESTAMP, tenant_id INT", data.customers),
        "orders": (
            "order_id INT, customer_id INT, ordered_at TIMESTAMP, amount DOUBLE PRECISION, status TEXT",
            data.orders,
        ),
        "leads": ("lead_id INT, source TEXT, created_at TIMESTAMP, converted_at TIMESTAMP", data.leads),
        "stage_history": ("opportunity_id INT, stage TEXT, entered_at TIMESTAMP", data.history),
        "contracts": (
            "contract_id INT, plan TEXT, started_at TIMESTAMP, ended_at TIMESTAMP, mrr DOUBLE PRECISION",
            data.contracts,
        ),
    }
    types = {"opportunity_id": "INT", "owner": "TEXT", "region": "TEXT", "stage": "TEXT", "last_stage": "TEXT"}
    types["amount"] = "DOUBLE PRECISION"
    columns = ", ".join(f"{c} {types.get(c, 'TIMESTAMP')}" for c in OPPORTUNITY_COLUMNS)
    tables["opportunities"] = (columns, [tuple(o[c] for c in OPPORTUNITY_COLUMNS) for o in data.opportunities])
    with psycopg.connect(pg_server, autocommit=True) as con:
        for table, (declaration, rows) in tables.items():
            con.execute(f"DROP TABLE IF EXISTS {table}")
            con.execute(f"CREATE TABLE {table} ({declaration})")
            with con.cursor() as cursor:
                marks = ", ".join(["%s"] * len(rows[0]))
                cursor.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    return pg_server


def same(left: Any, right: Any) -> bool:
    if isinstance(left, int | float) and isinstance(right, int | float) and not isinstance(left, bool):
        return math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-9)
    return left == right


def assert_same_results(
    project: crmetrics.Project, name: str, overrides: dict, connection: Any, missing: frozenset[str] = frozenset()
) -> None:
    """Every table of the analysis holds the same rows on `connection` as on DuckDB (except `missing` ones)."""
    on_duckdb = project.analyze(name, context=CONTEXT, **overrides)
    on_other = project.analyze(name, context=CONTEXT, connection=connection, **overrides)
    assert set(on_duckdb.tables) - missing == set(on_other.tables)
    for table, got in on_other.tables.items():
        expected = on_duckdb.tables[table]
        assert got.columns == expected.columns
        assert len(got.rows) == len(expected.rows), table
        for a, b in zip(got.rows, expected.rows, strict=True):
            assert all(same(x, y) for x, y in zip(a, b, strict=True)), (table, a, b)


@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_postgres_gives_the_same_numbers(project: crmetrics.Project, postgres: str, name: str, overrides) -> None:
    assert_same_results(project, name, overrides, postgres)


@pytest.fixture(scope="module")
def clickhouse(data: LifecycleData) -> Iterator[Any]:
    """The fixture's tables in an in-process ClickHouse (chdb), through crmetrics' ClickHouse engine."""
    chdb = pytest.importorskip("chdb", reason="chdb not installed: pip install 'crmetrics[clickhouse]'")
    import duckdb

    from crmetrics.engines.clickhouse import ChdbEngine
    from tests.differential import loaders

    with duckdb.connect(str(data.root / "crm.duckdb"), read_only=True) as con:
        names = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        tables = {name: con.sql(f'SELECT * FROM "{name}"').to_arrow_table() for name in names}
    connection = chdb.connect(":memory:")
    loaders.load_chdb(connection, tables, data.root)
    yield ChdbEngine(connection=connection)
    connection.close()


@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_clickhouse_gives_the_same_numbers(project: crmetrics.Project, clickhouse: Any, name: str, overrides) -> None:
    assert_same_results(project, name, overrides, clickhouse)


@pytest.fixture(scope="module")
def sqlite(data: LifecycleData) -> Iterator[Any]:
    """The fixture's tables in a SQLite file, through crmetrics' SQLite engine."""
    import duckdb

    from crmetrics.engines.dbapi import SQLiteEngine
    from tests.differential import loaders

    with duckdb.connect(str(data.root / "crm.duckdb"), read_only=True) as con:
        names = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        tables = {name: con.sql(f'SELECT * FROM "{name}"').to_arrow_table() for name in names}
    loaders.load_sqlite(data.root / "crm.sqlite", tables)
    engine = SQLiteEngine(str(data.root / "crm.sqlite"))
    yield engine
    engine.close()


@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_sqlite_gives_the_same_numbers_or_refuses_medians(
    project: crmetrics.Project, sqlite: Any, name: str, overrides: dict
) -> None:
    # SQLite has no exact median: analyses that need one refuse with a CompileError; the others match DuckDB
    try:
        project.analyze(name, context=CONTEXT, connection=sqlite, **overrides)
    except CompileError as error:
        assert "percentile" in str(error)
        return
    assert_same_results(project, name, overrides, sqlite, missing=frozenset({"at_risk"}))


def test_sqlite_churn_table_without_the_risk_list(project: crmetrics.Project, sqlite: Any) -> None:
    on_duckdb = project.analyze("activity_churn", context=CONTEXT)
    on_sqlite = project.analyze("activity_churn", context=CONTEXT, connection=sqlite)
    assert "at_risk" not in on_sqlite.tables and any("risk" in note for note in on_sqlite.notes)
    assert on_sqlite.tables["churn"].rows == on_duckdb.tables["churn"].rows
