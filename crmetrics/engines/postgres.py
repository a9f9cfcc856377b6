"""PostgreSQL through psycopg 3: one connection per thread, read-only transactions, cancellable queries."""

from __future__ import annotations

import re
import threading
from typing import Any

from crmetrics.engines import normalise
from crmetrics.engines.base import require, timeout_message
from crmetrics.engines.guard import Watchdog
from crmetrics.errors import ConnectionFailed, ExecutionError, QueryTimeout
from crmetrics.result import Result


def conninfo(url: str) -> str:
    """`postgresql+psycopg://...` and `postgres://...` -> the libpq URI psycopg understands."""
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)


class PostgresEngine:
    """Runs SQL on PostgreSQL. Every session is opened with `default_transaction_read_only=on`, a second fence
    behind the read-only guard; each thread gets its own connection, so a project can be queried concurrently."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.psycopg: Any = require("psycopg", "postgres", "a postgresql:// connection")
        self.url = conninfo(url)
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self.connection()  # fail now, with the connection error, rather than at the first query

    def connection(self) -> Any:
        conn = getattr(self._local, "connection", None)
        if conn is None or conn.closed:
            try:
                conn = self.psycopg.connect(self.url, autocommit=True, options="-c default_transaction_read_only=on")
            except self.psycopg.Error as error:
                raise ConnectionFailed(f"cannot connect to PostgreSQL: {error}".strip()) from None
            self._local.connection = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def execute(self, sql: str, columns: list[str], timeout: float | None = None) -> Result:
        """Run one SELECT; after `timeout` seconds the server is asked to cancel it."""
        conn = self.connection()
        with Watchdog(timeout, conn.cancel_safe) as watchdog:
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql)  # no parameters: psycopg sends the text unchanged
                    rows = cursor.fetchall()
            except self.psycopg.Error as error:
                if watchdog.fired:
                    raise QueryTimeout(timeout_message(timeout or 0, "PostgreSQL")) from None
                raise ExecutionError(f"PostgreSQL could not run the query: {error}".strip()) from None
        return Result(columns, normalise.rows(rows), sql)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
