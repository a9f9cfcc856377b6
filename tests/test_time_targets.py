"""Target attainment, semi-additive snapshots, the CLI time options, and SQL for every dialect."""

from __future__ import annotations

import datetime as dt
import json

import pytest

import crmetrics
from crmetrics.cli import main
from crmetrics.errors import CompileError, ConfigError, QueryError
from tests import time_fixture as tf


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tf.TimeData:
    return tf.build(tmp_path_factory.mktemp("targets"))


@pytest.fixture(scope="module")
def project(data: tf.TimeData):
    project = crmetrics.load(data.root / "crmetrics.yml")
    yield project
    project.close()


# --- targets ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("grain", "key"), [("month", tf.month_start), ("quarter", tf.quarter_start)])
def test_attainment_is_actual_over_target_where_targets_add_up(project, data, grain, key) -> None:
    result = project.query(
        ["revenue", "quota", "attainment"], by=[f"metric_time:{grain}"], start="2024-01-01", end="2024-12-31"
    )
    actual = data.group(lambda o: key(data.local_day(o[2])), lambda o: o[3])
    target = data.group(lambda t: key(t[1]), lambda t: t[2], data.targets)
    periods = sorted(set(actual) | set(target))
    periods = [p for p in periods if p.year == 2024]
    expected = [
        (
            p,
            pytest.approx(actual.get(p, 0)),
            pytest.approx(target.get(p, 0)),
            pytest.approx(actual.get(p, 0) / target[p]) if target.get(p) else None,
        )
        for p in periods
    ]
    assert result.rows == expected


def test_attainment_by_region_uses_the_targets_join(project, data) -> None:
    result = project.query(
        ["revenue", "quota", "attainment"], by=["customers.region"], time_range="this year", today="2024-06-30"
    )
    inside = [o for o in data.orders if data.local_day(o[2]).year == 2024]
    actual = data.group(lambda o: data.region_of(o[1]), lambda o: o[3], inside)
    target = data.group(lambda t: data.region_of(t[0]), lambda t: t[2], data.targets)
    for region, revenue, quota, attainment in result.rows:
        assert revenue == pytest.approx(actual.get(region, 0))
        assert quota == pytest.approx(target.get(region, 0))
        assert attainment == (pytest.approx(actual.get(region, 0) / target[region]) if target.get(region) else None)


@pytest.mark.parametrize("grain", ["day", "week"])
def test_attainment_below_the_grain_of_the_targets_is_refused(project, grain) -> None:
    with pytest.raises(QueryError, match="declared per month and do not add up"):
        project.compile(["attainment"], by=[f"metric_time:{grain}"])


# --- semi-additive snapshots -----------------------------------------------------------------------------------


def last_snapshot(rows: list[tuple], period) -> dict:
    """Per period: the sum of the balances on the latest snapshot day of that period (over all accounts)."""
    latest: dict = {}
    for _, _, day, _ in rows:
        latest[period(day)] = max(latest.get(period(day), day), day)
    totals: dict = {}
    for _, _, day, amount in rows:
        if day == latest[period(day)]:
            totals[period(day)] = totals.get(period(day), 0) + amount
    return totals


def test_balance_is_the_last_snapshot_of_each_month_not_the_sum(project, data) -> None:
    result = project.query(["balance"], by=["metric_time:month"])
    assert dict(result.rows) == pytest.approx(last_snapshot(data.balances, tf.month_start))
    assert dict(result.rows)[dt.date(2024, 1, 1)] == pytest.approx(15.0 + 90.0 + 1.0)
    assert dict(result.rows)[dt.date(2024, 2, 1)] == pytest.approx(80.0)  # only b has a snapshot on 28 February


def test_balance_by_region_and_quarter_and_first_snapshot(project, data) -> None:
    result = project.query(["balance", "opening_balance"], by=["balances.region", "metric_time:quarter"])
    latest: dict = {}
    earliest: dict = {}
    for _, _, day, _ in data.balances:
        q = tf.quarter_start(day)
        latest[q] = max(latest.get(q, day), day)
        earliest[q] = min(earliest.get(q, day), day)
    closing = data.group(
        lambda b: (b[1], tf.quarter_start(b[2])),
        lambda b: b[3],
        [b for b in data.balances if b[2] == latest[tf.quarter_start(b[2])]],
    )
    opening = data.group(
        lambda b: (b[1], tf.quarter_start(b[2])),
        lambda b: b[3],
        [b for b in data.balances if b[2] == earliest[tf.quarter_start(b[2])]],
    )
    for region, quarter, balance, opening_balance in result.rows:
        assert balance == pytest.approx(closing.get((region, quarter), 0))
        assert opening_balance == pytest.approx(opening.get((region, quarter), 0))


def test_balance_without_a_time_axis_is_the_latest_snapshot(project, data) -> None:
    result = project.query(["balance"])
    last = max(b[2] for b in data.balances)
    assert result.rows == [(pytest.approx(sum(b[3] for b in data.balances if b[2] == last)),)]


def test_snapshots_with_a_range_and_gap_filling(project, data) -> None:
    result = project.query(["balance"], by=["metric_time:month"], start="2024-01-01", end="2024-04-30", fill_gaps=True)
    inside = last_snapshot(data.balances, tf.month_start)
    assert result.rows == [
        (m, pytest.approx(inside.get(m, 0))) for m in tf.month_range(dt.date(2024, 1, 1), dt.date(2024, 4, 1))
    ]


def test_bad_time_metrics_are_config_errors(tmp_path) -> None:
    (tmp_path / "crmetrics.yml").write_text(
        "version: 1\nname: bad\nentities:\n  orders:\n    table: orders\n    time: at\n"
        "    measures:\n      n: {agg: count}\nmetrics:\n  n: {measure: orders.n}\n"
        "  a: {growth: nn}\n  b: {cumulative: n, window: fortnight}\n  c: {attainment: n}\n"
        "  d: {offset: n, window: 3 days}\n  e: {cumulative: e}\n"
    )
    with pytest.raises(ConfigError) as error:
        crmetrics.load(tmp_path / "crmetrics.yml")
    text = str(error.value)
    assert "unknown metric 'nn' in growth" in text
    assert "window 'fortnight'" in text
    assert "attainment needs `target:`" in text
    assert "`window` does not apply to a offset metric" in text
    assert "cycle" in text


# --- dialects and CLI ------------------------------------------------------------------------------------------

DIALECTS = [
    "duckdb",
    "postgres",
    "sqlite",
    "snowflake",
    "bigquery",
    "spark",
    "databricks",
    "trino",
    "redshift",
    "mysql",
    "tsql",
    "clickhouse",
]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_time_queries_compile_for_every_dialect(project, dialect, tmp_path) -> None:
    if dialect == "sqlite":  # the project converts time zones, which SQLite lacks: refused, never broken SQL
        with pytest.raises(CompileError, match="cannot compile for sqlite: converting time zones"):
            project.compile(["revenue"], by=["metric_time:month"], dialect=dialect)
        project = crmetrics.load(tf.build(tmp_path, zone=None).root / "crmetrics.yml")  # the rest, without a zone
    monthly = project.compile(
        ["revenue", "revenue_yoy", "revenue_ytd", "aov_growth", "attainment"],
        by=["metric_time:month", "customers.region"],
        fill_gaps=True,
        time_range="last 6 months",
        today="2024-03-10",
        dialect=dialect,
    )
    assert "RECURSIVE" not in monthly.upper()  # the spine needs no recursion (Spark limits it to 100 levels)
    daily = project.compile(
        ["active_30d", "balance", "revenue"], by=["metric_time:day"], compare="year", dialect=dialect
    )
    assert daily


def test_cli_time_options(data, capsys) -> None:
    code = main(
        [
            "query",
            "--project",
            str(data.root / "crmetrics.yml"),
            "-m",
            "revenue",
            "--by",
            "metric_time:month",
            "--range",
            "previous 3 months",
            "--today",
            "2024-08-15",
            "--fill-gaps",
            "--compare",
            "period",
            "--format",
            "json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["metric_time:month"] for r in rows] == ["2024-05-01", "2024-06-01", "2024-07-01"]
    assert set(rows[0]) == {"metric_time:month", "revenue", "revenue:previous", "revenue:change", "revenue:growth"}
    revenue = data.group(lambda o: tf.month_start(data.local_day(o[2])), lambda o: o[3])
    assert [r["revenue"] for r in rows] == [pytest.approx(revenue.get(dt.date(2024, m, 1), 0)) for m in (5, 6, 7)]
    assert rows[0]["revenue:previous"] == pytest.approx(revenue.get(dt.date(2024, 4, 1), 0))


def test_cli_bad_range_is_a_user_error(data, capsys) -> None:
    code = main(["compile", "--project", str(data.root / "crmetrics.yml"), "-m", "revenue", "--range", "soon"])
    assert code == 2
    assert "cannot read the time range" in capsys.readouterr().err
