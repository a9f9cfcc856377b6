"""The SQL of rfm, profile, quadrant, pareto and new_vs_returning renders for the supported dialects, and the
PostgreSQL text, run on DuckDB, returns the same rows as the DuckDB text (a cheap check of dialect-neutral SQL)."""

from __future__ import annotations

import duckdb
import pytest

import crmetrics
from crmetrics.analysis import new_vs_returning, pareto, profile, quadrant, rfm
from crmetrics.analysis.base import AnalysisContext
from crmetrics.compiler import render
from crmetrics.errors import CompileError
from tests import cv_fixture

ANALYSES = {
    "r": {"method": "rfm", "entity": "customers", "events": "orders", "monetary": "orders.revenue"},
    "p": {"method": "profile", "metrics": ["revenue", "aov"], "by": ["customers.region"], "base": "customers"},
    "q": {"method": "quadrant", "entity": "customers", "x": "order_count", "y": "aov"},
    "qm": {"method": "quadrant", "by": "customers.region", "x": "order_count", "y": "aov", "split": "mean"},
    "a": {"method": "pareto", "entity": "customers", "metric": "revenue"},
    "n": {"method": "new_vs_returning", "entity": "customers", "events": "orders", "monetary": "orders.revenue"},
}
QUERIES = {
    "r": [rfm.scores_query, rfm.segments_query],
    "p": [profile.profile_query],
    "q": [quadrant.members_query, quadrant.quadrants_query],
    "qm": [quadrant.members_query],
    "a": [pareto.items_query, pareto.classes_query, pareto.top_query],
    "n": [new_vs_returning.periods_query],
}
CASES = [(name, query) for name, queries in QUERIES.items() for query in queries]
DIALECTS = ("duckdb", "postgres", "clickhouse", "spark", "snowflake", "sqlite", "bigquery")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    data = cv_fixture.generate(seed=29)
    loaded = crmetrics.load(cv_fixture.project_file(tmp_path_factory.mktemp("dialects"), data, ANALYSES))
    yield loaded
    loaded.close()


def context(project, name: str) -> AnalysisContext:
    analysis = project.model.analyses[name]
    return AnalysisContext(name, dict(analysis.params), project.model, project.engine())


@pytest.mark.parametrize("name, query", CASES, ids=[f"{n}-{q.__name__}" for n, q in CASES])
def test_renders_everywhere_and_postgres_text_agrees_on_duckdb(project, name, query):
    tree = query(context(project, name))
    for dialect in DIALECTS:
        try:
            assert render(tree.copy(), dialect)
        except CompileError as error:  # an exact median is refused where the engine has none, never approximated
            assert name == "q" and dialect in ("sqlite", "bigquery") and "PERCENTILE_CONT" in str(error)
    con = duckdb.connect(str(project.model.root) + "/tiny.duckdb", read_only=True)
    try:
        assert con.sql(render(tree.copy(), "postgres")).fetchall() == con.sql(render(tree.copy(), "duckdb")).fetchall()
    finally:
        con.close()
