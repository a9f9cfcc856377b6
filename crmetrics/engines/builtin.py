"""The built-in backends, registered through the same hook as third-party backends.

Drivers are imported only when a backend opens or recognises a connection, so `import crmetrics` stays light and
a missing driver is an error naming the pip extra that installs it (`pip install 'crmetrics[postgres]'`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from crmetrics.engines.base import Engine
from crmetrics.engines.registry import Backend
from crmetrics.errors import ConnectionFailed
from crmetrics.hookspecs import hookimpl


def _module(connection: Any) -> str:
    # duckdb >= 1.1 defines its connection class in the `_duckdb` extension module
    return type(connection).__module__.lstrip("_")


def _local_path(path: str, root: str) -> str:
    return path if path == ":memory:" or os.path.isabs(path) else os.path.join(root, path)


def open_duckdb(url: str, root: str, settings: Mapping[str, Any]) -> Engine:
    """Open `duckdb:///path` (read-only) or an in-memory database; relative paths are under the project folder."""
    from crmetrics.engines.duckdb import DuckDBEngine, parse_duckdb_url

    path = _local_path(parse_duckdb_url(url), root)
    config = {k: str(v) for k, v in settings.items() if k in ("threads", "memory_limit")}
    return DuckDBEngine(path, config=config)


def wrap_duckdb(connection: Any) -> Engine | None:
    """A `duckdb.DuckDBPyConnection` passed to the Python API."""
    if _module(connection).startswith("duckdb") and hasattr(connection, "cursor"):
        from crmetrics.engines.duckdb import DuckDBEngine

        return DuckDBEngine(connection=connection)
    return None


def open_postgres(url: str, root: str, settings: Mapping[str, Any]) -> Engine:
    """`postgresql://user:password@host:port/database` (also `postgres://`, `postgresql+psycopg://`)."""
    from crmetrics.engines.postgres import PostgresEngine

    return PostgresEngine(url)


def open_sqlite(url: str, root: str, settings: Mapping[str, Any]) -> Engine:
    """`sqlite:///relative.db` (under the project folder), `sqlite:////absolute.db`, `sqlite://` (in memory)."""
    from crmetrics.engines.dbapi import SQLiteEngine

    path = url.split("://", 1)[1]
    path = ":memory:" if path in ("", "/", "/:memory:") else path[1:] if path.startswith("/") else path
    return SQLiteEngine(_local_path(path, root))


def open_chdb(url: str, root: str, settings: Mapping[str, Any]) -> Engine:
    """`chdb://` (in memory) or `chdb:///path/to/folder`: ClickHouse in-process."""
    from crmetrics.engines.clickhouse import ChdbEngine

    path = url.split("://", 1)[1]
    path = ":memory:" if path in ("", "/", "/:memory:") else path[1:] if path.startswith("/") else path
    return ChdbEngine(_local_path(path, root))


def open_clickhouse(url: str, root: str, settings: Mapping[str, Any]) -> Engine:
    """`clickhouse://user:password@host:8123/database` (`clickhouse+https://` or `?secure=true` for TLS)."""
    from crmetrics.engines.clickhouse import ClickHouseEngine

    return ClickHouseEngine(url)


def open_spark(url: str, root: str, settings: Mapping[str, Any]) -> Engine:
    """`spark://local[N]`, `spark://host:7077` or a Spark Connect URL `sc://host:15002`."""
    from crmetrics.engines.base import require
    from crmetrics.engines.spark import SparkEngine, open_session, running_session

    require("pyspark", "spark", "a Spark connection")
    # a session that was already running belongs to its creator: closing the project must not stop it
    started_here = not url.startswith("sc://") and running_session() is None
    return SparkEngine(open_session(url), owned=started_here)


def wrap_known_driver(connection: Any) -> Engine | None:
    """chdb, clickhouse-connect and Spark objects, then any DB-API / SQLAlchemy / ADBC connection."""
    module = _module(connection)
    if module.startswith("chdb") and hasattr(connection, "cursor"):
        from crmetrics.engines.clickhouse import ChdbEngine

        return ChdbEngine(connection=connection)
    if module.startswith("clickhouse_connect") and hasattr(connection, "query"):
        from crmetrics.engines.clickhouse import ClickHouseEngine

        return ClickHouseEngine(client=connection)
    if module.startswith("pyspark"):
        from crmetrics.engines.spark import SparkEngine, is_spark_session

        return SparkEngine(connection) if is_spark_session(connection) else None
    from crmetrics.engines.dbapi import DBAPIEngine, detect_dialect, is_adbc, is_sqlalchemy

    if (is_sqlalchemy(connection) or is_adbc(connection) or hasattr(connection, "cursor")) and detect_dialect(
        connection
    ):
        return DBAPIEngine(connection)
    return None


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(Backend("duckdb", "duckdb", ("duckdb",), open_duckdb, wrap_duckdb, "DuckDB, in-process (default)"))
    register(
        Backend(
            "postgres",
            "postgres",
            ("postgresql", "postgres"),
            open_postgres,
            None,
            "PostgreSQL (psycopg)",
            ("postgres",),
        )
    )
    register(Backend("sqlite", "sqlite", ("sqlite",), open_sqlite, None, "SQLite (standard library)"))
    register(Backend("chdb", "clickhouse", ("chdb",), open_chdb, None, "ClickHouse in-process (chdb)", ("clickhouse",)))
    register(
        Backend(
            "clickhouse",
            "clickhouse",
            ("clickhouse",),
            open_clickhouse,
            None,
            "ClickHouse server (clickhouse-connect)",
            ("clickhouse",),
        )
    )
    register(
        Backend("spark", "spark", ("spark", "sc"), open_spark, None, "Spark SQL (pyspark, Spark Connect)", ("spark",))
    )
    # last: it recognises any DB-API 2.0, SQLAlchemy or ADBC connection whose dialect it can tell
    register(
        Backend(
            "dbapi",
            "",
            (),
            _never_opens,
            wrap_known_driver,
            "DB-API 2.0 / SQLAlchemy / ADBC connection objects",
            ("sqlalchemy", "adbc"),
        )
    )


def _never_opens(url: str, root: str, settings: Mapping[str, Any]) -> Engine:
    """The dbapi backend claims no URL scheme: it only wraps connection objects."""
    raise ConnectionFailed(f"{url!r}: pass a DB-API, SQLAlchemy or ADBC connection object instead of a URL")
