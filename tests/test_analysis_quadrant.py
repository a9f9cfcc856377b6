"""quadrant: two metrics per entity or dimension value, against a pure-Python reference on generated data."""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

import crmetrics
from tests import cv_fixture
from tests.cv_fixture import Data

NAMES = {(True, True): "Best", (False, True): "Spenders", (True, False): "Frequent", (False, False): "Uncertain"}
ENTITY = {"method": "quadrant", "entity": "customers", "x": "order_count", "y": "aov"}


def per_member(data: Data, key) -> dict:
    """{member: (order_count, aov)} with member = key(customer or None)."""
    customers = data.by_id()
    counts: dict = defaultdict(int)
    revenue: dict = defaultdict(float)
    for order in data.orders:
        member = key(customers.get(order.customer))
        counts[member] += 1
        revenue[member] += order.amount or 0.0
    return {m: (counts[m], revenue[m] / counts[m]) for m in counts}


def reference(values: dict, split=statistics.median, thresholds=None) -> tuple[dict, float, float]:
    xs, ys = [v[0] for v in values.values()], [v[1] for v in values.values()]
    x_split = (thresholds or {}).get("x", split(xs) if xs else None)
    y_split = (thresholds or {}).get("y", split(ys) if ys else None)
    return {m: NAMES[(x >= x_split, y >= y_split)] for m, (x, y) in values.items()}, x_split, y_split


def check(result, values: dict, quadrants: dict, member: str) -> None:
    rows = result.tables["members"].records()
    assert {r[member]: r["quadrant"] for r in rows} == quadrants
    assert {r[member]: (r["order_count"], pytest.approx(r["aov"])) for r in rows} == values
    table = result.tables["quadrants"].records()
    assert [r["quadrant"] for r in table] == ["Best", "Spenders", "Frequent", "Uncertain"]
    for row in table:
        members = [m for m, q in quadrants.items() if q == row["quadrant"]]
        assert row["members"] == len(members)
        assert row["share"] == (pytest.approx(len(members) / len(quadrants)) if quadrants else None)
        mean_y = statistics.fmean(values[m][1] for m in members) if members else None
        assert row["mean_y"] == (pytest.approx(mean_y) if members else None)


@pytest.fixture(scope="module")
def data() -> Data:
    return cv_fixture.generate(seed=3)


@pytest.fixture(scope="module")
def project(data, tmp_path_factory):
    analyses = {
        "matrix": ENTITY,
        "regions": {"method": "quadrant", "by": "customers.region", "x": "order_count", "y": "aov", "split": "mean"},
        "fixed": {**ENTITY, "thresholds": {"x": 3, "y": 40}, "names": {"high_x_high_y": "Stars"}},
    }
    loaded = crmetrics.load(cv_fixture.project_file(tmp_path_factory.mktemp("quadrant"), data, analyses))
    yield loaded
    loaded.close()


def test_per_entity_at_the_median(project, data):
    values = per_member(data, lambda c: c.id if c else None)
    values.pop(None)  # orders of unknown customers belong to no entity
    quadrants, x_split, y_split = reference(values)
    result = project.analyze("matrix")
    check(result, values, quadrants, "customer_id")
    figures = {f.name: f.value for f in result.figures}
    assert figures["x_split"] == pytest.approx(x_split) and figures["y_split"] == pytest.approx(y_split)
    # the data has members exactly at the split, and they count as high
    assert any(v[0] == x_split for v in values.values())


def test_per_dimension_value_at_the_mean_keeps_the_null_group(project, data):
    values = per_member(data, lambda c: c.region if c else None)
    quadrants, _, _ = reference(values, split=statistics.fmean)
    check(project.analyze("regions"), values, quadrants, "customers.region")
    assert None in quadrants


def test_fixed_thresholds_and_names(project, data):
    values = per_member(data, lambda c: c.id if c else None)
    values.pop(None)
    quadrants, _, _ = reference(values, thresholds={"x": 3, "y": 40})
    rows = project.analyze("fixed").tables["members"].records()
    renamed = {m: "Stars" if q == "Best" else q for m, q in quadrants.items()}
    assert {r["customer_id"]: r["quadrant"] for r in rows} == renamed


def test_single_and_empty_segments(project, data):
    solo = project.analyze("matrix", segments=["solo"])
    members = solo.tables["members"].records()
    assert len(members) == 1 and all(r["quadrant"] == "Best" for r in members)  # its own median
    empty = project.analyze("matrix", segments=["empty"])
    assert empty.tables["members"].rows == []
    assert [r["members"] for r in empty.tables["quadrants"].records()] == [0, 0, 0, 0]


def test_bad_parameters(data, tmp_path):
    bad = {"a": {**ENTITY, "y": "order_count"}, "b": {**ENTITY, "by": "customers.region"}}
    with pytest.raises(crmetrics.ConfigError) as error:
        crmetrics.load(cv_fixture.project_file(tmp_path, data, bad))
    assert "two different metrics" in str(error.value) and "exactly one of" in str(error.value)
