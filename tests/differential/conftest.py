"""The engines of the differential suite, each loaded once per session with the same data.

DuckDB is the reference. PostgreSQL is a real server (tests/pg_server.py); ClickHouse runs in-process (chdb); Spark
is one local session shared by every test (it takes ~10 s to start); SQLite is a file. An engine whose driver is not
installed is skipped with the reason; CI installs all of them.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.differential import loaders, traps
from tests.pg_server import pg_server  # noqa: F401  (a fixture)

ENGINES = (
    "duckdb",
    "postgres",
    pytest.param("clickhouse", marks=pytest.mark.clickhouse),
    pytest.param("spark", marks=pytest.mark.spark),
    "sqlite",
)
DEMO_CUSTOMERS = 300
# a test run is many small queries on tiny tables: a JIT that stops early, a serial GC, no adaptive planning, one
# shuffle partition and no whole-stage code generation make each query 2-3x faster (start-up ~10 s, then < 1 s)
SMALL_DATA_SPARK = {
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.codegen.wholeStage": "false",
}


@dataclass
class Data:
    duckdb_path: Path
    tables: dict[str, Any]  # name -> pyarrow.Table
    folder: Path


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    """The demo CRM database (deterministic, imperfect data) plus the trap table, as DuckDB and as Arrow."""
    from crmetrics.demo.generate import build_demo_database

    folder = tmp_path_factory.mktemp("differential")
    path = folder / "demo.duckdb"
    build_demo_database(path, customers=DEMO_CUSTOMERS)
    with duckdb.connect(str(path)) as conn:
        traps.write(conn)
        names = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        tables = {name: conn.sql(f'SELECT * FROM "{name}"').to_arrow_table() for name in names}
    return Data(path, tables, folder)


@pytest.fixture(scope="session")
def duckdb_engine(data: Data) -> Any:
    from crmetrics.engines.duckdb import DuckDBEngine

    engine = DuckDBEngine(str(data.duckdb_path))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def postgres_engine(data: Data, pg_server: str) -> Any:  # noqa: F811
    pytest.importorskip("psycopg", reason="psycopg not installed: pip install 'crmetrics[postgres]'")
    from crmetrics.engines.postgres import PostgresEngine

    loaders.load_postgres(pg_server, data.tables)
    engine = PostgresEngine(pg_server)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def chdb_connection() -> Any:
    chdb = pytest.importorskip("chdb", reason="chdb not installed: pip install 'crmetrics[clickhouse]'")
    connection = chdb.connect(":memory:")
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def clickhouse_engine(data: Data, chdb_connection: Any) -> Any:
    from crmetrics.engines.clickhouse import ChdbEngine

    loaders.load_chdb(chdb_connection, data.tables, data.folder)
    return ChdbEngine(connection=chdb_connection)


@pytest.fixture(scope="session")
def spark_session() -> Any:
    """One local Spark session for the whole test run."""
    pytest.importorskip("pyspark", reason="pyspark not installed: pip install 'crmetrics[spark]'")
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17: apt-get install openjdk-17-jre-headless")
    from crmetrics.engines.spark import open_session

    session = open_session("spark://local[2]", SMALL_DATA_SPARK)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_engine(data: Data, spark_session: Any) -> Any:
    from crmetrics.engines.spark import SparkEngine

    loaders.load_spark(spark_session, data.tables, data.folder)
    return SparkEngine(spark_session)


@pytest.fixture(scope="session")
def sqlite_engine(data: Data) -> Any:
    from crmetrics.engines.dbapi import SQLiteEngine

    path = data.folder / "demo.sqlite"
    loaders.load_sqlite(path, data.tables)
    engine = SQLiteEngine(str(path))
    yield engine
    engine.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Any:
    """Each engine in turn, wrapped in the read-only guard exactly as a Project hands it out."""
    from crmetrics.engines.guard import SafeEngine

    return SafeEngine(request.getfixturevalue(f"{request.param}_engine"))


@pytest.fixture()
def reference(duckdb_engine: Any) -> Any:
    from crmetrics.engines.guard import SafeEngine

    return SafeEngine(duckdb_engine)


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The project `crmetrics demo` writes: the demo model, the KPI library, and every demo analysis whose method is
    installed (so the suite picks up each built-in analysis as it is added)."""
    import crmetrics
    from crmetrics.demo.writer import write_project
    from crmetrics.plugins import get_plugin_manager

    registry = get_plugin_manager()[1]
    path = write_project(tmp_path_factory.mktemp("demo_project"), registry, lambda name, reason: None)
    project = crmetrics.load(path)
    yield project
    project.close()
