"""The default engine: DuckDB in-process, in memory or on a database file opened read-only."""

from __future__ import annotations

import sys
import threading
from typing import Any

import duckdb

from crmetrics.engines import normalise
from crmetrics.engines.base import timeout_message
from crmetrics.engines.guard import Watchdog
from crmetrics.errors import ConnectionFailed, ExecutionError, QueryTimeout
from crmetrics.result import Result


def parse_duckdb_url(url: str | None) -> str:
    """`duckdb:///path/file.duckdb` -> the path; `duckdb://`, `duckdb:///:memory:` or None -> ':memory:'."""
    if not url:
        return ":memory:"
    if not url.startswith("duckdb://"):
        raise ConnectionFailed(f"not a DuckDB URL: {url!r}")
    path = url.removeprefix("duckdb://")
    if path in ("", "/", "/:memory:", ":memory:"):
        return ":memory:"
    return path[1:] if path.startswith("/") and not path.startswith("//") and _looks_relative(path) else path


def _looks_relative(path: str) -> bool:
    """`duckdb:///acme.duckdb` names acme.duckdb in the working folder (SQLAlchemy's convention for 3 slashes)."""
    return "/" not in path[1:]


class DuckDBEngine:
    """Runs SQL on one DuckDB database; each thread gets its own cursor, so a project can be queried concurrently."""

    dialect = "duckdb"

    def __init__(
        self,
        database: str = ":memory:",
        read_only: bool | None = None,
        config: dict[str, Any] | None = None,
        connection: Any = None,
        arrow: bool | None = None,
    ) -> None:
        """`arrow`: fetch results as Arrow (faster for large results, needs pyarrow). The default, None, uses Arrow
        when pyarrow is already imported in the process, so a command-line query does not pay ~150 ms to import it
        while a pandas or Arrow user gets Arrow. Both paths give the same Python types."""
        self.arrow = arrow
        if connection is not None:
            self.connection = connection
        else:
            read_only = database != ":memory:" if read_only is None else read_only
            try:
                self.connection = duckdb.connect(database, read_only=read_only, config=config or {})
            except duckdb.Error as error:
                raise ConnectionFailed(f"cannot open DuckDB database {database!r}: {error}") from None
        self.database = database
        # a TIMESTAMPTZ is cut into days in the session's zone, which DuckDB takes from the machine: sessions of a
        # database crmetrics opens use UTC, so the same data gives the same numbers everywhere (settings.timezone
        # converts explicitly). Per session, not GLOBAL: the host's own connections to the file keep theirs.
        self._utc = connection is None
        self._local = threading.local()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._local.cursor = self.connection.cursor()
            if self._utc:
                cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    def execute(self, sql: str, columns: list[str], timeout: float | None = None) -> Result:
        """Run one SELECT; after `timeout` seconds DuckDB interrupts it."""
        cursor = self.cursor()
        with Watchdog(timeout, cursor.interrupt) as watchdog:
            try:
                if self.arrow or (self.arrow is None and sys.modules.get("pyarrow") is not None):
                    # rows are made from the table only when asked for (a million tuples cost about a second)
                    return Result(
                        columns, None, sql, _arrow=normalise.arrow_table(cursor.sql(sql).to_arrow_table(), columns)
                    )
                return Result(columns, normalise.rows(cursor.execute(sql).fetchall()), sql)
            except duckdb.Error as error:
                if watchdog.fired:
                    raise QueryTimeout(timeout_message(timeout or 0, "DuckDB")) from None
                raise ExecutionError(f"DuckDB could not run the query: {error}") from None

    def close(self) -> None:
        self.connection.close()
