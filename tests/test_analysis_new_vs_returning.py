"""new_vs_returning: per period, new and returning customers and revenue, against a pure-Python reference."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest

import crmetrics
from tests import cv_fixture
from tests.cv_fixture import Data, visible_orders

NVR = {"method": "new_vs_returning", "entity": "customers", "events": "orders", "monetary": "orders.revenue"}


def period_of(day: dt.date, grain: str) -> dt.date:
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return day.replace(day=1)


def reference(data: Data, grain="month", keep=lambda order: True, region="*", tenant=None) -> dict:
    """{period: (customers, new, returning, revenue, new_revenue, returning_revenue)}."""
    first: dict = {}
    for order, customer in visible_orders(data, tenant):  # the first order ever: no where, no segment
        period = period_of(order.day, grain)
        first[customer.id] = min(first.get(customer.id, period), period)
    revenue: dict = defaultdict(float)
    for order, customer in visible_orders(data, tenant, region):
        if keep(order):
            revenue[(period_of(order.day, grain), customer.id)] += order.amount or 0.0
    result: dict = {}
    for (period, customer), value in revenue.items():
        row = result.setdefault(period, [0, 0, 0, 0.0, 0.0, 0.0])
        new = first[customer] == period
        row[0] += 1
        row[1 if new else 2] += 1
        row[3] += value
        row[4 if new else 5] += value
    return result


def check(result, expected: dict) -> None:
    rows = result.tables["periods"].records()
    assert [r["period"] for r in rows] == sorted(expected)
    for row in rows:
        customers, new, returning, revenue, new_revenue, returning_revenue = expected[row["period"]]
        assert (row["customers"], row["new_customers"], row["returning_customers"]) == (customers, new, returning)
        assert row["revenue"] == pytest.approx(revenue)
        assert row["new_revenue"] == pytest.approx(new_revenue)
        assert row["returning_revenue"] == pytest.approx(returning_revenue)
        assert row["returning_share"] == (pytest.approx(returning_revenue / revenue) if revenue else None)


@pytest.fixture(scope="module")
def data() -> Data:
    return cv_fixture.generate(seed=17)


@pytest.fixture(scope="module")
def project(data, tmp_path_factory):
    analyses = {"monthly": NVR, "weekly": {**NVR, "grain": "week"}, "quarterly": {**NVR, "grain": "quarter"}}
    loaded = crmetrics.load(cv_fixture.project_file(tmp_path_factory.mktemp("nvr"), data, analyses))
    yield loaded
    loaded.close()


@pytest.mark.parametrize("name, grain", [("monthly", "month"), ("weekly", "week"), ("quarterly", "quarter")])
def test_grains(project, data, name, grain):
    check(project.analyze(name), reference(data, grain))


def test_a_filter_never_makes_an_old_customer_new(project, data):
    result = project.analyze("monthly", where="orders.channel = 'store'")
    check(result, reference(data, keep=lambda order: order.channel == "store"))


@pytest.mark.parametrize("segment, region", [("north", "north"), ("solo", "solo"), ("empty", "nowhere")])
def test_segments(project, data, segment, region):
    check(project.analyze("monthly", segments=[segment]), reference(data, region=region))


def test_row_filters(data, tmp_path):
    project = crmetrics.load(cv_fixture.project_file(tmp_path, data, {"monthly": NVR}, tenant_filters=True))
    check(project.analyze("monthly", context={"tenant_id": 2}), reference(data, tenant=2))
    project.close()


def test_monetary_must_add_up(data, tmp_path):
    bad = {"x": {**NVR, "monetary": "orders.buyers"}}
    with pytest.raises(crmetrics.ConfigError, match="must be a sum or a count"):
        crmetrics.load(cv_fixture.project_file(tmp_path, data, bad))
