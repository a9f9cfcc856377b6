"""Helpers for the clv, satisfaction, basket and quality tests: a project over tables the test itself builds."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb

import crmetrics
from crmetrics.analysis.base import AnalysisResult
from crmetrics.engines.duckdb import DuckDBEngine


class Fixture:
    """A project loaded from YAML text and an in-memory DuckDB holding the test's rows."""

    def __init__(self, tmp_path: Path, yaml_text: str) -> None:
        path = tmp_path / "crmetrics.yml"
        path.write_text(textwrap.dedent(yaml_text), encoding="utf-8")
        self.project = crmetrics.load(path)
        self.con = duckdb.connect()
        self.engine = DuckDBEngine(connection=self.con)

    def table(self, name: str, columns: str, rows: Iterable[Sequence[Any]]) -> None:
        """CREATE TABLE name (columns) and insert the rows."""
        self.con.execute(f'CREATE TABLE "{name}" ({columns})')
        rows = list(rows)
        if rows:
            marks = ", ".join("?" for _ in rows[0])
            self.con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', [list(r) for r in rows])

    def analyze(self, name: str, **kwargs: Any) -> AnalysisResult:
        return self.project.analyze(name, connection=self.engine, **kwargs)


def records(result: AnalysisResult, table: str) -> list[dict[str, Any]]:
    return result.tables[table].records()
