"""Limits for embedding: the CLI's default row limit and its notice, DuckDB threads and memory limit from the
project's settings, and the query timeout (a cancelled query is a CRM520 error, exit 2 on the CLI)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

import crmetrics
from crmetrics.cli import main
from crmetrics.errors import ExecutionError

PROJECT = """
version: 1
name: limits
{settings}
entities:
  numbers:
    sql: "SELECT range AS id, range % {groups} AS grp FROM range({rows})"
    key: id
    dimensions:
      grp: {{type: number}}
    measures:
      n: {{agg: count}}
      distinct_ids: {{agg: count_distinct, expr: id}}
metrics:
  n: {{measure: numbers.n}}
  distinct_ids: {{measure: numbers.distinct_ids}}
"""


def _project(folder: Path, settings: str = "", groups: int = 1500, rows: int = 3000) -> Path:
    path = folder / "crmetrics.yml"
    path.write_text(PROJECT.format(settings=settings, groups=groups, rows=rows), encoding="utf-8")
    return path


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_default_row_limit_with_a_visible_notice(tmp_path: Path) -> None:
    path = _project(tmp_path)
    code, out, err = run_cli(["query", "-m", "n", "--by", "numbers.grp", "--project", str(path)])
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 + 1000 + 2  # header, rule, 1000 rows, notice, count
    assert "500 more rows not shown (showing 1000" in lines[-2]
    assert lines[-1] == "(1500 rows)"


def test_row_limit_from_settings_and_full_output_in_json(tmp_path: Path) -> None:
    path = _project(tmp_path, "settings: {row_limit: 7}")
    code, out, _ = run_cli(["query", "-m", "n", "--by", "numbers.grp", "--project", str(path)])
    assert code == 0 and "1493 more rows not shown (showing 7" in out
    code, out, _ = run_cli(["query", "-m", "n", "--by", "numbers.grp", "--project", str(path), "-f", "json"])
    rows = json.loads(out)
    assert len(rows) == 1500 and rows[0] == {"numbers.grp": 0, "n": 2}
    code, out, _ = run_cli(["query", "-m", "n", "--by", "numbers.grp", "--project", str(path), "--limit", "3"])
    assert "not shown" not in out and out.splitlines()[-1] == "(3 rows)"


def test_threads_and_memory_limit_reach_duckdb(tmp_path: Path) -> None:
    project = crmetrics.load(_project(tmp_path, "settings: {threads: 2, memory_limit: 300MB}"))
    engine = project.engine()
    connection = getattr(engine, "engine", engine).connection
    threads, memory = connection.execute(
        "SELECT current_setting('threads'), current_setting('memory_limit')"
    ).fetchone()
    assert threads == 2
    assert memory.replace(" ", "").upper() in ("300.0MB", "286.1MIB", "300MB")
    assert project.query(["n"]).rows == [(3000,)]
    project.close()


def test_query_timeout_cancels_on_the_database(tmp_path: Path) -> None:
    # COUNT(DISTINCT) over ten billion generated ids runs for minutes unless DuckDB interrupts it
    path = _project(tmp_path, "settings: {query_timeout: 0.2}", groups=7, rows=10_000_000_000)
    project = crmetrics.load(path)
    with pytest.raises(ExecutionError) as error:
        project.query(["distinct_ids"])
    assert error.value.code == "CRM520"
    code, out, err = run_cli(["query", "-m", "distinct_ids", "--project", str(path)])
    assert code == 2 and "CRM520" in err and "Traceback" not in err and out == ""
    code, out, err = run_cli(["query", "-m", "n", "--project", str(path), "--timeout", "0.1"])
    assert code == 2 and "CRM520" in err
    project.close()
