"""Connections: URLs through the backend registry, bring-your-own connection objects (DB-API, SQLAlchemy, ADBC),
missing drivers named by their pip extra, canonical result types."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import crmetrics
from crmetrics.engines import normalise
from crmetrics.engines.dbapi import DBAPIEngine
from crmetrics.errors import ConnectionFailed, MissingDriver
from tests.pg_server import pg_server  # noqa: F401  (a fixture)

ROWS = [(1, "north", 10.5), (2, "north", 4.5), (3, "south", 7.0), (4, None, 1.0), (5, "süd", None)]
PROJECT = """\
version: 1
name: conn
entities:
  sales:
    table: sales
    key: id
    dimensions:
      region: {}
    measures:
      total: {agg: sum, expr: amount}
      n: {agg: count}
metrics:
  total: {measure: sales.total}
  n: {measure: sales.n}
"""


def expected() -> list[tuple]:
    """Totals and counts per region, NULL last, computed in Python."""
    groups: dict[Any, list[float | None]] = {}
    for _, region, amount in ROWS:
        groups.setdefault(region, []).append(amount)
    keys = sorted(groups, key=lambda k: (k is None, k or ""))
    return [(k, sum(a for a in groups[k] if a is not None), len(groups[k])) for k in keys]


@pytest.fixture()
def project(tmp_path: Path) -> crmetrics.Project:
    (tmp_path / "crmetrics.yml").write_text(PROJECT)
    return crmetrics.load(tmp_path / "crmetrics.yml")


def _sqlite_file(path: Path) -> Path:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE sales (id INTEGER, region TEXT, amount REAL)")
        conn.executemany("INSERT INTO sales VALUES (?, ?, ?)", ROWS)
    conn.close()
    return path


def test_sqlite_url_relative_to_the_project(project: crmetrics.Project, tmp_path: Path) -> None:
    _sqlite_file(tmp_path / "sales.db")
    result = project.query(["total", "n"], by=["sales.region"], connection="sqlite:///sales.db")
    assert result.rows == expected()


def test_sqlite_url_is_opened_read_only(project: crmetrics.Project, tmp_path: Path) -> None:
    _sqlite_file(tmp_path / "sales.db")
    engine = project.engine(f"sqlite:///{tmp_path}/sales.db")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        engine.engine.connection.execute("DELETE FROM sales")


def test_a_dbapi_connection_is_wrapped_with_its_dialect(project: crmetrics.Project, tmp_path: Path) -> None:
    conn = sqlite3.connect(_sqlite_file(tmp_path / "sales.db"), check_same_thread=False)
    assert project.engine(conn).dialect == "sqlite"
    assert project.query(["total", "n"], by=["sales.region"], connection=conn).rows == expected()


def test_a_sqlalchemy_engine_hands_each_query_a_pooled_connection(project: crmetrics.Project, tmp_path: Path) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    engine = sqlalchemy.create_engine(f"sqlite:///{_sqlite_file(tmp_path / 'sales.db')}")
    assert project.engine(engine).dialect == "sqlite"
    assert project.query(["total", "n"], by=["sales.region"], connection=engine).rows == expected()
    engine.dispose()


def test_an_adbc_connection_returns_arrow(project: crmetrics.Project, tmp_path: Path) -> None:
    adbc = pytest.importorskip("adbc_driver_sqlite.dbapi")
    conn = adbc.connect(str(_sqlite_file(tmp_path / "sales.db")))
    result = project.query(["total", "n"], by=["sales.region"], connection=conn)
    assert result.rows == expected()
    assert result.to_arrow().column_names == ["sales.region", "total", "n"]
    conn.close()


def test_postgres_url_and_psycopg_connection(project: crmetrics.Project, pg_server: str) -> None:  # noqa: F811
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS sales")
        conn.execute("CREATE TABLE sales (id int, region text, amount numeric(10, 2))")
        with conn.cursor().copy("COPY sales FROM STDIN") as copy:
            for row in ROWS:
                copy.write_row(row)
        by_url = project.query(["total", "n"], by=["sales.region"], connection=pg_server)
        by_object = project.query(["total", "n"], by=["sales.region"], connection=conn)
    assert by_url.rows == by_object.rows == expected()
    assert all(type(row[1]) is float for row in by_url.rows)  # NUMERIC sums arrive as float, never Decimal


def test_chdb_url(project: crmetrics.Project) -> None:
    pytest.importorskip("chdb")
    engine = project.engine("chdb://")
    assert engine.dialect == "clickhouse"
    assert engine.execute("SELECT toDecimal64(2.5, 2) AS x, toUInt8(3) AS y", ["x", "y"]).rows == [(2.5, 3)]


def test_clickhouse_server_url_options() -> None:
    from crmetrics.engines.clickhouse import client_options

    options = client_options("clickhouse+https://ana:p%40ss@ch.example.com:8443/crm?compress=lz4")
    assert options == {
        "host": "ch.example.com",
        "port": 8443,
        "secure": True,
        "username": "ana",
        "password": "p@ss",
        "database": "crm",
        "compress": "lz4",
    }


def test_an_unreachable_server_is_a_connection_error(project: crmetrics.Project) -> None:
    from tests.pg_server import free_port

    pytest.importorskip("psycopg")
    with pytest.raises(ConnectionFailed, match="PostgreSQL"):
        project.engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")


def test_a_missing_driver_names_the_extra(project: crmetrics.Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(MissingDriver, match=r"pip install 'crmetrics\[postgres\]'"):
        project.engine("postgresql://localhost/crm")


def test_unknown_objects_and_schemes_are_refused(project: crmetrics.Project) -> None:
    with pytest.raises(ConnectionFailed, match="no backend"):
        project.engine("oracle://scott@db/orcl")
    with pytest.raises(ConnectionFailed, match="no backend recognises"):
        project.engine(object())
    with pytest.raises(ConnectionFailed, match="dialect"):
        DBAPIEngine(object())


def test_explicit_dialect_for_a_connection_crmetrics_cannot_identify(tmp_path: Path) -> None:
    engine = DBAPIEngine(sqlite3.connect(_sqlite_file(tmp_path / "sales.db")), dialect="sqlite")
    assert engine.execute("SELECT count(*) FROM sales", ["n"]).rows == [(5,)]


def test_builtin_backends_are_registered_with_their_extras(project: crmetrics.Project) -> None:
    backends = project.plugins.of("backend")
    assert {"duckdb", "postgres", "sqlite", "chdb", "clickhouse", "spark", "dbapi"} <= set(backends)
    assert backends["postgres"].extras == ("postgres",)
    assert backends["spark"].schemes == ("spark", "sc")


def test_importing_crmetrics_loads_no_driver() -> None:
    code = (
        "import sys, crmetrics; bad = [m for m in ('psycopg', 'chdb', 'pyspark', 'sqlalchemy', 'clickhouse_connect',"
        " 'adbc_driver_manager') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_canonical_types() -> None:
    rows = normalise.rows(
        [
            (Decimal("10"), Decimal("1.50"), 3, dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
            (Decimal("20"), Decimal("0"), None, None),
        ]
    )
    assert rows == [(10, 1.5, 3, dt.datetime(2023, 12, 31, 22)), (20, 0.0, None, None)]
    assert [type(v) for v in rows[1][:2]] == [int, float]
    assert normalise.text_dates([("2024-01-31", "x"), (None, "2024-01-01")]) == [
        (dt.date(2024, 1, 31), "x"),
        (None, "2024-01-01"),
    ]


def test_one_postgres_engine_serves_many_threads(pg_server: str) -> None:  # noqa: F811
    """Each thread gets its own connection, so concurrent queries neither block nor mix their results."""
    pytest.importorskip("psycopg")
    from concurrent.futures import ThreadPoolExecutor

    from crmetrics.engines.postgres import PostgresEngine

    engine = PostgresEngine(pg_server)
    sql = "SELECT count(*) AS n, sum(g) AS s FROM generate_series(1, 100000) AS g"
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: engine.execute(sql, ["n", "s"]).rows, range(32)))
    assert results == [[(100000, 5000050000)]] * 32
    engine.close()
