"""The built-in DuckDB backend, registered through the same hook as third-party backends."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from crmetrics.engines.base import Engine
from crmetrics.engines.registry import Backend
from crmetrics.hookspecs import hookimpl


def open_duckdb(url: str, root: str, settings: Mapping[str, Any]) -> Engine:
    """Open `duckdb:///path` (read-only) or an in-memory database; relative paths are under the project folder."""
    from crmetrics.engines.duckdb import DuckDBEngine, parse_duckdb_url

    path = parse_duckdb_url(url)
    if path != ":memory:" and not os.path.isabs(path):
        path = os.path.join(root, path)
    config = {k: str(v) for k, v in settings.items() if k in ("threads", "memory_limit")}
    return DuckDBEngine(path, config=config)


def wrap_duckdb(connection: Any) -> Engine | None:
    """A `duckdb.DuckDBPyConnection` passed to the Python API."""
    # duckdb >= 1.1 defines its connection class in the `_duckdb` extension module
    if type(connection).__module__.lstrip("_").startswith("duckdb") and hasattr(connection, "cursor"):
        from crmetrics.engines.duckdb import DuckDBEngine

        return DuckDBEngine(connection=connection)
    return None


@hookimpl
def register_backends(register: Callable[[Backend], None]) -> None:
    register(Backend("duckdb", "duckdb", ("duckdb",), open_duckdb, wrap_duckdb, "DuckDB, in-process (default)"))
