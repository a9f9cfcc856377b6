"""pareto: ranks, cumulative shares, ABC classes and the top share, against a pure-Python reference."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import pytest

import crmetrics
from tests import cv_fixture
from tests.cv_fixture import Data

ENTITY = {"method": "pareto", "entity": "customers", "metric": "revenue"}


def revenue_by(data: Data, key) -> dict:
    customers = data.by_id()
    totals: dict = defaultdict(float)
    for order in data.orders:
        totals[key(customers.get(order.customer))] += order.amount or 0.0
    return dict(totals)


def reference(values: dict, cutoffs=(0.8, 0.95), top=0.2) -> tuple[dict, float | None]:
    """{member: (value, rank, share, cumulative_share, class)} and the top share, ties treated alike."""
    total = sum(values.values())
    result = {}
    for member, value in values.items():
        rank = 1 + sum(1 for v in values.values() if v > value)
        running = sum(v for v in values.values() if v >= value)
        tied = sum(v for v in values.values() if v == value)
        before = (running - tied) / total if total else None
        klass = "C" if before is None else "A" if before < cutoffs[0] else "B" if before < cutoffs[1] else "C"
        share = value / total if total else None
        result[member] = (value, rank, share, running / total if total else None, klass)
    fraction = Fraction(str(top))
    k = -(-len(values) * fraction.numerator // fraction.denominator)  # ceil in integers
    largest = sorted(values.values(), reverse=True)[:k]
    return result, (sum(largest) / total if total else None)


def check(result, values: dict, member: str, **options) -> None:
    expected, top_share = reference(values, **options)
    rows = result.tables["items"].records()
    assert len(rows) == len(expected)
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    for row in rows:
        value, rank, share, cumulative, klass = expected[row[member]]
        assert row["revenue"] == pytest.approx(value) and row["rank"] == rank and row["class"] == klass
        assert row["share"] == pytest.approx(share) and row["cumulative_share"] == pytest.approx(cumulative)
    figures = {f.name: f.value for f in result.figures}
    assert figures["top_share"] == (pytest.approx(top_share) if top_share is not None else None)
    classes = result.tables["classes"].records()
    assert [c["class"] for c in classes] == ["A", "B", "C"]
    for row in classes:
        members = [e for e in expected.values() if e[4] == row["class"]]
        assert row["members"] == len(members)
        assert row["value"] == pytest.approx(sum(e[0] for e in members))


@pytest.fixture(scope="module")
def data() -> Data:
    return cv_fixture.generate(seed=8, customers=75)


@pytest.fixture(scope="module")
def project(data, tmp_path_factory):
    analyses = {
        "abc": ENTITY,
        "regions": {"method": "pareto", "by": "customers.region", "metric": "revenue", "cutoffs": [0.5, 0.9]},
        "top15": {**ENTITY, "top": 0.15},
    }
    loaded = crmetrics.load(cv_fixture.project_file(tmp_path_factory.mktemp("pareto"), data, analyses))
    yield loaded
    loaded.close()


def test_per_entity(project, data):
    values = revenue_by(data, lambda c: c.id if c else None)
    values.pop(None)
    check(project.analyze("abc"), values, "customer_id")
    assert len(set(values.values())) < len(values)  # ties are in the data


def test_ties_share_rank_cumulative_share_and_class(project):
    rows = project.analyze("abc").tables["items"].records()
    by_value = defaultdict(set)
    for row in rows:
        by_value[row["revenue"]].add((row["rank"], row["cumulative_share"], row["class"]))
    assert all(len(v) == 1 for v in by_value.values())


def test_per_dimension_value_with_other_cutoffs(project, data):
    values = revenue_by(data, lambda c: c.region if c else None)
    check(project.analyze("regions"), values, "customers.region", cutoffs=(0.5, 0.9))


def test_top_share_in_exact_arithmetic(project, data):
    values = revenue_by(data, lambda c: c.id if c else None)
    values.pop(None)
    check(project.analyze("top15"), values, "customer_id", top=0.15)


def test_single_and_empty_segments(project, data):
    values = revenue_by(data, lambda c: c.id if c and c.region == "solo" else None)
    values.pop(None)
    assert len(values) == 1
    check(project.analyze("abc", segments=["solo"]), values, "customer_id")
    empty = project.analyze("abc", segments=["empty"])
    assert empty.tables["items"].rows == []
    assert [r["members"] for r in empty.tables["classes"].records()] == [0, 0, 0]


def test_bad_cutoffs(data, tmp_path):
    with pytest.raises(crmetrics.ConfigError, match="must be below"):
        crmetrics.load(cv_fixture.project_file(tmp_path, data, {"x": {**ENTITY, "cutoffs": [0.9, 0.5]}}))
