"""The time stages on real engines other than DuckDB (PostgreSQL server, SQLite file), checked against Python.

PostgreSQL runs the America/New_York project; SQLite, which has no time zones, runs the same data without one.
An engine whose binaries or driver are missing is skipped with the reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest

import crmetrics
from tests import time_fixture as tf
from tests.differential import loaders
from tests.pg_server import pg_server  # noqa: F401  (a fixture)


def _tables(data: tf.TimeData) -> dict[str, Any]:
    with duckdb.connect(str(data.root / "time.duckdb"), read_only=True) as con:
        return {
            name: con.sql(f"SELECT * FROM {name}").to_arrow_table()
            for name in ("customers", "orders", "targets", "balances")
        }


@pytest.fixture(
    scope="module",
    params=[
        "postgres",
        "sqlite",
        pytest.param("clickhouse", marks=pytest.mark.clickhouse),
        pytest.param("spark", marks=pytest.mark.spark),
    ],
)
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp(f"time_{request.param}")
    if request.param == "postgres":
        pytest.importorskip("psycopg", reason="psycopg not installed")
        from crmetrics.engines.postgres import PostgresEngine

        url = request.getfixturevalue("pg_server")
        data = tf.build(folder)
        loaders.load_postgres(url, _tables(data))
        engine = PostgresEngine(url)
    elif request.param == "clickhouse":
        chdb = pytest.importorskip("chdb", reason="chdb not installed")
        from crmetrics.engines.clickhouse import ChdbEngine

        data = tf.build(folder)
        connection = chdb.connect(":memory:")
        loaders.load_chdb(connection, _tables(data), folder)
        engine = ChdbEngine(connection=connection)
    elif request.param == "spark":
        pytest.importorskip("pyspark", reason="pyspark not installed")
        from crmetrics.engines.spark import SparkEngine, open_session
        from tests.differential.conftest import SMALL_DATA_SPARK

        data = tf.build(folder)
        session = open_session("spark://local[2]", SMALL_DATA_SPARK)
        loaders.load_spark(session, _tables(data), folder)
        engine = SparkEngine(session)
    else:
        from crmetrics.engines.dbapi import SQLiteEngine

        data = tf.build(folder, zone=None)
        loaders.load_sqlite(folder / "time.sqlite", _tables(data))
        engine = SQLiteEngine(str(folder / "time.sqlite"))
    project = crmetrics.load(data.root / "crmetrics.yml")
    yield project, engine, data
    engine.close()
    project.close()


def growth(current: float, previous: float | None) -> float | None:
    return None if previous in (None, 0) else (current - previous) / previous  # type: ignore[operator]


def test_filled_months_with_growth_and_year_over_year(setup) -> None:
    project, engine, data = setup
    result = project.query(
        ["revenue", "orders", "revenue_growth", "revenue_yoy"],
        by=["metric_time:month"],
        fill_gaps=True,
        connection=engine,
    )
    revenue = data.group(lambda o: tf.month_start(data.local_day(o[2])), lambda o: o[3])
    counts = data.group(lambda o: tf.month_start(data.local_day(o[2])), lambda o: 1)
    months = tf.month_range(min(revenue), max(revenue))
    expected = []
    for i, m in enumerate(months):
        previous = revenue.get(months[i - 1], 0) if i else None
        year_ago = dt.date(m.year - 1, m.month, 1)
        last_year = revenue.get(year_ago, 0) if year_ago >= months[0] else None
        expected.append(
            (
                m,
                revenue.get(m, 0),
                counts.get(m, 0),
                growth(revenue.get(m, 0), previous),
                growth(revenue.get(m, 0), last_year),
            )
        )
    assert [r[0] for r in result.rows] == months
    for got, want in zip(result.rows, expected, strict=True):
        assert got[1:] == pytest.approx(want[1:]), got[0]


def test_running_trailing_and_month_to_date_by_day(setup) -> None:
    project, engine, data = setup
    result = project.query(
        ["revenue_running", "revenue_trailing_7d", "revenue_mtd", "active_30d"],
        by=["metric_time:day"],
        start="2024-02-25",
        end="2024-03-12",
        connection=engine,
    )
    revenue = data.group(lambda o: data.local_day(o[2]), lambda o: o[3])
    assert result.rows
    for day, running, trailing, mtd, active in result.rows:
        assert running == pytest.approx(sum(v for d, v in revenue.items() if d <= day))
        assert trailing == pytest.approx(sum(v for d, v in revenue.items() if day - dt.timedelta(days=6) <= d <= day))
        assert mtd == pytest.approx(sum(v for d, v in revenue.items() if day.replace(day=1) <= d <= day))
        window = {o[1] for o in data.orders if day - dt.timedelta(days=29) <= data.local_day(o[2]) <= day}
        assert active == len(window)


def test_snapshots_and_attainment(setup) -> None:
    project, engine, data = setup
    balances = project.query(["balance"], by=["metric_time:month"], connection=engine)
    assert dict(balances.rows) == pytest.approx(
        {dt.date(2024, 1, 1): 106.0, dt.date(2024, 2, 1): 80.0, dt.date(2024, 4, 1): 30.0}
    )
    result = project.query(
        ["revenue", "quota", "attainment"],
        by=["metric_time:quarter"],
        time_range="this year",
        today="2024-07-01",
        connection=engine,
    )
    actual = data.group(
        lambda o: tf.quarter_start(data.local_day(o[2])),
        lambda o: o[3],
        [o for o in data.orders if data.local_day(o[2]).year == 2024],
    )
    target = data.group(lambda t: tf.quarter_start(t[1]), lambda t: t[2], data.targets)
    for quarter, revenue, quota, attainment in result.rows:
        assert (revenue, quota) == pytest.approx((actual.get(quarter, 0), target[quarter]))
        assert attainment == pytest.approx(actual.get(quarter, 0) / target[quarter])
