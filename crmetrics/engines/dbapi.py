"""Bring-your-own connections: a DB-API 2.0 connection, a SQLAlchemy engine or an ADBC connection.

The dialect is detected from the object (the driver's module, SQLAlchemy's `dialect.name`, ADBC's vendor name) or
given explicitly: `DBAPIEngine(connection, dialect="snowflake")`. A plain DB-API connection is used by one query at
a time (DB-API connections are not safe to share); a SQLAlchemy engine hands each query a pooled connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from crmetrics.engines import normalise
from crmetrics.engines.base import timeout_message
from crmetrics.engines.guard import Watchdog
from crmetrics.errors import ConnectionFailed, ExecutionError, QueryTimeout
from crmetrics.result import Result, arrow_rows

# driver module (first dotted part) -> sqlglot dialect
DRIVER_DIALECTS = {
    "psycopg": "postgres",
    "psycopg2": "postgres",
    "pg8000": "postgres",
    "sqlite3": "sqlite",
    "pysqlite2": "sqlite",
    "duckdb": "duckdb",
    "clickhouse_connect": "clickhouse",
    "clickhouse_driver": "clickhouse",
    "chdb": "clickhouse",
    "snowflake": "snowflake",
    "google": "bigquery",
    "trino": "trino",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "databricks": "databricks",
    "redshift_connector": "redshift",
    "adbc_driver_postgresql": "postgres",
    "adbc_driver_sqlite": "sqlite",
    "adbc_driver_snowflake": "snowflake",
    "adbc_driver_bigquery": "bigquery",
    "adbc_driver_flightsql": "",
}
# SQLAlchemy dialect names and ADBC vendor names that differ from sqlglot's
NAME_DIALECTS = {"postgresql": "postgres", "mssql": "tsql", "sqlserver": "tsql", "awsathena": "athena"}


def is_sqlalchemy(obj: Any) -> bool:
    return type(obj).__module__.startswith("sqlalchemy") and hasattr(obj, "raw_connection")


def is_adbc(obj: Any) -> bool:
    return type(obj).__module__.startswith("adbc_driver_manager") and hasattr(obj, "adbc_get_info")


def detect_dialect(obj: Any) -> str | None:
    """The sqlglot dialect of a connection object, or None when it cannot be told."""
    if is_sqlalchemy(obj):
        name = obj.dialect.name
        return NAME_DIALECTS.get(name, name)
    if is_adbc(obj):
        vendor = str(obj.adbc_get_info().get("vendor_name", "")).lower()
        return NAME_DIALECTS.get(vendor, vendor) or None
    root = type(obj).__module__.split(".")[0]
    return DRIVER_DIALECTS.get(root) or None


def _cancel_function(connection: Any, cursor: Any) -> Callable[[], Any] | None:
    """How to cancel a running query with this driver, if it offers a way."""
    for owner, name in (
        (cursor, "adbc_cancel"),  # ADBC
        (connection, "cancel_safe"),  # psycopg 3
        (connection, "interrupt"),  # sqlite3
        (connection, "cancel"),  # psycopg2
        (cursor, "cancel"),  # e.g. trino, snowflake
    ):
        function = getattr(owner, name, None)
        if callable(function):
            return function
    return None


class DBAPIEngine:
    """Runs SQL through a DB-API 2.0 connection, a SQLAlchemy engine or an ADBC connection."""

    def __init__(self, connection: Any, dialect: str | None = None) -> None:
        found = dialect or detect_dialect(connection)
        if not found:
            raise ConnectionFailed(
                f"cannot tell the SQL dialect of a {type(connection).__module__}.{type(connection).__name__}; "
                f"pass it: DBAPIEngine(connection, dialect='postgres')"
            )
        self.dialect = found
        self.connection = connection
        self._pooled = is_sqlalchemy(connection)
        self._lock = threading.Lock()

    @contextmanager
    def _driver_connection(self) -> Iterator[Any]:
        if self._pooled:
            raw = self.connection.raw_connection()  # the DB-API connection, not SQLAlchemy's text() layer
            try:
                yield raw.driver_connection, raw
            finally:
                raw.close()  # back to the pool
        else:
            with self._lock:
                yield self.connection, self.connection

    def execute(self, sql: str, columns: list[str], timeout: float | None = None) -> Result:
        """Run one SELECT through the driver; Arrow is used when the driver offers it (ADBC)."""
        with self._driver_connection() as (driver, dbapi):
            cursor = dbapi.cursor()
            cancel = _cancel_function(driver, cursor) if timeout else None
            if timeout and cancel is None:
                raise ConnectionFailed(
                    f"the {type(driver).__module__} driver offers no way to cancel a query, so the query timeout "
                    f"cannot be honoured"
                )
            try:
                with Watchdog(timeout, cancel or (lambda: None)) as watchdog:
                    try:
                        cursor.execute(sql)
                        if hasattr(cursor, "fetch_arrow_table"):
                            table = normalise.arrow_table(cursor.fetch_arrow_table(), columns)
                            return Result(columns, self._rows(arrow_rows(table)), sql, _arrow=table)
                        return Result(columns, self._rows(normalise.rows(cursor.fetchall())), sql)
                    except Exception as error:
                        if watchdog.fired:
                            raise QueryTimeout(timeout_message(timeout or 0, self.dialect)) from None
                        raise ExecutionError(f"{self.dialect} could not run the query: {error}".strip()) from None
            finally:
                cursor.close()

    def _rows(self, rows: list[tuple]) -> list[tuple]:
        return normalise.text_dates(rows) if self.dialect == "sqlite" else rows

    def close(self) -> None:
        """Connections passed in by the caller are the caller's to close; nothing is closed here."""


class SQLiteEngine(DBAPIEngine):
    """A SQLite database file opened read-only (`sqlite:///path`)."""

    def __init__(self, path: str) -> None:
        import sqlite3

        uri = "file::memory:" if path == ":memory:" else f"file:{path}?mode=ro"
        try:
            connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        except sqlite3.Error as error:
            raise ConnectionFailed(f"cannot open SQLite database {path!r}: {error}") from None
        super().__init__(connection, "sqlite")

    def close(self) -> None:
        self.connection.close()
