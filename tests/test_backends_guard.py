"""The read-only guard and query timeouts: only a single SELECT ever reaches a database, and every engine cancels a
query that runs longer than the timeout (on the database itself, and stays usable afterwards)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

import crmetrics
from crmetrics.engines.guard import SafeEngine, check_read_only
from crmetrics.errors import ConnectionFailed, QueryTimeout, UnsafeStatement
from crmetrics.result import Result
from tests.pg_server import pg_server  # noqa: F401  (a fixture)

SAFE = [
    "SELECT 1",
    "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
    "SELECT 1 UNION ALL SELECT 2",
    "SELECT * FROM (SELECT 1 AS x) AS t WHERE x IN (SELECT 1)",
]
UNSAFE = [
    "INSERT INTO t VALUES (1)",
    "UPDATE t SET x = 1",
    "DELETE FROM t",
    "DROP TABLE t",
    "CREATE TABLE t AS SELECT 1",
    "SELECT 1; DROP TABLE t",
    "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
    "SELECT * INTO copy FROM t",
    "SELECT * FROM t FOR UPDATE",
    "SET search_path = evil",
    "COPY t TO '/tmp/out.csv'",
    "TRUNCATE t",
    "ATTACH 'other.db' AS other",
    "PRAGMA writable_schema = 1",
    "",
    "SELEC 1 FROMM",
]


@pytest.mark.parametrize("sql", SAFE)
def test_single_selects_pass(sql: str) -> None:
    check_read_only(sql, "postgres")


@pytest.mark.parametrize("sql", UNSAFE)
def test_everything_else_is_refused(sql: str) -> None:
    with pytest.raises(UnsafeStatement):
        check_read_only(sql, "postgres")


class Recorder:
    """An engine that records what reached it, as a third-party backend would receive it."""

    dialect = "duckdb"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def execute(self, sql: str, columns: list[str]) -> Result:
        self.seen.append(sql)
        return Result(columns, [(1,)], sql)

    def close(self) -> None:
        self.seen.clear()


@pytest.fixture()
def project(tmp_path: Path) -> crmetrics.Project:
    (tmp_path / "crmetrics.yml").write_text(
        "version: 1\nname: t\nsettings: {query_timeout: 2.5}\n"
        "entities:\n  t:\n    table: t\n    measures:\n      n: {agg: count}\nmetrics:\n  n: {measure: t.n}\n"
    )
    return crmetrics.load(tmp_path / "crmetrics.yml")


def test_every_engine_a_project_hands_out_is_guarded(project: crmetrics.Project) -> None:
    recorder = Recorder()
    engine = project.engine(recorder)
    assert isinstance(engine, SafeEngine) and engine.timeout == 2.5
    with pytest.raises(UnsafeStatement):
        engine.execute("DELETE FROM t", [])
    assert recorder.seen == []


def test_an_engine_that_cannot_cancel_refuses_a_timeout(project: crmetrics.Project) -> None:
    with pytest.raises(ConnectionFailed, match="timeout"):
        project.query(["n"], connection=Recorder())
    project.model.settings["query_timeout"] = 0
    assert project.query(["n"], connection=Recorder()).rows == [(1,)]


def test_cli_timeout_overrides_the_setting(project: crmetrics.Project, tmp_path: Path) -> None:
    from crmetrics.cli.common import load_project

    loaded = load_project(argparse.Namespace(project=str(tmp_path / "crmetrics.yml"), timeout=0.5))
    assert loaded.engine(Recorder()).timeout == 0.5
    assert load_project(argparse.Namespace(project=str(tmp_path / "crmetrics.yml"))).engine(Recorder()).timeout == 2.5


# --- timeouts on the real engines -----------------------------------------------------------------------------------

SLOW = {
    "duckdb": "SELECT count(*) FROM range(1000000000) AS a, range(1000000000) AS b",
    "postgres": "SELECT pg_sleep(30)",
    "sqlite": "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT max(i) FROM c",
    "clickhouse": "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) = 7",
    "spark": "SELECT count(*) FROM range(0, 300000000000, 1, 8) WHERE hash(id) % 1000003 = 7",
}


def _engine(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if name == "duckdb":
        from crmetrics.engines.duckdb import DuckDBEngine

        return DuckDBEngine()
    if name == "postgres":
        pytest.importorskip("psycopg")
        from crmetrics.engines.postgres import PostgresEngine

        return PostgresEngine(request.getfixturevalue("pg_server"))
    if name == "sqlite":
        from crmetrics.engines.dbapi import SQLiteEngine

        return SQLiteEngine(":memory:")
    if name == "clickhouse":
        pytest.importorskip("chdb")
        from crmetrics.engines.clickhouse import ChdbEngine

        return ChdbEngine()
    pytest.importorskip("pyspark")
    from crmetrics.engines.spark import SparkEngine, open_session

    return SparkEngine(open_session("spark://local[2]"))


@pytest.mark.parametrize(
    "name",
    [
        "duckdb",
        "postgres",
        "sqlite",
        pytest.param("clickhouse", marks=pytest.mark.clickhouse),
        pytest.param("spark", marks=pytest.mark.spark),
    ],
)
def test_a_slow_query_is_cancelled_and_the_engine_stays_usable(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    inner = _engine(name, request, tmp_path)
    with pytest.raises(QueryTimeout, match="timeout"):
        SafeEngine(inner, timeout=1.0).execute(SLOW[name], ["x"])
    assert SafeEngine(inner).execute("SELECT 41 + 1 AS x", ["x"]).rows == [(42,)]


def test_postgres_sessions_are_read_only(pg_server: str) -> None:  # noqa: F811
    pytest.importorskip("psycopg")
    from crmetrics.engines.postgres import PostgresEngine

    engine = PostgresEngine(pg_server)
    with pytest.raises(engine.psycopg.errors.ReadOnlySqlTransaction):
        engine.connection().execute("CREATE TABLE should_not_exist (x int)")
    engine.close()
