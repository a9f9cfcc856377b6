"""The demo project's questions and built-in analyses on every engine give DuckDB's answers.

Same rows in the same order, the same NULLs, numbers within 1e-9 relative and of the same Python type. An engine
that lacks a feature a question needs must refuse it at compile time with an error naming the dialect.
"""

from __future__ import annotations

from typing import Any

import pytest

import crmetrics
from tests.differential.compare import assert_rows

QUESTIONS: dict[str, dict[str, Any]] = {
    "by_region": {"metrics": ["revenue", "order_count", "average_order_value", "buyers"], "by": ["customers.region"]},
    "monthly_across_facts": {
        "metrics": ["revenue", "customers", "leads", "ticket_count"],
        "by": ["metric_time:month"],
    },
    "weekly": {"metrics": ["revenue", "order_count"], "by": ["metric_time:week"]},
    "quarterly_by_channel": {"metrics": ["revenue", "online_share"], "by": ["orders.channel", "metric_time:quarter"]},
    "yearly_targets": {"metrics": ["units_sold", "revenue_target", "target_attainment"], "by": ["metric_time:year"]},
    "medians": {"metrics": ["median_order_value", "revenue_per_buyer"], "by": ["customers.segment"]},
    "segment_and_where": {
        "metrics": ["revenue", "orders_per_buyer"],
        "by": ["customers.age_band"],
        "where": "customers.region <> 'EMEA'",
        "segments": ["high_value"],
    },
    "measure_dimension": {"metrics": ["customers"], "by": ["customers.lifetime_orders"]},
    "booleans": {"metrics": ["leads", "lead_conversion_rate", "cost_per_acquisition"], "by": ["leads.is_converted"]},
    "service_and_nps": {
        "metrics": ["net_promoter_score", "csat_satisfied_rate", "open_tickets", "csat"],
        "by": ["customers.region"],
    },
    "pipeline": {"metrics": ["win_rate", "avg_deal_size", "open_pipeline"], "by": ["sales_reps.team"]},
    "top_cities": {"metrics": ["revenue"], "by": ["customers.city"], "order_by": ["-revenue"], "limit": 5},
    "daily_in_december": {
        "metrics": ["order_count", "revenue"],
        "by": ["orders.ordered_at:day"],
        "where": "orders.ordered_at >= '2024-12-01'",
    },
    "totals": {"metrics": ["revenue", "email_completeness", "won_amount", "marketing_cost"]},
}


def _refused(error: crmetrics.CompileError, dialect: str) -> bool:
    return dialect in str(error)


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_question_matches_duckdb(demo_project: crmetrics.Project, engine: Any, reference: Any, name: str) -> None:
    question = QUESTIONS[name]
    expected = demo_project.query(**question, connection=reference)
    assert expected.rows, f"{name}: the reference returned no rows, so the comparison would prove nothing"
    try:
        result = demo_project.query(**question, connection=engine)
    except crmetrics.CompileError as error:
        assert engine.dialect == "sqlite" and _refused(error, engine.dialect), str(error)
        return
    assert result.columns == expected.columns
    assert_rows(result.rows, expected.rows, f"{name} on {engine.dialect}")


def _demo_analyses() -> list[str]:
    """The demo analyses whose methods are installed (known at collection, so each is its own test)."""
    from crmetrics.demo.writer import usable_analyses
    from crmetrics.plugins import get_plugin_manager

    return sorted(usable_analyses(get_plugin_manager()[1], lambda name, reason: None))


@pytest.mark.parametrize("name", _demo_analyses())
def test_built_in_analysis_matches_duckdb(
    demo_project: crmetrics.Project, engine: Any, reference: Any, name: str
) -> None:
    """Each analysis of the demo project, table by table and figure by figure."""
    if name not in demo_project.model.analyses:
        pytest.skip(f"{name} does not load on the demo data")
    expected = demo_project.analyze(name, connection=reference)
    try:
        result = demo_project.analyze(name, connection=engine)
    except crmetrics.CompileError as error:
        assert engine.dialect == "sqlite" and _refused(error, engine.dialect), f"{name}: {error}"
        return
    missing = [t for t in expected.tables if t not in result.tables]
    if engine.dialect == "sqlite":  # a part SQLite cannot compute is left out with a note naming the dialect
        assert all(any("sqlite" in note for note in result.notes) for _ in missing), (name, missing, result.notes)
    else:
        assert not missing, (name, missing)
    assert [t for t in expected.tables if t in result.tables] == list(result.tables), name
    for table, want in expected.tables.items():
        if table in missing:
            continue
        got = result.tables[table]
        assert got.columns == want.columns, f"{name}.{table}"
        assert_rows(got.rows, want.rows, f"{name}.{table} on {engine.dialect}")
    shown = {f.name for f in result.figures}
    if engine.dialect != "sqlite" or not missing:
        assert shown == {f.name for f in expected.figures}, name
    assert_rows(
        [(f.name, f.value) for f in result.figures],
        [(f.name, f.value) for f in expected.figures if f.name in shown],
        f"{name} figures on {engine.dialect}",
    )
