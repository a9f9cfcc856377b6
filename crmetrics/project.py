"""`crmetrics.load()` and the `Project`: the Python API over a loaded model."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from crmetrics.compiler import build_query, compile_select, render
from crmetrics.dsl.build import ModelBuilder
from crmetrics.dsl.loader import load_raw
from crmetrics.engines.base import Engine
from crmetrics.errors import ConfigError, ConnectionFailed
from crmetrics.model.types import SemanticModel
from crmetrics.result import Result


def load(
    path: str | os.PathLike = "crmetrics.yml",
    env: Mapping[str, str] | None = None,
    allow_outside: bool = False,
) -> Project:
    """Load, validate and resolve a project; raise ConfigError listing every problem with file:line:column."""
    raw = load_raw(path, env, allow_outside)
    builder = ModelBuilder(raw, allow_outside)
    model = builder.build()
    issues = raw.issues + builder.issues
    if issues:
        raise ConfigError(issues)
    return Project(model)


class Project:
    """A loaded project. Safe to share between threads: the model is read-only and each thread gets its own cursor."""

    def __init__(self, model: SemanticModel, connection: Any = None) -> None:
        self.model = model
        self._connection = connection
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model.name

    def compile(
        self,
        metrics: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        where: str | None = None,
        segments: str | Sequence[str] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        dialect: str | None = None,
        context: Mapping[str, Any] | None = None,
        pretty: bool = False,
    ) -> str:
        """SQL for the question, in `dialect` (default: the project's)."""
        query = build_query(self.model, metrics, by, where, segments, order_by, limit, context)
        return render(compile_select(self.model, query), dialect or self.model.dialect, pretty)

    def query(
        self,
        metrics: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        where: str | None = None,
        segments: str | Sequence[str] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        context: Mapping[str, Any] | None = None,
        connection: Any = None,
    ) -> Result:
        """Run the question on the project's database (or `connection`) and return a `Result`."""
        query = build_query(self.model, metrics, by, where, segments, order_by, limit, context)
        engine = self.engine(connection)
        sql = render(compile_select(self.model, query), engine.dialect)
        return engine.execute(sql, query.columns)

    def engine(self, connection: Any = None) -> Engine:
        """The engine for `connection` (a URL or an Engine), else the project's connection; opened once."""
        target = connection if connection is not None else self._connection or self.model.connection
        if target is not None and not isinstance(target, str):
            return target
        key = target or ""
        with self._lock:
            if key not in self._engines:
                self._engines[key] = open_engine(target, self.model.root, self.model.settings)
            return self._engines[key]

    def close(self) -> None:
        """Close the connections this project opened."""
        with self._lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()


def open_engine(url: str | None, root: str = ".", settings: Mapping[str, Any] | None = None) -> Engine:
    """Open a database from a URL; relative DuckDB paths are resolved against the project folder."""
    from crmetrics.engines.duckdb import DuckDBEngine, parse_duckdb_url

    if url is None or url.startswith("duckdb:"):
        path = parse_duckdb_url(url)
        if path != ":memory:" and not os.path.isabs(path):
            path = os.path.join(root, path)
        config = {k: str(v) for k, v in (settings or {}).items() if k in ("threads", "memory_limit")}
        return DuckDBEngine(path, config=config)
    raise ConnectionFailed(f"no engine for connection {url!r}; supported: duckdb:///path")
