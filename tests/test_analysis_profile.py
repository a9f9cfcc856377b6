"""profile: metrics by dimension with shares and indices, against a pure-Python reference on generated data."""

from __future__ import annotations

from collections import defaultdict

import pytest

import crmetrics
from tests import cv_fixture
from tests.cv_fixture import Data

PROFILE = {"method": "profile", "metrics": ["revenue", "aov"], "by": ["customers.region"], "base": "customers"}


def reference(data: Data, regions=None) -> tuple[dict, dict]:
    """({region: {metric: value}}, overall) for revenue, order_count, aov and customers."""
    customers = data.by_id()
    groups: dict = defaultdict(lambda: {"revenue": 0.0, "order_count": 0, "customers": 0})
    for customer in data.customers:
        if regions is None or customer.region in regions:
            groups[customer.region]["customers"] += 1
    for order in data.orders:
        customer = customers.get(order.customer)
        region = customer.region if customer else None
        if regions is not None and (customer is None or region not in regions):
            continue
        groups[region]["revenue"] += order.amount or 0.0
        groups[region]["order_count"] += 1
    overall = {k: sum(g[k] for g in groups.values()) for k in ("revenue", "order_count", "customers")}
    for values in [*groups.values(), overall]:
        values["aov"] = values["revenue"] / values["order_count"] if values["order_count"] else None
    return dict(groups), overall


def check(result, data: Data, regions=None) -> None:
    groups, overall = reference(data, regions)
    rows = {row["customers.region"]: row for row in result.tables["profile"].records()}
    assert rows.keys() == groups.keys()
    assert list(rows) == sorted(groups, key=lambda r: (r is None, r or ""))  # NULL group last
    for region, want in groups.items():
        row = rows[region]
        assert row["revenue"] == pytest.approx(want["revenue"])
        assert row["customers"] == want["customers"]
        share = want["revenue"] / overall["revenue"] if overall["revenue"] else None
        base_share = want["customers"] / overall["customers"] if overall["customers"] else None
        assert row["revenue_share"] == (pytest.approx(share) if share is not None else None)
        index = 100 * share / base_share if share is not None and base_share else None
        assert row["revenue_index"] == (pytest.approx(index) if index is not None else None)
        aov_index = 100 * want["aov"] / overall["aov"] if want["aov"] is not None and overall["aov"] else None
        assert row["aov"] == (pytest.approx(want["aov"]) if want["aov"] is not None else None)
        assert row["aov_index"] == (pytest.approx(aov_index) if aov_index is not None else None)
        assert "aov_share" not in row  # a ratio has no share of a total
    (total,) = result.tables["overall"].records()
    assert total["revenue"] == pytest.approx(overall["revenue"]) and total["customers"] == overall["customers"]


@pytest.fixture(scope="module")
def data() -> Data:
    return cv_fixture.generate(seed=23)


@pytest.fixture(scope="module")
def project(data, tmp_path_factory):
    analyses = {"regions": PROFILE, "plain": {"method": "profile", "metrics": "revenue", "by": "customers.region"}}
    loaded = crmetrics.load(cv_fixture.project_file(tmp_path_factory.mktemp("profile"), data, analyses))
    yield loaded
    loaded.close()


def test_profile_matches_the_reference(project, data):
    check(project.analyze("regions"), data)


def test_without_base_the_additive_index_is_absent(project, data):
    columns = project.analyze("plain").tables["profile"].columns
    assert columns == ["customers.region", "revenue", "revenue_share"]


@pytest.mark.parametrize("segment, regions", [("north", {"north"}), ("solo", {"solo"})])
def test_segments(project, data, segment, regions):
    check(project.analyze("regions", segments=[segment]), data, regions)


def test_an_empty_segment_gives_no_groups(project):
    result = project.analyze("regions", segments=["empty"])
    assert result.tables["profile"].rows == []
    assert result.tables["overall"].records()[0]["revenue"] == 0


def test_bad_parameters(data, tmp_path):
    bad = {"x": {**PROFILE, "base": "aov"}, "y": {**PROFILE, "by": ["customers.regio"]}}
    with pytest.raises(crmetrics.ConfigError) as error:
        crmetrics.load(cv_fixture.project_file(tmp_path, data, bad))
    text = str(error.value)
    assert "must be a sum or a count" in text and "unknown dimension 'customers.regio'" in text


def test_the_base_metric_is_not_indexed_against_itself(project) -> None:
    columns = project.analyze("regions").tables["profile"].columns
    assert "customers_share" in columns and "customers_index" not in columns
    assert "revenue_index" in columns
