"""Compile-only checks of the per-dialect rewrites, for warehouses the tests cannot run (Snowflake, BigQuery,
Trino) and for the SQL shapes the engines under test receive. Numbers are checked in tests/differential/."""

from __future__ import annotations

from pathlib import Path

import pytest

import crmetrics
from crmetrics.engines.guard import check_read_only
from tests.differential import traps

DIALECTS = ["duckdb", "postgres", "clickhouse", "spark", "sqlite", "snowflake", "bigquery", "trino", "databricks"]
QUESTIONS = [
    {"metrics": ["events", "total", "amount_per_qty"], "by": ["trap_events.happened_at:week"]},
    {"metrics": ["events", "notes"], "by": ["trap_groups.grp"]},
    {"metrics": ["events"], "by": ["trap_events.months_between", "trap_events.dow_part", "trap_events.isodow"]},
    {"metrics": ["median_amount", "p90_amount"], "by": ["trap_events.grp"]},
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> crmetrics.Project:
    folder = tmp_path_factory.mktemp("dialects")
    (folder / "crmetrics.yml").write_text(traps.PROJECT)
    return crmetrics.load(Path(folder) / "crmetrics.yml")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("index", range(len(QUESTIONS)))
def test_compiled_sql_passes_the_read_only_guard_or_is_refused_by_name(
    project: crmetrics.Project, dialect: str, index: int
) -> None:
    try:
        sql = project.compile(**QUESTIONS[index], dialect=dialect)
    except crmetrics.CompileError as error:
        assert dialect in str(error)
        assert dialect in ("sqlite", "bigquery", "trino") and "percentile" in str(error)
        return
    check_read_only(sql, dialect)


def test_exact_percentiles_never_approximate(project: crmetrics.Project) -> None:
    question = QUESTIONS[3]
    assert "PERCENTILE(CAST(" in project.compile(**question, dialect="spark")
    assert "quantileExactInclusive(0.5)" in project.compile(**question, dialect="clickhouse")
    assert "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY CAST(" in project.compile(**question, dialect="snowflake")
    for dialect in ("spark", "clickhouse", "snowflake", "postgres", "duckdb"):
        assert "APPROX" not in project.compile(**question, dialect=dialect).upper()


def test_bigquery_weeks_start_on_monday(project: crmetrics.Project) -> None:
    assert "ISOWEEK" in project.compile(**QUESTIONS[0], dialect="bigquery")


def test_group_by_all_is_spelt_out_where_unsupported() -> None:
    import sqlglot

    from crmetrics.compiler import render

    def tree() -> sqlglot.exp.Expression:
        return sqlglot.parse_one("SELECT region, upper(city) AS c, count(*) AS n FROM t GROUP BY ALL", read="duckdb")

    assert render(tree(), "postgres").endswith("GROUP BY region, UPPER(city)")
    assert render(tree(), "duckdb").endswith("GROUP BY ALL")
