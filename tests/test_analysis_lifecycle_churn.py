"""churn (activity window, contracts, revenue churn, risk list) against pure-Python references."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterator

import pytest

import crmetrics
from crmetrics.errors import ConfigError, CrmetricsError
from tests import lifecycle_fixture
from tests.lifecycle_fixture import LifecycleData
from tests.test_analysis_lifecycle_cohort import percentile, period, start_of


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> LifecycleData:
    return lifecycle_fixture.build(tmp_path_factory.mktemp("lifecycle_churn"))


@pytest.fixture(scope="module")
def project(data: LifecycleData) -> Iterator[crmetrics.Project]:
    loaded = crmetrics.load(data.root / "crmetrics.yml")
    yield loaded
    loaded.close()


def event_days(data: LifecycleData) -> dict:
    days: dict = defaultdict(set)
    for _, key, when, _, _ in data.orders:
        if key is not None and when is not None:
            days[key].add(when.date())
    return days


def rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def reference_activity(data: LifecycleData, window: int, grain: str = "month") -> list[tuple]:
    days = event_days(data)
    active: dict = defaultdict(set)  # period -> keys
    for key, dates in days.items():
        for day in dates:
            for p in range(period(day, grain), period(day + dt.timedelta(days=window - 1), grain) + 1):
                active[p].add(key)
    first = min(active)
    last = max(period(day, grain) for dates in days.values() for day in dates)
    rows = []
    for p in range(first, last + 1):
        before, now = active.get(p - 1, set()), active.get(p, set())
        churned = len(before - now)
        rows.append(
            (
                start_of(p, grain),
                len(before),
                churned,
                len(before) - churned,
                len(now - before),
                len(now),
                rate(churned, len(before)),
                rate(len(before) - churned, len(before)),
            )
        )
    return rows


def approx_row(row: tuple) -> tuple:
    return tuple(pytest.approx(v) if isinstance(v, float) else v for v in row)


@pytest.mark.parametrize(("window", "grain"), [(60, "month"), (1, "month"), (30, "quarter"), (10, "month")])
def test_activity_churn_matches_reference(project: crmetrics.Project, data: LifecycleData, window: int, grain) -> None:
    table = project.analyze("activity_churn", inactivity_days=window, grain=grain).tables["churn"]
    assert table.columns == [
        "period",
        "active_previous",
        "churned",
        "retained",
        "new",
        "active",
        "churn_rate",
        "retention_rate",
    ]
    assert table.rows == [approx_row(r) for r in reference_activity(data, window, grain)]


def test_activity_churn_on_week_boundaries(project: crmetrics.Project, data: LifecycleData) -> None:
    # customer 101 buys on a Sunday and on the Monday after: two ISO weeks, active in both
    table = project.analyze(
        "activity_churn", inactivity_days=1, grain="week", where="orders.ordered_at >= '2023-03-05'"
    )
    rows = {r["period"]: r for r in table.tables["churn"].records()}
    assert rows[dt.date(2023, 2, 27)]["new"] >= 1 and rows[dt.date(2023, 3, 6)]["active_previous"] >= 1


def test_revenue_churn_and_net_revenue_retention(project: crmetrics.Project, data: LifecycleData) -> None:
    table = project.analyze("activity_churn", measure="orders.revenue", inactivity_days=1).tables["churn"]
    revenue: dict = defaultdict(lambda: defaultdict(float))
    for _, key, when, amount, _ in data.orders:
        if key is not None and when is not None:
            revenue[period(when.date(), "month")][key] += amount or 0.0
    for row in table.records():
        p = period(row["period"], "month")
        now, before = revenue.get(p, {}), revenue.get(p - 1, {})
        previous = sum(before.values())
        lost = sum(max(v - now.get(k, 0.0), 0.0) for k, v in before.items())
        kept = sum(now.get(k, 0.0) for k, v in before.items() if v > 0)
        assert row["revenue"] == pytest.approx(sum(now.values()))
        assert row["revenue_previous"] == pytest.approx(previous)
        assert row["lost_revenue"] == pytest.approx(lost)
        assert row["revenue_churn_rate"] == (pytest.approx(lost / previous) if previous else None)
        assert row["net_revenue_retention"] == (pytest.approx(kept / previous) if previous else None)


def reference_contracts(data: LifecycleData) -> list[tuple]:
    spells = [
        (period(start.date(), "month"), period(end.date(), "month") if end else None, mrr)
        for _, _, start, end, mrr in data.contracts
    ]
    first = min(a for a, _, _ in spells)
    last = max(c if c is not None else a for a, c, _ in spells)

    def running(p: int) -> list[tuple]:  # active at the start of period p
        return [s for s in spells if s[0] < p and (s[1] is None or (s[1] >= p and s[1] > s[0]))]

    rows = []
    for p in range(first, last + 1):
        before = running(p)
        churned = [s for s in spells if s[1] == p and s[1] > s[0]]
        value_before = sum(s[2] for s in before)
        lost = sum(s[2] for s in churned)
        rows.append(
            (
                start_of(p, "month"),
                len(before),
                len(churned),
                len(before) - len(churned),
                sum(1 for s in spells if s[0] == p),
                len(running(p + 1)),
                rate(len(churned), len(before)),
                rate(len(before) - len(churned), len(before)),
                value_before,
                sum(s[2] for s in running(p + 1)),
                lost,
                rate(lost, value_before),
            )
        )
    return rows


def test_contract_churn_matches_reference(project: crmetrics.Project, data: LifecycleData) -> None:
    table = project.analyze("contract_churn", measure="contracts.mrr").tables["churn"]
    assert table.columns[-4:] == ["revenue_previous", "revenue", "lost_revenue", "revenue_churn_rate"]
    assert table.rows == [approx_row(r) for r in reference_contracts(data)]
    # the contract of 1 March - 1 April is active at the start of April and churns then
    april = {r["period"]: r for r in table.records()}[dt.date(2023, 4, 1)]
    assert april["churned"] >= 1


def test_contract_churn_as_of_cuts_the_series(project: crmetrics.Project) -> None:
    rows = project.analyze("contract_churn", as_of="2023-06-15").tables["churn"].records()
    assert rows[-1]["period"] == dt.date(2023, 6, 1)


def reference_risk(
    data: LifecycleData, k: float = 2.0, min_events: int = 3, as_of: dt.date | None = None
) -> list[tuple]:
    days = event_days(data)
    as_of = as_of or max(day for dates in days.values() for day in dates)
    out = []
    for key, dates in days.items():
        ordered = sorted(dates)
        if len(ordered) < min_events:
            continue
        gaps = [(b - a).days for a, b in itertools.pairwise(ordered)]
        median = percentile(gaps, 0.5)
        since = (as_of - ordered[-1]).days
        if since > k * median:
            out.append((key, ordered[-1], len(ordered), median, since, since / median))
    return sorted(out, key=lambda r: (-r[5], r[0]))


@pytest.mark.parametrize(("k", "min_events"), [(2.0, 3), (5.0, 2)])
def test_risk_list_matches_reference(project: crmetrics.Project, data: LifecycleData, k: float, min_events) -> None:
    result = project.analyze("activity_churn", risk_multiplier=k, min_events=min_events)
    table = result.tables["at_risk"]
    assert table.columns == [
        "customer_id",
        "last_event",
        "events",
        "median_gap_days",
        "days_since_last_event",
        "risk_ratio",
    ]
    expected = reference_risk(data, k, min_events)
    assert table.rows == [approx_row(r) for r in expected]
    assert {f.name: f.value for f in result.figures}["at_risk"] == len(expected)


def test_risk_list_limit(project: crmetrics.Project, data: LifecycleData) -> None:
    table = project.analyze("activity_churn", risk_limit=3).tables["at_risk"]
    assert table.rows == [approx_row(r) for r in reference_risk(data)[:3]]


def test_churn_parameter_errors(project: crmetrics.Project) -> None:
    with pytest.raises(ConfigError):
        project.analyze("activity_churn", end="customers.signed_up_at")  # both shapes
    with pytest.raises(CrmetricsError):
        project.analyze("contract_churn", as_of="last tuesday")


def test_as_of_ignores_later_events(project: crmetrics.Project, data: LifecycleData) -> None:
    as_of = dt.date(2023, 9, 15)
    cut = LifecycleData(data.root, orders=[o for o in data.orders if o[2] is None or o[2].date() <= as_of])
    result = project.analyze("activity_churn", as_of=as_of.isoformat(), measure="orders.revenue")
    table = result.tables["churn"]
    assert [r[:8] for r in table.rows] == [approx_row(r) for r in reference_activity(cut, 60)]
    assert table.records()[-1]["period"] == dt.date(2023, 9, 1)
    assert result.tables["at_risk"].rows == [approx_row(r) for r in reference_risk(cut, as_of=as_of)]
