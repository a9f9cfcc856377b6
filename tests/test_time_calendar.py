"""Grains and calendars: truncation at every grain, week starts, fiscal years, the project time zone, time ranges.

References are pure Python date arithmetic written in the tests (time_fixture), never crmetrics' own calendar.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from sqlglot import exp

import crmetrics
from crmetrics.compiler.periods import Calendar
from crmetrics.compiler.ranges import resolve_range
from crmetrics.errors import CompileError, ConfigError, QueryError
from tests import time_fixture as tf


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tf.TimeData:
    return tf.build(tmp_path_factory.mktemp("time"))


@pytest.fixture(scope="module")
def project(data: tf.TimeData):
    project = crmetrics.load(data.root / "crmetrics.yml")
    yield project
    project.close()


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def truncated_in_duckdb(calendar: Calendar, grain: str, dates: list[dt.date]) -> list[dt.date]:
    """Run the compiler's truncation SQL over `dates` in DuckDB."""
    value = exp.column("d")
    sql = exp.select(calendar.truncate(value, grain)).from_("t").order_by("d").sql("duckdb")
    con = duckdb.connect()
    con.execute("CREATE TABLE t (d DATE)")
    con.executemany("INSERT INTO t VALUES (?)", [(d,) for d in dates])
    return [row[0] for row in con.execute(sql).fetchall()]


# a span with the ISO week 53 of 2020 (28 December 2020 - 3 January 2021), the leap days of 2020 and 2024
SPAN = days(dt.date(2019, 12, 20), dt.date(2021, 1, 10)) + days(dt.date(2024, 2, 20), dt.date(2024, 3, 5))


@pytest.mark.parametrize("week_start", range(1, 8))
def test_week_truncation_for_every_week_start(week_start: int) -> None:
    got = truncated_in_duckdb(Calendar(week_start=week_start), "week", SPAN)
    expected = [d - dt.timedelta(days=(d.isoweekday() - week_start) % 7) for d in SPAN]
    assert got == expected
    assert all(g.isoweekday() == week_start for g in got)


def test_iso_week_53_is_one_week_across_the_year_end() -> None:
    week53 = days(dt.date(2020, 12, 28), dt.date(2021, 1, 3))
    assert {d.isocalendar()[1] for d in week53} == {53}
    assert set(truncated_in_duckdb(Calendar(), "week", week53)) == {dt.date(2020, 12, 28)}


@pytest.mark.parametrize("grain", ["day", "month", "quarter", "year"])
def test_calendar_grains(grain: str) -> None:
    reference = {
        "day": lambda d: d,
        "month": tf.month_start,
        "quarter": tf.quarter_start,
        "year": lambda d: dt.date(d.year, 1, 1),
    }[grain]
    assert truncated_in_duckdb(Calendar(), grain, SPAN) == [reference(d) for d in SPAN]


@pytest.mark.parametrize("first_month", range(1, 13))
def test_fiscal_years_and_quarters_for_every_start_month(first_month: int) -> None:
    calendar = Calendar(fiscal_start=first_month)
    span = days(dt.date(2023, 12, 25), dt.date(2025, 1, 5))
    year_starts = [tf.fiscal_year_start(d, first_month) for d in span]
    assert truncated_in_duckdb(calendar, "fiscal_year", span) == year_starts
    quarter_starts = []
    for d, fy in zip(span, year_starts, strict=True):
        quarter = tf.months_between(fy, d.replace(day=1)) // 3
        index = fy.year * 12 + fy.month - 1 + 3 * quarter
        quarter_starts.append(dt.date(index // 12, index % 12 + 1, 1))
    assert truncated_in_duckdb(calendar, "fiscal_quarter", span) == quarter_starts
    # the Python side (used for ranges) agrees with the SQL side
    assert [calendar.start_of(d, "fiscal_year") for d in span] == year_starts


def test_revenue_by_local_day_across_dst_changes(project, data) -> None:
    result = project.query(["revenue", "orders"], by=["metric_time:day"])
    got = {row[0]: (row[1], row[2]) for row in result.rows}
    revenue = data.group(lambda o: data.local_day(o[2]), lambda o: o[3])
    counts = data.group(lambda o: data.local_day(o[2]), lambda o: 1)
    assert got == {d: (revenue[d], counts[d]) for d in revenue}
    # 04:59 UTC on 10 March is still 9 March in New York (EST), 07:30 UTC is 10 March (EDT)
    assert data.local_day(dt.datetime(2024, 3, 10, 4, 59)) == dt.date(2024, 3, 9)
    assert data.local_day(dt.datetime(2024, 11, 3, 6, 30)) == dt.date(2024, 11, 3)
    assert data.local_day(dt.datetime(2024, 1, 1, 3, 0)) == dt.date(2023, 12, 31)


@pytest.mark.parametrize(
    ("grain", "key"),
    [
        ("week", tf.iso_week_start),
        ("month", tf.month_start),
        ("quarter", tf.quarter_start),
        ("year", lambda d: dt.date(d.year, 1, 1)),
        ("fiscal_year", lambda d: tf.fiscal_year_start(d, 4)),
    ],
)
def test_revenue_by_grain_in_the_project_time_zone(project, data, grain, key) -> None:
    result = project.query(["revenue"], by=[f"metric_time:{grain}"])
    expected = data.group(lambda o: key(data.local_day(o[2])), lambda o: o[3])
    assert dict(result.rows) == pytest.approx(expected)
    assert [r[0] for r in result.rows] == sorted(expected)


def test_a_time_dimension_with_a_grain_and_a_week_starting_on_sunday(tmp_path) -> None:
    data = tf.build(tmp_path, fiscal_start=10, week_start="sunday")
    project = crmetrics.load(data.root / "crmetrics.yml")
    try:
        weekly = project.query(["revenue"], by=["orders.ordered_at:week"])
        sunday = data.group(
            lambda o: (lambda d: d - dt.timedelta(days=d.isoweekday() % 7))(data.local_day(o[2])), lambda o: o[3]
        )
        assert dict(weekly.rows) == pytest.approx(sunday)
        fiscal = project.query(["revenue"], by=["metric_time:fiscal_year"])
        assert dict(fiscal.rows) == pytest.approx(
            data.group(lambda o: tf.fiscal_year_start(data.local_day(o[2]), 10), lambda o: o[3])
        )
    finally:
        project.close()


def test_absolute_range_is_inclusive_and_in_local_days(project, data) -> None:
    result = project.query(["revenue", "orders"], start="2024-03-01", end="2024-03-10")
    inside = [o for o in data.orders if dt.date(2024, 3, 1) <= data.local_day(o[2]) <= dt.date(2024, 3, 10)]
    assert result.rows == [(pytest.approx(sum(o[3] for o in inside)), len(inside))]


def test_a_range_starting_mid_month_selects_whole_months_on_a_monthly_axis(project, data) -> None:
    result = project.query(["revenue"], by=["metric_time:month"], start="2024-02-15", end="2024-03-31")
    expected = data.group(lambda o: tf.month_start(data.local_day(o[2])), lambda o: o[3])
    assert dict(result.rows) == pytest.approx({m: expected[m] for m in (dt.date(2024, 2, 1), dt.date(2024, 3, 1))})


@pytest.mark.parametrize(
    ("text", "today", "expected"),
    [
        ("today", "2024-03-10", ("2024-03-10", "2024-03-10")),
        ("yesterday", "2024-03-01", ("2024-02-29", "2024-02-29")),
        ("last 90 days", "2024-03-31", ("2024-01-02", "2024-03-31")),
        ("last 7 days", "2024-01-03", ("2023-12-28", "2024-01-03")),
        ("previous 3 months", "2024-01-15", ("2023-10-01", "2023-12-31")),
        ("last 3 months", "2024-01-15", ("2023-11-01", "2024-01-15")),
        ("this quarter", "2024-02-29", ("2024-01-01", "2024-03-31")),
        ("previous month", "2024-03-31", ("2024-02-01", "2024-02-29")),
        ("last month", "2024-01-10", ("2023-12-01", "2023-12-31")),
        ("previous week", "2021-01-01", ("2020-12-21", "2020-12-27")),
        ("this week", "2021-01-01", ("2020-12-28", "2021-01-03")),
        ("year to date", "2024-02-29", ("2024-01-01", "2024-02-29")),
        ("ytd", "2024-12-31", ("2024-01-01", "2024-12-31")),
        ("mtd", "2024-02-29", ("2024-02-01", "2024-02-29")),
        ("quarter to date", "2024-05-20", ("2024-04-01", "2024-05-20")),
        ("this fiscal year", "2024-03-31", ("2023-04-01", "2024-03-31")),
        ("fiscal year to date", "2024-04-02", ("2024-04-01", "2024-04-02")),
        ("previous fiscal quarter", "2024-04-02", ("2024-01-01", "2024-03-31")),
        ("2024-01-01 to 2024-01-31", "2030-01-01", ("2024-01-01", "2024-01-31")),
    ],
)
def test_relative_ranges(text: str, today: str, expected: tuple[str, str]) -> None:
    calendar = Calendar(fiscal_start=4)
    got = resolve_range(text, dt.date.fromisoformat(today), calendar)
    assert got == tuple(dt.date.fromisoformat(e) for e in expected)


def test_relative_range_in_a_query_uses_today(project, data) -> None:
    result = project.query(["orders"], time_range="previous month", today="2024-03-15")
    inside = [o for o in data.orders if dt.date(2024, 2, 1) <= data.local_day(o[2]) <= dt.date(2024, 2, 29)]
    assert result.rows == [(len(inside),)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"time_range": "last fortnight"}, "cannot read the time range"),
        ({"start": "2024-02-30"}, "YYYY-MM-DD"),
        ({"start": "2024-03-01", "end": "2024-02-01"}, "before it starts"),
        ({"time_range": "last 3 days", "start": "2024-01-01"}, "not both"),
        ({"time_range": "last 0 days"}, "at least 1"),
        ({"fill_gaps": True}, "needs one time dimension"),
        ({"compare": "quarter"}, "compare must be one of"),
    ],
)
def test_bad_time_options_are_query_errors(project, options, message) -> None:
    with pytest.raises(QueryError, match=message):
        project.compile(["revenue"], **options)


def test_tenure_in_months_since_the_first_order(project, data) -> None:
    result = project.query(["revenue"], by=["orders.months_since_first"])
    known = {c[0] for c in data.customers}
    first: dict[int, dt.date] = {}
    for o in data.orders:
        first[o[1]] = min(first.get(o[1], data.local_day(o[2])), data.local_day(o[2]))

    def tenure(o: tuple) -> int | None:
        if o[1] not in known:  # an order of an unknown customer has no first order: NULL tenure
            return None
        return tf.months_between(first[o[1]].replace(day=1), data.local_day(o[2]).replace(day=1))

    assert dict(result.rows) == pytest.approx(data.group(tenure, lambda o: o[3]))
    assert result.rows[0][0] == 0


def test_tenure_in_quarters_since_a_declared_start(project, data) -> None:
    result = project.query(["orders"], by=["orders.quarters_since_signup"])
    signup = {c[0]: c[2] for c in data.customers}

    def tenure(o: tuple) -> int | None:
        if o[1] not in signup:
            return None
        start, day = tf.quarter_start(signup[o[1]]), tf.quarter_start(data.local_day(o[2]))
        return tf.months_between(start, day) // 3

    assert dict(result.rows) == data.group(tenure, lambda o: 1)


def test_tenure_in_weeks(project, data) -> None:
    result = project.query(["orders"], by=["orders.weeks_since_first"], where="orders.channel = 'web'")
    first: dict[int, dt.date] = {}
    for o in data.orders:
        first[o[1]] = min(first.get(o[1], data.local_day(o[2])), data.local_day(o[2]))
    web = [o for o in data.orders if o[4] == "web"]

    def tenure(o: tuple) -> int | None:
        if o[1] == 99:
            return None
        return (tf.iso_week_start(data.local_day(o[2])) - tf.iso_week_start(first[o[1]])).days // 7

    assert dict(result.rows) == data.group(tenure, lambda o: 1, web)


def test_unknown_time_zone_and_bad_tenure_are_config_errors(tmp_path) -> None:
    (tmp_path / "crmetrics.yml").write_text(
        "version: 1\nname: bad\nsettings: {timezone: Mars/Olympus}\nentities:\n"
        "  orders:\n    table: orders\n    time: at\n    dimensions:\n"
        "      at: {type: time, timezone: Nowhere/City}\n"
        "      age: {tenure: orders.nothing, grain: month}\n"
    )
    with pytest.raises(ConfigError) as error:
        crmetrics.load(tmp_path / "crmetrics.yml")
    text = str(error.value)
    assert "unknown time zone 'Mars/Olympus'" in text
    assert "unknown time zone 'Nowhere/City'" in text
    assert "unknown dimension 'orders.nothing'" in text


AUCKLAND_ORDERS = """\
version: 1
name: cache_today
settings: {timezone: Pacific/Auckland}
entities:
  orders:
    sql: >-
      SELECT * FROM (VALUES (1, DATE '2024-06-30', 100), (2, DATE '2024-07-01', 7)) AS t(order_id, ordered_at, amount)
    key: order_id
    time: ordered_at
    measures: {revenue: {agg: sum, expr: amount}}
metrics:
  revenue: {measure: orders.revenue}
"""


def test_a_long_running_process_gets_today_in_the_project_zone_after_its_midnight(tmp_path, monkeypatch):
    """The SQL cache must not serve yesterday's "today" between the project zone's midnight and the machine's."""
    import crmetrics.compiler.ranges as ranges

    now = [dt.datetime(2024, 6, 30, 10, tzinfo=dt.UTC)]  # 22:00 on June 30 in Auckland

    class Clock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return now[0].astimezone(tz)

    class Today(dt.date):
        @classmethod
        def today(cls):  # the machine runs on UTC
            return now[0].date()

    monkeypatch.setattr(ranges, "dt", type("clock", (), {"datetime": Clock, "date": Today}))
    (tmp_path / "crmetrics.yml").write_text(AUCKLAND_ORDERS)
    project = crmetrics.load(tmp_path / "crmetrics.yml")
    assert project.query(["revenue"], time_range="today").rows == [(100,)]
    now[0] = dt.datetime(2024, 6, 30, 13, tzinfo=dt.UTC)  # 01:00 on July 1 in Auckland, June 30 in UTC
    assert project.query(["revenue"], time_range="today").rows == [(7,)]


TOKYO_EVENING = """\
version: 1
name: tz_machine
entities:
  orders:
    sql: >-
      SELECT * FROM (VALUES (1, TIMESTAMPTZ '2023-12-31 20:00:00+00'), (2, TIMESTAMPTZ '2024-01-01 10:00:00+00'))
      AS t(order_id, signed_at)
    key: order_id
    time: signed_at
    dimensions: {signed_at: {type: time, with_time_zone: true}}
    measures: {order_count: {agg: count}}
metrics:
  order_count: {measure: orders.order_count}
"""


@pytest.mark.parametrize("machine_zone", ["UTC", "Asia/Tokyo", "America/Los_Angeles"])
def test_timestamptz_days_do_not_depend_on_the_machine_time_zone(tmp_path, machine_zone):
    """Without settings.timezone a TIMESTAMPTZ is cut into days in UTC, as stored, wherever the process runs."""
    import os
    import subprocess
    import sys

    (tmp_path / "crmetrics.yml").write_text(TOKYO_EVENING)
    query = "crmetrics.load('crmetrics.yml').query(['order_count'], by=['metric_time:day'])"
    script = f"import crmetrics; print({query}.rows)"
    env = {**os.environ, "TZ": machine_zone}
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    # 20:00 UTC on Dec 31 is Jan 1 in Tokyo: only UTC days keep it in 2023
    assert out.stdout.strip() == "[(datetime.date(2023, 12, 31), 1), (datetime.date(2024, 1, 1), 1)]", out.stderr


def test_time_zone_conversion_on_sqlite_is_a_compile_error_naming_the_feature(tmp_path):
    (tmp_path / "crmetrics.yml").write_text(
        TOKYO_EVENING.replace("name: tz_machine\n", "name: tz\nsettings: {timezone: Asia/Tokyo}\n")
    )
    project = crmetrics.load(tmp_path / "crmetrics.yml")
    assert "AT TIME ZONE" in project.compile(["order_count"], by=["metric_time:day"], dialect="postgres")
    with pytest.raises(CompileError, match="cannot compile for sqlite: converting time zones"):
        project.compile(["order_count"], by=["metric_time:day"], dialect="sqlite")


def test_the_utc_session_leaves_the_host_applications_own_connections_alone(tmp_path):
    """DuckDB shares one instance per file in a process: a GLOBAL setting would change the host's connections too."""
    import duckdb

    from crmetrics.engines.duckdb import DuckDBEngine

    path = str(tmp_path / "host.duckdb")
    host = duckdb.connect(path)
    host.execute("SET GLOBAL TimeZone = 'Asia/Tokyo'")
    engine = DuckDBEngine(path, read_only=False)
    assert engine.execute("SELECT current_setting('TimeZone') AS tz", ["tz"]).rows == [("UTC",)]
    assert duckdb.connect(path).execute("SELECT current_setting('TimeZone')").fetchall() == [("Asia/Tokyo",)]
    engine.close()
    host.close()
