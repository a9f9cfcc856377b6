"""Data and a project for the time-intelligence tests, with the rows kept in Python for independent references.

Orders are stored as naive UTC timestamps and the project reports in America/New_York, so the tests see the DST
changes of 2024 (10 March, 3 November) and orders whose local date differs from their UTC date. The data has gaps
(whole months without orders), a leap day, the ISO week 53 of 2020, NULL and unknown customers.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas

ZONE = "America/New_York"
UTC = dt.UTC

PROJECT_YAML = """\
version: 1
name: time_test
connection: duckdb:///time.duckdb
settings:
  {zone_setting}
  fiscal_year_start: {fiscal_start}
  week_start: {week_start}
entities:
  customers:
    table: customers
    key: customer_id
    dimensions:
      region: {{}}
      signed_up_on: {{type: time}}
      first_order_at: {{measure: orders.first_order}}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins: {{customers: customer_id}}
    dimensions:
      ordered_at: {{type: time{zone_column}}}
      channel: {{}}
      months_since_first: {{tenure: customers.first_order_at, grain: month}}
      quarters_since_signup: {{tenure: customers.signed_up_on, grain: quarter}}
      weeks_since_first: {{tenure: customers.first_order_at, grain: week}}
    measures:
      revenue: {{agg: sum, expr: amount}}
      order_count: {{agg: count}}
      buyers: {{agg: count_distinct, expr: customer_id}}
      web_buyers: {{agg: count_distinct, expr: customer_id, filter: "orders.channel = 'web'"}}
      biggest: {{agg: max, expr: amount}}
      first_order: {{agg: min, expr: ordered_at}}
      mean_amount: {{agg: avg, expr: amount}}
  targets:
    table: targets
    time: month
    joins: {{customers: customer_id}}
    dimensions:
      month: {{type: time, grain: month}}
    measures:
      quota: {{agg: sum, expr: amount}}
  balances:
    table: balances
    time: day
    dimensions:
      day: {{type: time}}
      region: {{}}
    measures:
      balance: {{agg: sum, expr: amount, semi_additive: last}}
      opening_balance: {{agg: sum, expr: amount, semi_additive: first}}
metrics:
  revenue: {{measure: orders.revenue}}
  orders: {{measure: orders.order_count}}
  buyers: {{measure: orders.buyers}}
  web_buyers: {{measure: orders.web_buyers}}
  biggest: {{measure: orders.biggest}}
  mean_amount: {{measure: orders.mean_amount}}
  aov: {{ratio: [revenue, orders]}}
  quota: {{measure: targets.quota}}
  attainment: {{attainment: revenue, target: quota}}
  revenue_previous: {{offset: revenue}}
  revenue_two_back: {{offset: revenue, periods: 2}}
  revenue_last_year: {{offset: revenue, compare: year}}
  revenue_change: {{change: revenue}}
  revenue_growth: {{growth: revenue}}
  revenue_yoy: {{growth: revenue, compare: year}}
  aov_growth: {{growth: aov}}
  revenue_running: {{cumulative: revenue}}
  revenue_ytd: {{cumulative: revenue, to_date: year}}
  revenue_fytd: {{cumulative: revenue, to_date: fiscal_year}}
  revenue_mtd: {{cumulative: revenue, to_date: month}}
  revenue_trailing_3m: {{cumulative: revenue, window: 3 months}}
  revenue_trailing_7d: {{cumulative: revenue, window: 7 days}}
  aov_trailing_3m: {{cumulative: aov, window: 3 months}}
  biggest_trailing_3m: {{cumulative: biggest, window: 3 months}}
  active_30d: {{cumulative: buyers, window: 30 days}}
  active_web_30d: {{cumulative: web_buyers, window: 30 days}}
  buyers_to_date: {{cumulative: buyers}}
  buyers_mtd: {{cumulative: buyers, to_date: month}}
  ytd_yoy: {{growth: revenue_ytd, compare: year}}
  running_growth: {{cumulative: revenue_growth}}
  mean_running: {{cumulative: mean_amount}}
  balance: {{measure: balances.balance}}
  opening_balance: {{measure: balances.opening_balance}}
"""


@dataclass
class TimeData:
    root: Path
    customers: list[tuple]  # (customer_id, region, signed_up_on)
    orders: list[tuple]  # (order_id, customer_id, ordered_at naive UTC, amount, channel)
    targets: list[tuple]  # (customer_id, month, amount)
    balances: list[tuple]  # (account, region, day, amount)
    zone: str | None = ZONE

    def local_day(self, utc: dt.datetime) -> dt.date:
        """The date of a naive UTC timestamp in the project's time zone (America/New_York, or UTC without one)."""
        if self.zone is None:
            return utc.date()
        return utc.replace(tzinfo=UTC).astimezone(zoneinfo.ZoneInfo(self.zone)).date()

    def region_of(self, customer_id: int) -> str | None:
        return next((c[1] for c in self.customers if c[0] == customer_id), None)

    def group(
        self, key: Callable[[tuple], object], value: Callable[[tuple], float], rows: Iterable[tuple] | None = None
    ) -> dict[object, float]:
        """Sum of `value` per `key` over the orders (or `rows`)."""
        totals: dict[object, float] = {}
        for row in self.orders if rows is None else rows:
            totals[key(row)] = totals.get(key(row), 0) + value(row)
        return totals


def _orders(rng: random.Random) -> list[tuple]:
    rows = []
    skipped_months = {(2024, 6), (2024, 7), (2025, 1)}  # whole months without orders: gaps to fill
    day = dt.date(2023, 1, 1)
    order_id = 1
    while day <= dt.date(2025, 3, 31):
        if (day.year, day.month) not in skipped_months and rng.random() < 0.45:
            for _ in range(rng.randint(1, 3)):
                moment = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=rng.randrange(24 * 60))
                customer = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 99])  # 99 is not a customer
                channel = rng.choice(["web", "store"])
                rows.append((order_id, customer, moment, float(rng.randint(1, 200)), channel))
                order_id += 1
        day += dt.timedelta(days=1)
    # hand-placed orders on awkward instants (UTC): around the DST changes, at a year end, on the leap day
    awkward = [
        dt.datetime(2024, 3, 10, 4, 59),  # 23:59 EST on 9 March
        dt.datetime(2024, 3, 10, 7, 30),  # 03:30 EDT on 10 March, just after the change
        dt.datetime(2024, 11, 3, 4, 30),  # 00:30 EDT on 3 November
        dt.datetime(2024, 11, 3, 5, 30),  # 01:30 EDT (the first one)
        dt.datetime(2024, 11, 3, 6, 30),  # 01:30 EST (the second one)
        dt.datetime(2024, 1, 1, 3, 0),  # 22:00 on 31 December 2023 in New York
        dt.datetime(2024, 2, 29, 12, 0),  # leap day
        dt.datetime(2024, 3, 1, 2, 0),  # still 29 February in New York
        dt.datetime(2024, 4, 1, 3, 59),  # 31 March in New York: a fiscal year boundary
    ]
    for moment in awkward:
        rows.append((order_id, 3, moment, 50.0, "web"))
        order_id += 1
    return rows


def build(root: Path, fiscal_start: int = 4, week_start: str = "monday", zone: str | None = ZONE) -> TimeData:
    """Write the database and the project into `root` (without a time zone when `zone` is None)."""
    rng = random.Random(20240229)
    customers = [
        (1, "north", dt.date(2022, 11, 5)),
        (2, "north", dt.date(2023, 1, 15)),
        (3, "south", dt.date(2023, 3, 31)),
        (4, "south", dt.date(2023, 6, 1)),
        (5, None, dt.date(2023, 7, 9)),
        (6, "east", dt.date(2023, 12, 31)),
        (7, "east", dt.date(2024, 2, 29)),
        (8, "Ünïcode", dt.date(2024, 5, 5)),
    ]
    orders = _orders(rng)
    targets = [(c, dt.date(2024, m, 1), float(100 * c + m)) for c in (1, 2, 3, 6) for m in range(1, 13)]
    balances = [
        ("a", "north", dt.date(2024, 1, 1), 10.0),
        ("a", "north", dt.date(2024, 1, 15), 12.0),
        ("a", "north", dt.date(2024, 1, 31), 15.0),
        ("b", "south", dt.date(2024, 1, 15), 100.0),
        ("b", "south", dt.date(2024, 1, 31), 90.0),
        ("c", None, dt.date(2024, 1, 31), 1.0),
        ("a", "north", dt.date(2024, 2, 10), 20.0),
        ("b", "south", dt.date(2024, 2, 28), 80.0),  # the last snapshot of February: only b has one
        ("a", "north", dt.date(2024, 4, 30), 30.0),
    ]
    root.mkdir(parents=True, exist_ok=True)
    (root / "crmetrics.yml").write_text(
        PROJECT_YAML.format(
            fiscal_start=fiscal_start,
            week_start=week_start,
            zone_setting=f"timezone: {zone}" if zone else "row_limit: 1000",
            zone_column=", timezone: UTC" if zone else "",
        )
    )
    con = duckdb.connect(str(root / "time.duckdb"))
    con.execute("CREATE TABLE customers (customer_id INTEGER, region VARCHAR, signed_up_on DATE)")
    _insert(con, "customers", customers)
    con.execute(
        "CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, amount DOUBLE,"
        " channel VARCHAR)"
    )
    _insert(con, "orders", orders)
    con.execute("CREATE TABLE targets (customer_id INTEGER, month DATE, amount DOUBLE)")
    _insert(con, "targets", targets)
    con.execute("CREATE TABLE balances (account VARCHAR, region VARCHAR, day DATE, amount DOUBLE)")
    _insert(con, "balances", balances)
    con.close()
    return TimeData(root, customers, orders, targets, balances, zone)


def _insert(con: duckdb.DuckDBPyConnection, name: str, rows: list[tuple]) -> None:
    """Insert rows through a DataFrame (executemany is slow in DuckDB)."""
    columns = [c[0] for c in con.execute(f"DESCRIBE {name}").fetchall()]
    frame = pandas.DataFrame(rows, columns=columns)  # noqa: F841 - read by DuckDB's replacement scan
    con.execute(f"INSERT INTO {name} SELECT * FROM frame")


# --- independent calendar arithmetic for the references (deliberately not crmetrics.compiler.periods) ------------


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def iso_week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def fiscal_year_start(day: dt.date, first_month: int) -> dt.date:
    year = day.year if day.month >= first_month else day.year - 1
    return dt.date(year, first_month, 1)


def months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def month_range(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every month start from `first` to `last` (both month starts)."""
    months, current = [], first
    while current <= last:
        months.append(current)
        current = dt.date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months
