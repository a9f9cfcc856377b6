"""Analysis outputs as dimensions: `customer_rfm.segment` in --by, --where, segments and metric filters."""

from __future__ import annotations

from collections import defaultdict

import pytest

import crmetrics
from crmetrics.cli import main
from tests import cv_fixture
from tests.cv_fixture import Data
from tests.test_analysis_rfm import RFM, reference

ANALYSES = {
    "customer_rfm": RFM,
    "customer_abc": {"method": "pareto", "entity": "customers", "metric": "revenue"},
}
EXTRA = {
    "segments": {"champions": {"entity": "customers", "where": "customer_rfm.segment = 'Champions'"}},
}


def revenue_by_segment(data: Data, segments: dict[int, str], tenant=None) -> dict:
    """Revenue per segment of the ordering customer; orders of unknown (or hidden) customers under None."""
    customers = data.by_id()
    totals: dict = defaultdict(float)
    for order in data.orders:
        if tenant is not None and order.tenant != tenant:
            continue
        customer = customers.get(order.customer)
        visible = customer is not None and (tenant is None or customer.tenant == tenant)
        totals[segments.get(order.customer) if visible else None] += order.amount or 0.0
    return dict(totals)


def project_for(data: Data, folder, **extra):
    metrics = {**cv_fixture_metrics(), **extra.pop("metrics", {})}
    return crmetrics.load(cv_fixture.project_file(folder, data, ANALYSES, metrics=metrics, **EXTRA, **extra))


def cv_fixture_metrics() -> dict:
    from crmetrics.testing import TINY_PROJECT

    return {
        **TINY_PROJECT["metrics"],
        "champion_revenue": {"measure": "orders.revenue", "filter": "customer_rfm.segment = 'Champions'"},
    }


@pytest.fixture(scope="module")
def data() -> Data:
    return cv_fixture.generate(seed=5)


@pytest.fixture(scope="module")
def project(data, tmp_path_factory):
    loaded = project_for(data, tmp_path_factory.mktemp("outputs"))
    yield loaded
    loaded.close()


def test_by_an_analysis_output(project, data):
    segments = {k: v[6] for k, v in reference(data).items()}
    result = project.query(["revenue"], by=["customer_rfm.segment"])
    got = {row[0]: row[1] for row in result.rows}
    want = revenue_by_segment(data, segments)
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(want[k]) for k in want)
    total = project.query(["revenue"]).rows[0][0]
    assert sum(got.values()) == pytest.approx(total)  # nothing lost in the join


def test_where_segment_and_metric_filter_on_an_output(project, data):
    champions = {k for k, v in reference(data).items() if v[6] == "Champions"}
    want = sum(o.amount or 0 for o in data.orders if o.customer in champions)
    where = project.query(["revenue"], where="customer_rfm.segment = 'Champions'").rows[0][0]
    segment = project.query(["revenue"], segments=["champions"]).rows[0][0]
    metric = project.query(["champion_revenue"]).rows[0][0]
    assert where == pytest.approx(want) and segment == pytest.approx(want) and metric == pytest.approx(want)


def test_outputs_by_month_in_one_query(project, data):
    segments = {k: v[6] for k, v in reference(data).items()}
    result = project.query(["revenue"], by=["customer_rfm.segment", "metric_time:month"])
    want: dict = defaultdict(float)
    for order in data.orders:
        month = order.day.replace(day=1)
        want[(segments.get(order.customer), month)] += order.amount or 0.0
    got = {(row[0], row[1]): row[2] for row in result.rows}
    assert got.keys() == want.keys()
    assert all(got[k] == pytest.approx(v) for k, v in want.items())


def test_two_analyses_side_by_side(project, data):
    classes = {row["customer_id"]: row["class"] for row in project.analyze("customer_abc").tables["items"].records()}
    result = project.query(["order_count"], by=["customer_abc.class"])
    want: dict = defaultdict(int)
    for order in data.orders:
        want[classes.get(order.customer)] += 1
    assert dict(result.rows) == dict(want)


def test_outputs_are_listed_as_dimensions(project, capsys):
    assert main(["list", "dimensions", "--project", project.model.root + "/crmetrics.yml"]) == 0
    out = capsys.readouterr().out
    assert "customer_rfm.segment" in out and "customer_abc.class" in out


def test_row_filters_reach_the_analysis_inside_a_query(data, tmp_path):
    project = project_for(data, tmp_path, tenant_filters=True)
    for tenant in (1, 2):
        segments = {k: v[6] for k, v in reference(data, tenant=tenant).items()}
        got = dict(project.query(["revenue"], by=["customer_rfm.segment"], context={"tenant_id": tenant}).rows)
        want = revenue_by_segment(data, segments, tenant=tenant)
        assert got.keys() == want.keys()
        assert all(got[k] == pytest.approx(v) for k, v in want.items())
    with pytest.raises(crmetrics.ContextError):
        project.query(["revenue"], by=["customer_rfm.segment"])
    sql = project.compile(["revenue"], by=["customer_rfm.segment"], context={"tenant_id": 2}, dialect="postgres")
    assert ":tenant_id" not in sql and "tenant_id = 2" in sql.replace('"', "")
    project.close()


def test_an_analysis_named_like_an_entity_is_refused(data, tmp_path):
    path = cv_fixture.project_file(tmp_path, data, {"orders": RFM})
    with pytest.raises(crmetrics.ConfigError, match=r"CRM702.*has the name of an entity"):
        crmetrics.load(path)


def test_a_segment_on_an_unknown_output_is_refused(data, tmp_path):
    bad = {"segments": {"x": {"entity": "customers", "where": "customer_rfm.segmnt = 'Lost'"}}}
    path = cv_fixture.project_file(tmp_path, data, {"customer_rfm": RFM}, **bad)
    with pytest.raises(crmetrics.ConfigError, match="segmnt"):
        crmetrics.load(path)
