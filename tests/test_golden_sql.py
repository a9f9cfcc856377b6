"""Golden SQL: the exact SQL of a handful of questions in every supported dialect, so review sees every change.

Regenerate after an intended change with `CRMETRICS_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_sql.py`
and read the diff. The same questions run on DuckDB in tests/test_core_numbers.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crmetrics.errors import CompileError

GOLDEN = Path(__file__).parent / "golden"
DIALECTS = ["duckdb", "postgres", "snowflake", "bigquery", "spark", "databricks", "sqlite", "clickhouse", "tsql",
            "trino", "redshift", "mysql"]
CASES = {
    "by_region": {"metrics": ["revenue"], "by": ["regions.name"]},
    "two_facts_by_month": {"metrics": ["revenue", "ticket_count", "csat"],
                           "by": ["customers.segment", "metric_time:month"]},
    "segment_and_where": {"metrics": ["aov", "web_share"], "by": ["customers.age_band"],
                          "where": "regions.name <> 'O''Higgins'", "segments": ["high_value"]},
    "aggregations": {"metrics": ["order_count", "buyers", "avg_amount", "median_amount", "min_amount"]},
    "top_segments": {"metrics": ["revenue"], "by": ["customers.segment"], "order_by": ["-revenue"], "limit": 5},
}


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_sql(crm_project, case: str, dialect: str) -> None:
    try:
        sql = crm_project.compile(**CASES[case], dialect=dialect, pretty=True) + "\n"
    except CompileError as error:  # a refusal naming the dialect is part of the contract too
        sql = f"-- refused: {error}\n"
    path = GOLDEN / case / f"{dialect}.sql"
    if os.environ.get("CRMETRICS_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    assert path.exists(), f"no golden file {path}; run with CRMETRICS_UPDATE_GOLDEN=1"
    assert sql == path.read_text(), f"SQL for {case} in {dialect} changed; see the module docstring"


def test_percentiles_compile_in_every_dialect_or_fail_naming_it(crm_project) -> None:
    import crmetrics

    for dialect in DIALECTS:
        try:
            sql = crm_project.compile(["p90_amount"], dialect=dialect)
        except crmetrics.CompileError as error:
            assert dialect in str(error)
        else:
            assert "0.9" in sql
