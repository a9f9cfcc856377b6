"""Gap filling, period-over-period, running/to-date/trailing windows and distinct counts over windows.

Every expected number is computed in pure Python from the rows the fixture generated.
"""

from __future__ import annotations

import datetime as dt

import pytest

import crmetrics
from crmetrics.errors import QueryError
from tests import time_fixture as tf


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tf.TimeData:
    return tf.build(tmp_path_factory.mktemp("windows"))


@pytest.fixture(scope="module")
def project(data: tf.TimeData):
    project = crmetrics.load(data.root / "crmetrics.yml")
    yield project
    project.close()


def monthly(data: tf.TimeData, rows=None) -> dict[dt.date, float]:
    return data.group(lambda o: tf.month_start(data.local_day(o[2])), lambda o: o[3], rows)


def daily(data: tf.TimeData) -> dict[dt.date, float]:
    return data.group(lambda o: data.local_day(o[2]), lambda o: o[3])


def spine(values: dict[dt.date, float]) -> list[dt.date]:
    return tf.month_range(min(values), max(values))


def growth(current: float | None, previous: float | None) -> float | None:
    if current is None or previous is None or previous == 0:
        return None
    return (current - previous) / previous


def approx_rows(rows: list[tuple]) -> list[tuple]:
    return [tuple(pytest.approx(v) if isinstance(v, float) else v for v in row) for row in rows]


# --- gap filling ------------------------------------------------------------------------------------------------


def test_gap_filling_shows_zero_for_sums_and_counts_and_null_for_ratios(project, data) -> None:
    result = project.query(["revenue", "orders", "aov", "biggest"], by=["metric_time:month"], fill_gaps=True)
    revenue = monthly(data)
    counts = data.group(lambda o: tf.month_start(data.local_day(o[2])), lambda o: 1)
    biggest: dict[dt.date, float] = {}
    for o in data.orders:
        month = tf.month_start(data.local_day(o[2]))
        biggest[month] = max(biggest.get(month, 0), o[3])
    expected = [
        (m, revenue.get(m, 0), counts.get(m, 0), revenue[m] / counts[m] if m in counts else None, biggest.get(m))
        for m in spine(revenue)
    ]
    assert result.rows == approx_rows(expected)
    empty = [r for r in result.rows if r[2] == 0]
    assert [r[0] for r in empty] == [m for m in spine(revenue) if m not in revenue]
    assert dt.date(2024, 6, 1) in [r[0] for r in empty]  # the fixture leaves whole months empty


def test_without_gap_filling_empty_months_are_absent(project, data) -> None:
    result = project.query(["revenue"], by=["metric_time:month"])
    assert dict(result.rows) == pytest.approx(monthly(data))


def test_gap_filling_crosses_every_region_with_every_month(project, data) -> None:
    result = project.query(["orders"], by=["customers.region", "metric_time:quarter"], fill_gaps=True)
    counts = data.group(lambda o: (data.region_of(o[1]), tf.quarter_start(data.local_day(o[2]))), lambda o: 1)
    quarters = sorted({q for _, q in counts})
    quarters = [q for q in tf.month_range(quarters[0], quarters[-1]) if q.month in (1, 4, 7, 10)]
    regions = sorted({r for r, _ in counts}, key=lambda r: (r is None, r or ""))
    expected = [(r, q, counts.get((r, q), 0)) for r in regions for q in quarters]
    assert result.rows == expected


def test_gap_filling_follows_an_explicit_range_beyond_the_data(project, data) -> None:
    result = project.query(
        ["revenue", "aov"], by=["metric_time:month"], start="2022-11-01", end="2023-02-28", fill_gaps=True
    )
    revenue = monthly(data)
    counts = data.group(lambda o: tf.month_start(data.local_day(o[2])), lambda o: 1)
    months = tf.month_range(dt.date(2022, 11, 1), dt.date(2023, 2, 1))
    expected = [(m, revenue.get(m, 0), revenue[m] / counts[m] if m in counts else None) for m in months]
    assert result.rows == approx_rows(expected)


def test_an_empty_range_fills_every_period_with_zero(project) -> None:
    filled = project.query(
        ["revenue", "orders", "aov"],
        by=["metric_time:month"],
        time_range="this quarter",
        today="2031-05-05",
        fill_gaps=True,
    )
    assert filled.rows == [(dt.date(2031, m, 1), 0, 0, None) for m in (4, 5, 6)]
    assert project.query(["revenue"], by=["metric_time:month"], start="2031-01-01").rows == []


# --- period over period -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fill", [True, False])
def test_previous_period_and_growth_are_computed_over_the_filled_spine(project, data, fill) -> None:
    metrics = ["revenue", "revenue_previous", "revenue_two_back", "revenue_change", "revenue_growth"]
    result = project.query(metrics, by=["metric_time:month"], fill_gaps=fill)
    revenue = monthly(data)
    months = spine(revenue)
    expected = []
    for i, m in enumerate(months):
        if not fill and m not in revenue:
            continue
        current = revenue.get(m, 0)
        previous = revenue.get(months[i - 1], 0) if i >= 1 else None
        two_back = revenue.get(months[i - 2], 0) if i >= 2 else None
        change = current - previous if previous is not None else None
        expected.append((m, current, previous, two_back, change, growth(current, previous)))
    assert result.rows == approx_rows(expected)
    first = result.rows[0]
    assert first[2] is None and first[4] is None and first[5] is None  # the first period has no previous
    # the month after an empty month is compared with that month (0), not with the last month with data
    after_gap = next(m for i, m in enumerate(months) if i and months[i - 1] not in revenue and m in revenue)
    row = next(r for r in result.rows if r[0] == after_gap)
    assert row[2] == 0 and row[5] is None


def test_growth_of_a_ratio_divides_aggregates(project, data) -> None:
    result = project.query(["aov", "aov_growth"], by=["metric_time:quarter"])
    revenue = data.group(lambda o: tf.quarter_start(data.local_day(o[2])), lambda o: o[3])
    counts = data.group(lambda o: tf.quarter_start(data.local_day(o[2])), lambda o: 1)
    quarters = sorted(revenue)
    expected = []
    for i, q in enumerate(quarters):
        aov = revenue[q] / counts[q]
        before = revenue[quarters[i - 1]] / counts[quarters[i - 1]] if i else None
        expected.append((q, aov, growth(aov, before)))
    assert result.rows == approx_rows(expected)


def test_same_month_last_year(project, data) -> None:
    result = project.query(["revenue", "revenue_last_year", "revenue_yoy"], by=["metric_time:month"], fill_gaps=True)
    revenue = monthly(data)
    months = spine(revenue)
    expected = []
    for m in months:
        year_ago = dt.date(m.year - 1, m.month, 1)
        before = revenue.get(year_ago, 0) if year_ago >= months[0] else None
        expected.append((m, revenue.get(m, 0), before, growth(revenue.get(m, 0), before)))
    assert result.rows == approx_rows(expected)


def test_same_day_last_year_around_the_leap_day(project, data) -> None:
    result = project.query(
        ["revenue", "revenue_last_year"], by=["metric_time:day"], start="2024-02-27", end="2025-03-01", fill_gaps=True
    )
    revenue = daily(data)
    first = min(revenue)
    got = {r[0]: r[2] for r in result.rows}
    for day, previous in got.items():
        try:
            year_ago = day.replace(year=day.year - 1)
        except ValueError:  # 29 February: no such day a year earlier
            year_ago = None
        expected = revenue.get(year_ago, 0) if year_ago is not None and year_ago >= first else None
        assert previous == pytest.approx(expected), day
    assert got[dt.date(2024, 2, 29)] is None
    assert got[dt.date(2025, 2, 28)] == pytest.approx(revenue.get(dt.date(2024, 2, 28), 0))


def test_compare_option_adds_previous_change_and_growth_columns(project, data) -> None:
    result = project.query(["revenue", "orders"], by=["metric_time:year"], compare="period")
    assert result.columns == [
        "metric_time:year",
        "revenue",
        "orders",
        "revenue:previous",
        "revenue:change",
        "revenue:growth",
        "orders:previous",
        "orders:change",
        "orders:growth",
    ]
    revenue = data.group(lambda o: data.local_day(o[2]).year, lambda o: o[3])
    counts = data.group(lambda o: data.local_day(o[2]).year, lambda o: 1)
    years = sorted(revenue)
    expected = []
    for year in years:
        before = (revenue.get(year - 1, 0), counts.get(year - 1, 0)) if year > years[0] else (None, None)
        row = [dt.date(year, 1, 1), revenue[year], counts[year]]
        for now, then in ((revenue[year], before[0]), (counts[year], before[1])):
            row += [then, now - then if then is not None else None, growth(now, then)]
        expected.append(tuple(row))
    assert result.rows == approx_rows(expected)
    assert result.rows[0][3] is None and result.rows[0][5] is None


def test_comparison_reaches_before_the_range(project, data) -> None:
    result = project.query(
        ["revenue", "revenue_previous", "revenue_yoy"], by=["metric_time:month"], start="2024-03-01", end="2024-05-31"
    )
    revenue = monthly(data)
    assert [r[0] for r in result.rows] == [dt.date(2024, m, 1) for m in (3, 4, 5)]
    march = result.rows[0]
    assert march[2] == pytest.approx(revenue[dt.date(2024, 2, 1)])
    assert march[3] == pytest.approx(growth(revenue[dt.date(2024, 3, 1)], revenue[dt.date(2023, 3, 1)]))


# --- cumulative and trailing windows ----------------------------------------------------------------------------


def test_running_year_to_date_fiscal_year_to_date_and_trailing_months(project, data) -> None:
    metrics = [
        "revenue_running",
        "revenue_ytd",
        "revenue_fytd",
        "revenue_trailing_3m",
        "aov_trailing_3m",
        "biggest_trailing_3m",
    ]
    result = project.query(metrics, by=["metric_time:month"], fill_gaps=True)
    revenue = monthly(data)
    counts = data.group(lambda o: tf.month_start(data.local_day(o[2])), lambda o: 1)
    biggest: dict[dt.date, float] = {}
    for o in data.orders:
        month = tf.month_start(data.local_day(o[2]))
        biggest[month] = max(biggest.get(month, 0), o[3])
    months = spine(revenue)
    expected = []
    for i, m in enumerate(months):
        window = months[max(0, i - 2) : i + 1]
        expected.append(
            (
                m,
                sum(revenue.get(x, 0) for x in months[: i + 1]),
                sum(revenue.get(x, 0) for x in months[: i + 1] if x.year == m.year),
                sum(
                    revenue.get(x, 0)
                    for x in months[: i + 1]
                    if tf.fiscal_year_start(x, 4) == tf.fiscal_year_start(m, 4)
                ),
                sum(revenue.get(x, 0) for x in window),
                (sum(revenue.get(x, 0) for x in window) / n) if (n := sum(counts.get(x, 0) for x in window)) else None,
                max((biggest[x] for x in window if x in biggest), default=None),
            )
        )
    assert result.rows == approx_rows(expected)


def test_running_total_with_a_range_counts_everything_before_it(project, data) -> None:
    result = project.query(
        ["revenue_running", "revenue_trailing_7d", "revenue_mtd"],
        by=["metric_time:day"],
        start="2024-03-01",
        end="2024-03-12",
    )
    revenue = daily(data)
    for day, running, trailing, mtd in result.rows:
        assert running == pytest.approx(sum(v for d, v in revenue.items() if d <= day))
        assert trailing == pytest.approx(sum(v for d, v in revenue.items() if day - dt.timedelta(days=6) <= d <= day))
        assert mtd == pytest.approx(sum(v for d, v in revenue.items() if day.replace(day=1) <= d <= day))
    assert result.rows[0][0] >= dt.date(2024, 3, 1)


def active(data: tf.TimeData, day: dt.date, days: int, keep=lambda o: True) -> set[int]:
    return {o[1] for o in data.orders if keep(o) and day - dt.timedelta(days=days - 1) <= data.local_day(o[2]) <= day}


def test_trailing_30_day_active_customers_is_a_distinct_count_over_the_window(project, data) -> None:
    result = project.query(
        ["buyers", "active_30d", "active_web_30d", "buyers_to_date", "buyers_mtd"],
        by=["metric_time:day"],
        fill_gaps=True,
    )
    first = min(data.local_day(o[2]) for o in data.orders)
    for day, buyers, active_30, active_web, to_date, mtd in result.rows:
        assert buyers == len(active(data, day, 1)), day
        assert active_30 == len(active(data, day, 30)), day
        assert active_web == len(active(data, day, 30, lambda o: o[4] == "web")), day
        assert to_date == len(active(data, day, (day - first).days + 1)), day
        assert mtd == len(active(data, day, day.day)), day
    # not a sum of daily distinct counts
    assert any(
        r[2] < sum(x[1] for x in result.rows if r[0] - dt.timedelta(days=29) <= x[0] <= r[0]) for r in result.rows
    )


def test_trailing_distinct_count_by_region_with_a_range(project, data) -> None:
    result = project.query(
        ["active_30d"], by=["metric_time:day", "customers.region"], start="2024-02-20", end="2024-03-20", fill_gaps=True
    )
    regions = {data.region_of(o[1]) for o in data.orders if data.local_day(o[2]) <= dt.date(2024, 3, 20)}
    assert {r[1] for r in result.rows} <= regions
    for day, region, count in result.rows:
        expected = active(data, day, 30, lambda o, region=region: data.region_of(o[1]) == region)
        assert count == len(expected), (day, region)
    assert min(r[0] for r in result.rows) == dt.date(2024, 2, 20)


@pytest.mark.parametrize(
    ("metrics", "by", "message"),
    [
        (["revenue_trailing_7d"], ["metric_time:month"], "not a whole number of month periods"),
        (["active_30d"], ["metric_time:week"], "not a whole number of week periods"),
        (["mean_running"], ["metric_time:month"], "needs a sum, count, count_distinct, min or max"),
        (["running_growth"], ["metric_time:month"], "over a comparison"),
        (["revenue_growth"], ["customers.region"], "needs one time dimension"),
        (["revenue_ytd"], ["metric_time:week"], "do not add up to year"),
    ],
)
def test_window_errors(project, metrics, by, message) -> None:
    with pytest.raises(QueryError, match=message):
        project.compile(metrics, by=by)


def test_gap_filling_on_another_time_dimension_with_a_range_on_metric_time(project, data) -> None:
    result = project.query(["orders"], by=["customers.signed_up_on:quarter"], start="2024-01-15", fill_gaps=True)
    signup = {c[0]: tf.quarter_start(c[2]) for c in data.customers}
    inside = [o for o in data.orders if data.local_day(o[2]) >= dt.date(2024, 1, 15)]
    counts = data.group(lambda o: signup.get(o[1]), lambda o: 1, inside)
    known = sorted(q for q in counts if q is not None)
    quarters = [q for q in tf.month_range(known[0], known[-1]) if q.month in (1, 4, 7, 10)]
    assert result.rows == [(q, counts.get(q, 0)) for q in quarters] + [(None, counts[None])]
