"""cohort and time_to_event against pure-Python references computed from the rows the fixture generated."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator

import pytest

import crmetrics
from crmetrics.errors import ConfigError, CrmetricsError
from tests import lifecycle_fixture
from tests.lifecycle_fixture import LifecycleData


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> LifecycleData:
    return lifecycle_fixture.build(tmp_path_factory.mktemp("lifecycle_cohort"))


@pytest.fixture(scope="module")
def project(data: LifecycleData) -> Iterator[crmetrics.Project]:
    loaded = crmetrics.load(data.root / "crmetrics.yml")
    yield loaded
    loaded.close()


def period(day: dt.date, grain: str) -> int:
    if grain == "month":
        return day.year * 12 + day.month - 1
    if grain == "quarter":
        return day.year * 4 + (day.month - 1) // 3
    monday = day - dt.timedelta(days=day.weekday())
    return (monday - dt.date(2000, 1, 3)).days // 7


def start_of(index: int, grain: str) -> dt.date:
    if grain == "month":
        return dt.date(index // 12, index % 12 + 1, 1)
    if grain == "quarter":
        return dt.date(index // 4, index % 4 * 3 + 1, 1)
    return dt.date(2000, 1, 3) + dt.timedelta(weeks=index)


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as PERCENTILE_CONT."""
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def reference_cohorts(
    data: LifecycleData,
    grain: str,
    keep=lambda key: True,
    members: dict | None = None,
    groups: dict | None = None,
    with_measure: bool = False,
    periods: int | None = None,
) -> list[tuple]:
    """The dense retention matrix; `members` maps key -> cohort period (default: first event's period)."""
    events = [(o[1], o[2].date(), o[3]) for o in data.orders if o[1] is not None and o[2] is not None and keep(o[1])]
    first: dict = {}
    for key, day, _ in events:
        first[key] = min(first.get(key, period(day, grain)), period(day, grain))
    cohort_of = members if members is not None else first
    active: dict = defaultdict(set)
    value: dict = defaultdict(float)
    for key, day, amount in events:
        if key not in cohort_of:
            continue
        step = period(day, grain) - cohort_of[key]
        if step < 0:
            continue
        group = groups.get(key) if groups is not None else None
        active[(cohort_of[key], group, step)].add(key)
        value[(cohort_of[key], group, step)] += amount or 0.0
    last = max(period(day, grain) for _, day, _ in events)
    sizes: dict = defaultdict(int)
    for key, cohort in cohort_of.items():
        sizes[(cohort, groups.get(key) if groups is not None else None)] += 1
    rows = []
    for (cohort, group), size in sizes.items():
        top = max(last - cohort, 0) if periods is None else min(max(last - cohort, 0), periods - 1)
        cumulative = 0.0
        for step in range(top + 1):
            count = len(active.get((cohort, group, step), ()))
            row: tuple = (start_of(cohort, grain),) + ((group,) if groups is not None else ())
            row += (step, count, size, count / size)
            if with_measure:
                cumulative += value.get((cohort, group, step), 0.0)
                row += (pytest.approx(value.get((cohort, group, step), 0.0)), pytest.approx(cumulative / size))
            rows.append(row)
    return rows


def _sort_key(row: tuple) -> tuple:
    return tuple((value is None, value if value is not None else 0) for value in row[:3])


@pytest.mark.parametrize("grain", ["month", "week", "quarter"])
def test_cohort_matrix_matches_reference(project: crmetrics.Project, data: LifecycleData, grain: str) -> None:
    result = project.analyze("retention", grain=grain)
    table = result.tables["retention"]
    assert table.columns == ["cohort", "period", "customers", "cohort_size", "retention_rate"]
    assert sorted(table.rows, key=_sort_key) == sorted(reference_cohorts(data, grain), key=_sort_key)


def test_single_member_cohort_with_idle_months_and_boundary_events(project: crmetrics.Project) -> None:
    rows = [r for r in project.analyze("retention").tables["retention"].records() if r["cohort"] == dt.date(2021, 6, 1)]
    # customer 100: June 2021, then 23:59:59 on 30 September and 00:00:00 on 1 October
    active = {r["period"]: r["customers"] for r in rows}
    assert active[0] == 1 and active[1] == 0 and active[2] == 0 and active[3] == 1 and active[4] == 1
    assert all(r["cohort_size"] == 1 for r in rows)
    assert rows[0]["retention_rate"] == 1.0


def test_every_cohort_starts_at_full_retention(project: crmetrics.Project) -> None:
    for row in project.analyze("retention").tables["retention"].records():
        if row["period"] == 0:
            assert row["retention_rate"] == 1.0


def test_measure_per_period_and_cumulative_value_per_member(project: crmetrics.Project, data: LifecycleData) -> None:
    table = project.analyze("retention", measure="orders.revenue", periods=5).tables["retention"]
    assert table.columns[-2:] == ["measure", "cumulative_per_member"]
    expected = reference_cohorts(data, "month", with_measure=True, periods=5)
    assert sorted(table.rows, key=_sort_key) == sorted(expected, key=_sort_key)
    assert max(r["period"] for r in table.records()) == 4


def test_declared_acquisition_date_with_row_level_security(project: crmetrics.Project, data: LifecycleData) -> None:
    members = {c[0]: period(c[2].date(), "month") for c in data.customers if c[3] == 1}
    table = project.analyze("retention_by_signup", context={"tenant_id": 1}).tables["retention"]
    assert sorted(table.rows, key=_sort_key) == sorted(reference_cohorts(data, "month", members=members), key=_sort_key)
    assert sum(r["cohort_size"] for r in table.records() if r["period"] == 0) == len(members)


def test_acquisition_dimension_splits_cohorts(project: crmetrics.Project, data: LifecycleData) -> None:
    groups = {c[0]: c[1] for c in data.customers if c[3] == 1}  # other tenants' channels stay hidden: NULL
    table = project.analyze("retention", cohort_by="customers.channel", context={"tenant_id": 1}).tables["retention"]
    assert table.columns[:3] == ["cohort", "customers.channel", "period"]
    expected = reference_cohorts(data, "month", groups=groups)
    assert sorted(table.rows, key=_sort_key) == sorted(expected, key=_sort_key)
    assert any(r[1] == "réseau" for r in table.rows) and any(r[1] is None for r in table.rows)


def test_segment_with_row_level_security(project: crmetrics.Project, data: LifecycleData) -> None:
    web = {c[0] for c in data.customers if c[1] == "web" and c[3] == 1}
    table = project.analyze("retention", segments="web_customers", context={"tenant_id": 1}).tables["retention"]
    expected = reference_cohorts(data, "month", keep=lambda key: key in web)
    assert sorted(table.rows, key=_sort_key) == sorted(expected, key=_sort_key)


def test_where_filters_events_and_empty_input(project: crmetrics.Project) -> None:
    empty = project.analyze("retention", where="orders.status = 'nothing'")
    assert empty.tables["retention"].rows == []
    assert project.analyze("retention", where="orders.ordered_at >= '2023-01-01'").tables["retention"].rows[0][0] > (
        dt.date(2022, 12, 31)
    )


def test_bad_parameters_are_config_errors(project: crmetrics.Project) -> None:
    with pytest.raises(ConfigError):
        project.analyze("retention", grain="day")
    with pytest.raises(CrmetricsError):
        project.analyze("retention", measure="orders.avg_amount")
    with pytest.raises(CrmetricsError):
        project.analyze("retention", cohort_by="orders.status")


# time_to_event


def reference_durations(data: LifecycleData, key=lambda lead: None, scale: float = 1.0) -> dict:
    groups: dict = defaultdict(list)
    for lead in data.leads:
        if lead[2] is not None:
            groups[key(lead)].append(lead)
    out = {}
    for group, leads in groups.items():
        done = [(lead[3] - lead[2]).total_seconds() / 86400 * scale for lead in leads if lead[3] is not None]
        out[group] = {
            "records": len(leads),
            "reached": len(done),
            "open": len(leads) - len(done),
            "mean": sum(done) / len(done) if done else None,
            "median": percentile(done, 0.5),
            "p75": percentile(done, 0.75),
            "p90": percentile(done, 0.9),
        }
    return out


def _check(row: dict, expected: dict) -> None:
    for name, value in expected.items():
        assert row[name] == (pytest.approx(value) if value is not None else None), name
    assert row["open_rate"] == pytest.approx(expected["open"] / expected["records"])


def test_time_to_event_counts_open_records(project: crmetrics.Project, data: LifecycleData) -> None:
    result = project.analyze("lead_time")
    rows = result.tables["time_to_event"].records()
    assert len(rows) == 1
    _check(rows[0], reference_durations(data)[None])
    assert rows[0]["open"] > 0
    assert {f.name: f.value for f in result.figures}["open"] == rows[0]["open"]


def test_time_to_event_by_dimension_and_cohort(project: crmetrics.Project, data: LifecycleData) -> None:
    table = project.analyze("lead_time", by="leads.source", cohort="quarter", unit="hours").tables["time_to_event"]
    assert table.columns[:2] == ["leads.source", "cohort"]
    expected = reference_durations(
        data, key=lambda lead: (lead[1], start_of(period(lead[2].date(), "quarter"), "quarter")), scale=24.0
    )
    got = {(r["leads.source"], r["cohort"]): r for r in table.records()}
    assert set(got) == set(expected)
    for group, values in expected.items():
        _check(got[group], values)


def test_time_to_event_with_no_records(project: crmetrics.Project) -> None:
    rows = project.analyze("lead_time", where="leads.source = 'none at all'").tables["time_to_event"].records()
    assert (rows[0]["records"], rows[0]["reached"], rows[0]["open"]) == (0, 0, 0)
    assert rows[0]["median"] is None and rows[0]["open_rate"] is None


def test_bad_references_are_reported_at_load_with_their_location(data: LifecycleData, tmp_path) -> None:
    text = (data.root / "crmetrics.yml").read_text()
    text = text.replace("connection: duckdb:///crm.duckdb", f"connection: duckdb:///{data.root / 'crm.duckdb'}")
    text = text.replace(
        "  retention: {method: cohort, entity: customers, events: orders, grain: month}",
        "  retention: {method: cohort, entity: customer, events: orders, measure: orders.revenu}\n"
        "  unjoined: {method: churn, entity: customers, events: leads}",
    )
    (tmp_path / "crmetrics.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        crmetrics.load(tmp_path / "crmetrics.yml")
    message = str(caught.value)
    assert "crmetrics.yml:" in message and "customer" in message and "orders.revenu" in message
    assert "no join path from leads to customers" in message
