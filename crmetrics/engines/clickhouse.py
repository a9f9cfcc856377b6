"""ClickHouse: in-process through chdb (`chdb://`), or a server through clickhouse-connect (`clickhouse://`).

Timeouts use ClickHouse's own `max_execution_time` setting, so the server stops the query itself; every query also runs
with `prefer_column_name_to_alias = 1`, so names resolve as in standard SQL. chdb's Arrow
output (like ClickHouse's own Arrow format, which clickhouse-connect's `query_arrow` uses) turns DateTime into plain
UInt32 seconds, so results are read as rows together with their ClickHouse column types, which say which values are
DECIMALs and dates.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import sqlglot
from sqlglot import exp

from crmetrics.engines import normalise
from crmetrics.engines.base import require, timeout_message
from crmetrics.errors import ConnectionFailed, ExecutionError, QueryTimeout
from crmetrics.result import Result

_TIMEOUT_CODE = "TIMEOUT_EXCEEDED"
_DECIMAL = re.compile(r"(?:Nullable\()?Decimal(?:32|64|128|256)?\((?:\d+,\s*)?(\d+)\)")


# ClickHouse resolves a name to a SELECT alias before a column (`SUM(revenue) AS revenue` then breaks a later
# `SUM(revenue)`); standard SQL prefers the column, and so does every other engine crmetrics runs on
STANDARD_NAMES = {"prefer_column_name_to_alias": 1}


def query_settings(timeout: float | None) -> dict[str, float]:
    """The settings each query runs with: standard name resolution and, if asked, `max_execution_time`."""
    return {**STANDARD_NAMES, **({"max_execution_time": max(timeout, 0.001)} if timeout else {})}


def with_settings(sql: str, settings: dict[str, float]) -> str:
    """`sql` with `SETTINGS name = value, ...` attached (set on the AST, not pasted)."""
    tree = sqlglot.parse_one(sql, read="clickhouse")
    extra = [exp.EQ(this=exp.var(name), expression=exp.Literal.number(value)) for name, value in settings.items()]
    tree.set("settings", [*(tree.args.get("settings") or []), *extra])
    return tree.sql(dialect="clickhouse")


def typed_rows(rows: Any, types: list[str]) -> list[tuple]:
    """chdb rows in canonical types: a DECIMAL column with a scale is float, one without is int."""
    converters = {}
    for index, kind in enumerate(types):
        match = _DECIMAL.match(kind)
        if match:
            converters[index] = float if int(match.group(1)) > 0 else int
    out = normalise.rows(rows)
    if not converters:
        return out
    return [
        tuple(converters[i](v) if i in converters and v is not None else v for i, v in enumerate(row)) for row in out
    ]


class ChdbEngine:
    """ClickHouse in-process (chdb): `chdb://` for a fresh in-memory database, `chdb:///path` for a folder."""

    dialect = "clickhouse"

    def __init__(self, path: str = ":memory:", connection: Any = None) -> None:
        if connection is None:
            chdb: Any = require("chdb", "clickhouse", "a chdb:// connection")
            try:
                connection = chdb.connect(path)
            except Exception as error:
                raise ConnectionFailed(f"cannot open chdb database {path!r}: {error}") from None
            self._owned = True
        else:
            self._owned = False
        self.connection = connection
        self._lock = threading.Lock()  # one chdb connection runs one query at a time

    def execute(self, sql: str, columns: list[str], timeout: float | None = None) -> Result:
        """Run one SELECT; ClickHouse stops it after `timeout` seconds."""
        text = with_settings(sql, query_settings(timeout))
        with self._lock:
            cursor = self.connection.cursor()
            try:
                cursor.execute(text)
                rows, types = cursor.fetchall(), cursor.column_types()
            except Exception as error:
                if _TIMEOUT_CODE in str(error):
                    raise QueryTimeout(timeout_message(timeout or 0, "ClickHouse")) from None
                raise ExecutionError(f"ClickHouse (chdb) could not run the query: {error}".strip()) from None
            finally:
                cursor.close()
        return Result(columns, typed_rows(rows, types), sql)

    def close(self) -> None:
        if self._owned:
            self.connection.close()


def client_options(url: str) -> dict[str, Any]:
    """`clickhouse://user:password@host:port/database?secure=true` -> clickhouse_connect.get_client keywords."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    secure = scheme.endswith("https") or query.pop("secure", "").lower() in ("1", "true", "yes")
    options: dict[str, Any] = {"host": parsed.hostname or "localhost", "secure": secure, **query}
    if parsed.port:
        options["port"] = parsed.port
    if parsed.username:
        options["username"] = unquote(parsed.username)
    if parsed.password:
        options["password"] = unquote(parsed.password)
    if parsed.path.strip("/"):
        options["database"] = unquote(parsed.path.strip("/"))
    return options


class ClickHouseEngine:
    """A ClickHouse server through clickhouse-connect (HTTP); each thread gets its own client session."""

    dialect = "clickhouse"

    def __init__(self, url: str | None = None, client: Any = None) -> None:
        self.module: Any = require("clickhouse_connect", "clickhouse", "a clickhouse:// connection")
        self.options = client_options(url) if url else {}
        self._local = threading.local()
        self._shared = client
        if client is None:
            self.client()  # fail now, with the connection error

    def client(self) -> Any:
        if self._shared is not None:
            return self._shared
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                client = self._local.client = self.module.get_client(**self.options)
            except Exception as error:
                raise ConnectionFailed(f"cannot connect to ClickHouse: {error}".strip()) from None
        return client

    def execute(self, sql: str, columns: list[str], timeout: float | None = None) -> Result:
        """Run one SELECT; ClickHouse stops it after `timeout` seconds."""
        try:
            result = self.client().query(sql, settings=query_settings(timeout))
        except Exception as error:
            if _TIMEOUT_CODE in str(error):
                raise QueryTimeout(timeout_message(timeout or 0, "ClickHouse")) from None
            raise ExecutionError(f"ClickHouse could not run the query: {error}".strip()) from None
        return Result(columns, typed_rows(result.result_rows, [t.name for t in result.column_types]), sql)

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
