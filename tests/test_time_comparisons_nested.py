"""Comparisons of comparisons, and running and trailing windows on the row of unknown time, on DuckDB and SQLite
(and PostgreSQL and ClickHouse when their server or driver is there; skipped with the reason otherwise).

A comparison of a comparison (`offset: revenue_previous`, `--compare period` on a growth metric, a year over a
period) must read the base series as far back as both reach. Every expected number is computed in pure Python
from the rows the test writes, by reading the metric's definition literally (the outer comparison reads the inner
one a period back, which reads the base series a period further back), never from crmetrics' own output.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

import crmetrics
from tests.pg_server import pg_server  # noqa: F401  (a fixture)

Order = tuple[int, int | None, str | None, dt.date | None, float]  # (id, customer, region, day, amount)
Period = dt.date | None  # None: the row of unknown time
Series = Callable[[str | None, Period], float | None]  # (region, period) -> value, None for NULL
Back = Callable[[dt.date], dt.date | None]  # a period -> the period it compares with (None: there is none)

PROJECT = """\
version: 1
name: nested_comparisons
connection: {connection}
entities:
  orders:
    table: nested_orders
    key: order_id
    time: ordered_at
    dimensions:
      region: {{}}
      ordered_at: {{type: time}}
    measures:
      revenue: {{agg: sum, expr: amount}}
      order_count: {{agg: count}}
      buyers: {{agg: count_distinct, expr: customer_id}}
metrics:
  revenue: {{measure: orders.revenue}}
  orders: {{measure: orders.order_count}}
  buyers: {{measure: orders.buyers}}
  aov: {{ratio: [revenue, orders]}}
  revenue_previous: {{offset: revenue}}
  revenue_last_year: {{offset: revenue, compare: year}}
  revenue_prev_prev: {{offset: revenue_previous}}
  revenue_two_back: {{offset: revenue, periods: 2}}
  previous_last_year: {{offset: revenue_previous, compare: year}}
  last_year_previous: {{offset: revenue_last_year}}
  revenue_growth: {{growth: revenue}}
  revenue_yoy: {{growth: revenue, compare: year}}
  growth_of_growth: {{growth: revenue_growth}}
  aov_growth: {{growth: aov}}
  aov_growth_change: {{change: aov_growth}}
  previous_pair: {{expr: revenue_previous + revenue_prev_prev}}
  previous_pair_previous: {{offset: previous_pair}}
  revenue_ytd: {{cumulative: revenue, to_date: year}}
  ytd_yoy: {{growth: revenue_ytd, compare: year}}
  ytd_yoy_previous: {{offset: ytd_yoy}}
  revenue_running: {{cumulative: revenue}}
  revenue_t3m: {{cumulative: revenue, window: 3 months}}
  orders_running: {{cumulative: orders}}
  aov_t3m: {{cumulative: aov, window: 3 months}}
  buyers_running: {{cumulative: buyers}}
  buyers_t3m: {{cumulative: buyers, window: 3 months}}
"""

# days on which a year or a day back is decided by 29 February
LEAP_DAYS = [
    dt.date(2023, 2, 28),
    dt.date(2023, 3, 1),
    dt.date(2024, 2, 28),
    dt.date(2024, 2, 29),
    dt.date(2024, 3, 1),
    dt.date(2025, 2, 28),
    dt.date(2025, 3, 1),
]


def _orders() -> list[Order]:
    """Orders from January 2023 to June 2024 (none in August 2023), by three regions (one NULL), some months
    empty for a region, a few customers unknown, orders around 29 February, and orders of unknown time."""
    rng = random.Random(20240229)
    rows: list[Order] = []
    for index in range(18):
        year, month = divmod(2023 * 12 + index, 12)
        if (year, month + 1) == (2023, 8):
            continue
        for region in ("north", "south", None):
            for _ in range(rng.randint(0, 3)):
                day = dt.date(year, month + 1, rng.randint(1, 28))
                customer = rng.choice([1, 2, 3, 4, 5, 6, None])
                rows.append((len(rows) + 1, customer, region, day, float(rng.choice([0, 10, 25, 40, 100]))))
    for number, day in enumerate(LEAP_DAYS):
        rows.append((len(rows) + 1, number % 3 + 1, ("north", "south")[number % 2], day, float(10 * (number + 1))))
    for customer, region, amount in ((1, "north", 7.0), (9, None, 11.0), (2, "north", 5.0)):
        rows.append((len(rows) + 1, customer, region, None, amount))
    return rows


@pytest.fixture(scope="module")
def orders() -> list[Order]:
    return _orders()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, orders: list[Order]) -> Path:
    folder = tmp_path_factory.mktemp("nested")
    create = (
        "CREATE TABLE nested_orders"
        " (order_id INTEGER, customer_id INTEGER, region VARCHAR, ordered_at DATE, amount DOUBLE)"
    )
    with duckdb.connect(str(folder / "orders.duckdb")) as con:
        con.execute(create)
        con.executemany("INSERT INTO nested_orders VALUES (?, ?, ?, ?, ?)", orders)
    lite = sqlite3.connect(folder / "orders.sqlite")
    with lite:
        lite.execute(create)
        lite.executemany(
            "INSERT INTO nested_orders VALUES (?, ?, ?, ?, ?)",
            [(*o[:3], o[3] and o[3].isoformat(), o[4]) for o in orders],
        )
    lite.close()
    for engine in ("duckdb", "sqlite"):
        (folder / f"{engine}.yml").write_text(PROJECT.format(connection=f"{engine}:///orders.{engine}"))
    return folder


class Runner:
    """The project, asking its questions on one engine."""

    def __init__(self, project: Any, engine: Any = None) -> None:
        self.project, self.engine = project, engine

    def query(self, metrics: list[str], **options: Any) -> Any:
        return self.project.query(metrics, connection=self.engine, **options)


@pytest.fixture(
    scope="module", params=["duckdb", "sqlite", "postgres", pytest.param("clickhouse", marks=pytest.mark.clickhouse)]
)
def project(request: pytest.FixtureRequest, root: Path):
    project = crmetrics.load(root / f"{request.param}.yml" if request.param == "sqlite" else root / "duckdb.yml")
    engine = None
    if request.param in ("postgres", "clickhouse"):
        engine = _server_engine(request, root)
    yield Runner(project, engine)
    if engine is not None:
        engine.close()
    project.close()


def _server_engine(request: pytest.FixtureRequest, root: Path) -> Any:
    """The same orders loaded into PostgreSQL or an in-process ClickHouse (chdb)."""
    from tests.differential import loaders

    with duckdb.connect(str(root / "orders.duckdb"), read_only=True) as con:
        tables = {"nested_orders": con.sql("SELECT * FROM nested_orders").to_arrow_table()}
    if request.param == "postgres":
        pytest.importorskip("psycopg", reason="psycopg not installed")
        from crmetrics.engines.postgres import PostgresEngine

        url = request.getfixturevalue("pg_server")
        loaders.load_postgres(url, tables)
        return PostgresEngine(url)
    chdb = pytest.importorskip("chdb", reason="chdb not installed")
    from crmetrics.engines.clickhouse import ChdbEngine

    connection = chdb.connect(":memory:")
    loaders.load_chdb(connection, tables, root)
    return ChdbEngine(connection=connection)


# --- an independent reference ----------------------------------------------------------------------------------


def add_months(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(year, month + 1, 1)


def a_year_back(day: dt.date) -> dt.date | None:
    """The same day a year earlier; 29 February has none."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return None


class Reference:
    """The metrics of the project over the orders, by period (month or day) and optionally by region, as the
    documentation defines them: sums over no rows are 0, ratios over none NULL, the series is every period from
    the first to the last with data, and a comparison reads the series it compares at an earlier period."""

    def __init__(
        self, orders: list[Order], grain: str, by_region: bool, span: tuple[dt.date, dt.date] | None = None
    ) -> None:
        """`span`: the first and last day of a range, the lookback included, else the data's."""
        self.grain, self.by_region = grain, by_region
        if span is not None:
            orders = [o for o in orders if o[3] is None or span[0] <= o[3] <= span[1]]
        self.cells: dict[tuple[str | None, Period], list[Order]] = {}
        for order in orders:
            self.cells.setdefault((self.combo(order), self.period(order[3])), []).append(order)
        dated = [p for _, p in self.cells if p is not None]
        first, last = (min(dated), max(dated)) if span is None else (self.period(span[0]), self.period(span[1]))
        self.spine = set()
        while first <= last:
            self.spine.add(first)
            first = self.step(first, 1)
        self.orders = orders

    def combo(self, order: Order) -> str | None:
        return order[2] if self.by_region else None

    def period(self, day: dt.date | None) -> Period:
        if day is None or self.grain == "day":
            return day
        return day.replace(day=1)

    def step(self, period: dt.date, count: int) -> dt.date:
        return period + dt.timedelta(days=count) if self.grain == "day" else add_months(period, count)

    def back(self, periods: int = 1) -> Back:
        return lambda p: self.step(p, -periods)

    def year_back(self) -> Back:
        return a_year_back if self.grain == "day" else self.back(12)

    # series

    def measure(self, value: Callable[[list[Order]], float]) -> Series:
        """A sum or count per cell: 0 in a period of the series without rows, no row outside the series."""

        def series(combo: str | None, period: Period) -> float | None:
            if period is not None and period not in self.spine:
                return None
            return value(self.cells.get((combo, period), []))

        return series

    def revenue(self) -> Series:
        return self.measure(lambda rows: sum(o[4] for o in rows))

    def orders_count(self) -> Series:
        return self.measure(len)

    def aov(self) -> Series:
        return ratio(self.revenue(), self.orders_count())

    def offset(self, series: Series, back: Back) -> Series:
        """The value of `series` at the period `back` gives; none for the row of unknown time."""

        def shifted(combo: str | None, period: Period) -> float | None:
            earlier = back(period) if period is not None else None
            return series(combo, earlier) if earlier in self.spine else None

        return shifted

    def change(self, series: Series, back: Back) -> Series:
        return minus(series, self.offset(series, back))

    def growth(self, series: Series, back: Back) -> Series:
        return ratio(self.change(series, back), self.offset(series, back))

    def window(self, combine: Callable[[list[Order]], float], start: Callable[[dt.date], dt.date | None]) -> Series:
        """`combine` over the dated orders of the region from `start(period)` (None: the first) to the period;
        NULL on the row of unknown time, which is outside the timeline."""

        def windowed(combo: str | None, period: Period) -> float | None:
            if period is None:
                return None
            first = start(period)
            rows = [
                o
                for o in self.orders
                if o[3] is not None
                and self.combo(o) == combo
                and self.period(o[3]) <= period
                and (first is None or self.period(o[3]) >= first)
            ]
            return combine(rows)

        return windowed

    def shown(self) -> list[tuple[str | None, Period]]:
        """The cells with data (gaps are not filled), the row of unknown time included."""
        return list(self.cells)


def minus(left: Series, right: Series) -> Series:
    def value(combo: str | None, period: Period) -> float | None:
        a, b = left(combo, period), right(combo, period)
        return None if a is None or b is None else a - b

    return value


def plus(left: Series, right: Series) -> Series:
    def value(combo: str | None, period: Period) -> float | None:
        a, b = left(combo, period), right(combo, period)
        return None if a is None or b is None else a + b

    return value


def ratio(numerator: Series, denominator: Series) -> Series:
    def value(combo: str | None, period: Period) -> float | None:
        a, b = numerator(combo, period), denominator(combo, period)
        return None if a is None or b is None or b == 0 else a / b

    return value


def distinct_customers(rows: list[Order]) -> float:
    return len({o[1] for o in rows if o[1] is not None})


# --- comparing ---------------------------------------------------------------------------------------------------


def as_date(value: Any) -> Any:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def actual(result: Any, by_region: bool) -> dict[tuple[str | None, Period], tuple]:
    """The result's rows by (region, period)."""
    rows = {}
    for row in result.rows:
        region, period = (row[0], as_date(row[1])) if by_region else (None, as_date(row[0]))
        rows[(region, period)] = tuple(row[2:] if by_region else row[1:])
    return rows


def expected(reference: Reference, columns: list[Series], since: dt.date | None = None) -> dict:
    cells = [c for c in reference.shown() if since is None or (c[1] is not None and c[1] >= since)]
    return {cell: tuple(approx(series(*cell)) for series in columns) for cell in cells}


def approx(value: float | None) -> Any:
    return None if value is None else pytest.approx(value)


def compare_columns(reference: Reference, series: Series, back: Back) -> list[Series]:
    """metric:previous, metric:change, metric:growth."""
    return [reference.offset(series, back), reference.change(series, back), reference.growth(series, back)]


# --- comparisons of comparisons ------------------------------------------------------------------------------------


@pytest.mark.parametrize("by_region", [False, True])
def test_an_offset_of_an_offset_is_the_base_series_moved_by_both(project, orders, by_region) -> None:
    ref = Reference(orders, "month", by_region)
    revenue = ref.revenue()
    previous = ref.offset(revenue, ref.back())
    last_year = ref.offset(revenue, ref.year_back())
    by = ["orders.region", "metric_time:month"] if by_region else ["metric_time:month"]
    metrics = [
        "revenue_prev_prev",
        "revenue_two_back",
        "previous_last_year",
        "last_year_previous",
        "previous_pair",
        "previous_pair_previous",
    ]
    pair = plus(previous, ref.offset(previous, ref.back()))
    columns = [
        ref.offset(previous, ref.back()),
        ref.offset(revenue, ref.back(2)),
        ref.offset(previous, ref.year_back()),
        ref.offset(last_year, ref.back()),
        pair,
        ref.offset(pair, ref.back()),
    ]
    result = project.query(metrics, by=by)
    assert actual(result, by_region) == expected(ref, columns)
    # the data reaches back far enough that these are numbers, not only NULLs
    assert sum(v[2] is not None for v in actual(result, by_region).values()) > 3


@pytest.mark.parametrize("compare", ["period", "year"])
def test_compare_on_growth_metrics_compares_the_growth(project, orders, compare) -> None:
    ref = Reference(orders, "month", by_region=True)
    back = ref.back() if compare == "period" else ref.year_back()
    revenue = ref.revenue()
    growth, yoy = ref.growth(revenue, ref.back()), ref.growth(revenue, ref.year_back())
    aov_growth = ref.growth(ref.aov(), ref.back())
    nested = ref.growth(growth, ref.back())
    metrics = [("revenue_growth", growth), ("revenue_yoy", yoy), ("aov_growth", aov_growth)]
    metrics += [("growth_of_growth", nested), ("aov_growth_change", ref.change(aov_growth, ref.back()))]
    columns = [series for _, series in metrics]
    for _, series in metrics:
        columns += compare_columns(ref, series, back)
    result = project.query([name for name, _ in metrics], by=["orders.region", "metric_time:month"], compare=compare)
    assert result.columns[2 + len(metrics) : 5 + len(metrics)] == [
        "revenue_growth:previous",
        "revenue_growth:change",
        "revenue_growth:growth",
    ]
    assert actual(result, by_region=True) == expected(ref, columns)


def test_a_comparison_of_a_comparison_of_a_window(project, orders) -> None:
    ref = Reference(orders, "month", by_region=False)
    ytd = ref.window(lambda rows: sum(o[4] for o in rows), lambda p: p.replace(month=1))
    ytd_yoy = ref.growth(ytd, ref.year_back())
    columns = [ytd_yoy, ref.offset(ytd_yoy, ref.back()), *compare_columns(ref, ytd_yoy, ref.back())]
    result = project.query(["ytd_yoy", "ytd_yoy_previous"], by=["metric_time:month"], compare="period")
    assert result.columns[-1] == "ytd_yoy_previous:growth"
    values = {cell: row[:5] for cell, row in actual(result, by_region=False).items()}
    assert values == expected(ref, columns)


def test_nested_comparisons_read_before_a_range(project, orders) -> None:
    """The range starts mid-June 2023: June's value two periods back is April's, read though not shown. The
    periods a comparison reads before the range are those of the range moved back as far as the comparisons
    reach (here 25 months: previous_last_year:previous is a month and two years back), as the documentation
    says, 0 where they hold no rows."""
    ref = Reference(orders, "month", False, span=(dt.date(2021, 5, 1), dt.date(2024, 6, 30)))
    revenue = ref.revenue()
    previous = ref.offset(revenue, ref.back())
    metrics = [
        ("revenue_prev_prev", ref.offset(previous, ref.back())),
        ("previous_last_year", ref.offset(previous, ref.year_back())),
        ("revenue_growth", ref.growth(revenue, ref.back())),
    ]
    columns = [series for _, series in metrics]
    for _, series in metrics:
        columns += compare_columns(ref, series, ref.year_back())
    result = project.query(
        [name for name, _ in metrics],
        by=["metric_time:month"],
        start="2023-06-15",
        end="2024-06-30",
        compare="year",
    )
    rows = actual(result, by_region=False)
    assert rows == expected(ref, columns, since=dt.date(2023, 6, 1))
    # June 2023 two months back is April 2023, before the range
    assert rows[(None, dt.date(2023, 6, 1))][0] == sum(
        o[4] for o in orders if o[3] and o[3].month == 4 and o[3].year == 2023
    )


def test_day_grain_nested_comparisons_around_29_february(project, orders) -> None:
    """A day back then a year back is not a year back then a day back: on 1 March 2025 the first reads
    29 February 2024, the second 28 February 2024; 29 February has no day a year earlier."""
    ref = Reference(orders, "day", by_region=False)
    revenue = ref.revenue()
    previous = ref.offset(revenue, ref.back())
    last_year = ref.offset(revenue, ref.year_back())
    metrics = [
        ("previous_last_year", ref.offset(previous, ref.year_back())),
        ("last_year_previous", ref.offset(last_year, ref.back())),
        ("revenue_prev_prev", ref.offset(previous, ref.back())),
        ("revenue_growth", ref.growth(revenue, ref.back())),
    ]
    columns = [series for _, series in metrics]
    for _, series in metrics:
        columns += compare_columns(ref, series, ref.year_back())
    result = project.query([name for name, _ in metrics], by=["metric_time:day"], compare="year")
    rows = actual(result, by_region=False)
    assert rows == expected(ref, columns)
    march = rows[(None, dt.date(2025, 3, 1))]
    assert march[0] == revenue(None, dt.date(2024, 2, 29))
    assert march[1] == revenue(None, dt.date(2024, 2, 28))
    assert march[0] != march[1]
    assert rows[(None, dt.date(2024, 2, 29))][4] is None  # previous_last_year:previous: no 29 February 2023


# --- windows on the row of unknown time ----------------------------------------------------------------------------


@pytest.mark.parametrize("by_region", [False, True])
def test_running_and_trailing_windows_are_null_on_the_row_of_unknown_time(project, orders, by_region) -> None:
    ref = Reference(orders, "month", by_region)
    total = lambda rows: sum(o[4] for o in rows)  # noqa: E731
    count = lambda rows: float(len(rows))  # noqa: E731
    since_three = lambda p: add_months(p, -2)  # noqa: E731
    from_first = lambda p: None  # noqa: E731
    columns = [
        ref.window(total, from_first),
        ref.window(total, since_three),
        ref.window(count, from_first),
        ratio(ref.window(total, since_three), ref.window(count, since_three)),
        ref.window(distinct_customers, from_first),
        ref.window(distinct_customers, since_three),
        ref.offset(ref.revenue(), ref.back()),
    ]
    metrics = [
        "revenue_running",
        "revenue_t3m",
        "orders_running",
        "aov_t3m",
        "buyers_running",
        "buyers_t3m",
        "revenue_previous",
    ]
    by = ["orders.region", "metric_time:month"] if by_region else ["metric_time:month"]
    rows = actual(project.query(metrics, by=by), by_region)
    assert rows == expected(ref, columns)
    unknown = [row for (_, period), row in rows.items() if period is None]
    assert unknown and all(v is None for row in unknown for v in row)


def test_windows_are_null_on_the_row_of_unknown_time_with_gaps_filled(project, orders) -> None:
    result = project.query(["revenue", "revenue_running", "buyers_t3m"], by=["metric_time:month"], fill_gaps=True)
    unknown = [row for row in result.rows if row[0] is None]
    assert unknown == [(None, sum(o[4] for o in orders if o[3] is None), None, None)]
    august = dt.date(2023, 8, 1)
    row = next(row for row in result.rows if as_date(row[0]) == august)
    assert row[1] == 0 and row[2] == pytest.approx(sum(o[4] for o in orders if o[3] and o[3] < august))
