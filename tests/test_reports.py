"""Report building: every number in a report against hand-written SQL on a small CRM with awkward rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import crmetrics
from crmetrics.analysis.base import AnalysisMethod, AnalysisResult, Figure
from crmetrics.dsl.schema import Field, Obj, Str
from crmetrics.errors import QueryError, RenderError
from crmetrics.hookspecs import hookimpl
from crmetrics.reports import build_document, render_report, report_format, resolve_params
from crmetrics.reports.period import Period, shift_months
from crmetrics.reports.render import render_document
from crmetrics.result import Result
from tests import reports_fixture as fx


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports")
    fx.build(path)
    return path


@pytest.fixture(scope="module")
def document(root: Path) -> dict:
    project = crmetrics.load(root / "crmetrics.yml")
    try:
        return build_document(project, "review")
    finally:
        project.close()


def section(document: dict, title: str) -> dict:
    return next(s for s in document["sections"] if s["title"] == title)


def test_kpi_values_and_previous_period_match_sql(root: Path, document: dict) -> None:
    tiles = {t["metric"]: t for t in section(document, "KPIs")["tiles"]}
    period = "ordered_at >= TIMESTAMP '2024-01-01' AND ordered_at < TIMESTAMP '2025-01-01'"
    previous = "ordered_at >= TIMESTAMP '2023-01-01' AND ordered_at < TIMESTAMP '2024-01-01'"
    revenue, count, online = fx.sql(
        root,
        f"SELECT SUM(amount), COUNT(*), SUM(CASE WHEN channel = 'online' THEN amount END) FROM orders WHERE {period}",
    )[0]
    before, before_count, before_online = fx.sql(
        root,
        f"SELECT SUM(amount), COUNT(*), SUM(CASE WHEN channel = 'online' THEN amount END) FROM orders WHERE {previous}",
    )[0]
    assert tiles["revenue"]["value"] == pytest.approx(float(revenue))  # the last second of 2024 counts
    assert tiles["order_count"]["value"] == count == 6  # the NULL amount and the orphan order count too
    assert tiles["aov"]["value"] == pytest.approx(float(revenue) / count)
    assert tiles["online_share"]["value"] == pytest.approx(float(online) / float(revenue))
    assert tiles["revenue"]["previous"] == pytest.approx(float(before))
    assert tiles["order_count"]["previous"] == before_count
    assert tiles["revenue"]["change"] == pytest.approx((float(revenue) - float(before)) / float(before))
    share_before = float(before_online) / float(before)
    assert tiles["online_share"]["delta"] == pytest.approx(float(online) / float(revenue) - share_before)


def test_kpi_trend_is_the_last_periods_of_the_report_period(root: Path, document: dict) -> None:
    tile = next(t for t in section(document, "KPIs")["tiles"] if t["metric"] == "revenue")
    rows = fx.sql(
        root,
        "SELECT date_trunc('month', ordered_at)::DATE AS m, SUM(amount) FROM orders "
        "WHERE ordered_at >= TIMESTAMP '2024-10-01' AND ordered_at < TIMESTAMP '2025-01-01' GROUP BY 1 ORDER BY 1",
    )
    by_month = {r[0].isoformat(): float(r[1]) for r in rows}
    months = ["2024-10-01", "2024-11-01", "2024-12-01"]  # the last three months, with orders or not
    assert tile["spark_periods"] == months
    assert tile["spark"] == [pytest.approx(by_month.get(m, 0.0)) for m in months]


def test_table_keeps_orphans_and_nulls_and_matches_sql(root: Path, document: dict) -> None:
    table = section(document, "By region")["table"]
    assert [c["name"] for c in table["columns"]] == ["customers.region", "revenue", "order_count"]
    expected = fx.sql(
        root,
        "SELECT c.region, SUM(o.amount), COUNT(*) FROM orders o LEFT JOIN customers c USING (customer_id) "
        "WHERE o.ordered_at >= TIMESTAMP '2024-01-01' AND o.ordered_at < TIMESTAMP '2025-01-01' "
        "GROUP BY 1 ORDER BY 1 NULLS LAST",
    )
    assert [(r[0], pytest.approx(float(r[1] or 0)), r[2]) for r in expected] == [tuple(r) for r in table["rows"]]


def test_narrative_text_gets_kpis_metrics_and_period(document: dict) -> None:
    text = next(s for s in document["sections"] if s["type"] == "text")["text"]
    assert text == "Revenue 630.75 from 5 buyers in 2024-01-01 to 2024-12-31."  # the orphan order is a buyer


def test_chart_spec_carries_the_data(document: dict) -> None:
    chart = section(document, "Revenue by channel")
    values = chart["spec"]["data"]["values"]
    assert {v["x"]: v["y"] for v in values} == {"online": 400.0, "store": 200.75, "phone": 30.0}
    monthly = section(document, "Monthly")
    assert {v["series"] for v in monthly["spec"]["data"]["values"]} == {"Revenue", "Order count"}
    months = {v["x"] for v in monthly["spec"]["data"]["values"]}
    assert "2025-01-01" in months and "2023-01-01" in months  # period: false shows all history


def test_drilldown_lists_the_records_behind_the_figure(root: Path, document: dict) -> None:
    drill = section(document, "Orders")
    assert drill["total_rows"] == 6
    # -amount, then order_id breaks the 200.00 tie; the NULL amount sorts last and falls outside the limit
    assert [r[0] for r in drill["table"]["rows"]] == [3, 6, 9, 5, 7]
    assert drill["table"]["rows"][0][1] == "Bé Ünïcødé"


def test_analyses_section_expands_to_nothing_without_analyses(document: dict) -> None:
    assert not [s for s in document["sections"] if s["type"] in ("analysis", "analyses", "error")]
    assert document["warnings"] == []


def test_parameters_override_and_segments(root: Path) -> None:
    project = crmetrics.load(root / "crmetrics.yml")
    raw = project.model.reports["review"]
    params = resolve_params(raw["parameters"], period="2023-01-01..2023-12-31", segments=["north"])
    doc = build_document(project, "review", params)
    tiles = {t["metric"]: t for t in doc["sections"][0]["tiles"]}
    expected = fx.sql(
        root,
        "SELECT SUM(o.amount) FROM orders o JOIN customers c USING (customer_id) WHERE c.region = 'north' "
        "AND o.ordered_at >= TIMESTAMP '2023-01-01' AND o.ordered_at < TIMESTAMP '2024-01-01'",
    )[0][0]
    assert tiles["revenue"]["value"] == pytest.approx(float(expected))
    assert tiles["revenue"]["previous"] == 0  # nothing in 2022: the change is undefined, not infinite
    assert tiles["revenue"]["change"] is None
    with pytest.raises(QueryError, match=r"START\.\.END"):
        resolve_params(raw["parameters"], period="2023-01-01")
    with pytest.raises(QueryError, match="before it starts"):
        resolve_params(raw["parameters"], period="2023-02-01..2023-01-01")
    project.close()


def test_period_arithmetic() -> None:
    year = Period(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert year.previous() == Period(dt.date(2023, 1, 1), dt.date(2023, 12, 31))
    feb = Period(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert feb.previous() == Period(dt.date(2024, 1, 1), dt.date(2024, 1, 31))
    days = Period(dt.date(2024, 3, 5), dt.date(2024, 3, 11))
    assert days.previous() == Period(dt.date(2024, 2, 27), dt.date(2024, 3, 4))
    assert shift_months(dt.date(2024, 3, 31), -1) == dt.date(2024, 2, 29)
    assert year.trend_window("quarter", 2) == Period(dt.date(2024, 7, 1), dt.date(2024, 12, 31))
    assert year.trend_window("week", 1).start == dt.date(2024, 12, 30)  # ISO weeks start on Monday


class _Plugin:
    """A test analysis method, registered for one project through load(plugins=...)."""

    @hookimpl
    def register_analysis_methods(self, register) -> None:  # type: ignore[no-untyped-def]
        def run(ctx):  # type: ignore[no-untyped-def]
            if ctx.params["mode"] == "boom":
                raise RuntimeError("the plugin broke")
            table = Result(["channel", "n"], [("online", 3), ("store", 2)])
            chart = {
                "mark": "bar",
                "data": {"name": "counts"},
                "encoding": {"x": {"field": "channel", "type": "nominal"}, "y": {"field": "n", "type": "quantitative"}},
            }
            return AnalysisResult(
                "probe",
                ctx.name,
                "Probe",
                {"counts": table},
                [Figure("n", "Orders", 5, "integer")],
                [chart],
                ["a note"],
            )

        register(AnalysisMethod("probe", "test method", Obj(fields={"mode": Field(Str(), True)}), run))


ANALYSES = """
analyses:
  good: {method: probe, mode: fine, description: A probe}
  bad: {method: probe, mode: boom}
"""


def test_analysis_sections_render_the_method_default_and_contain_failures(tmp_path: Path) -> None:
    path = fx.build(tmp_path, extra=ANALYSES)
    project = crmetrics.load(path, plugins=[_Plugin()])
    with pytest.raises(RuntimeError, match="the plugin broke"):
        build_document(project, "review")
    doc = build_document(project, "review", keep_going=True)
    good = next(s for s in doc["sections"] if s.get("analysis") == "good")
    assert good["figures"] == [{"name": "n", "label": "Orders", "value": 5, "format": "integer"}]
    assert good["tables"][0]["rows"] == [["online", 3], ["store", 2]]
    assert good["charts"][0]["spec"]["data"] == {
        "values": [{"channel": "online", "n": 3}, {"channel": "store", "n": 2}]
    }
    assert good["description"] == "A probe" and good["notes"] == ["a note"]
    errors = [s for s in doc["sections"] if s["type"] == "error"]
    assert len(errors) == 1 and "the plugin broke" in errors[0]["message"]
    assert len(doc["warnings"]) == 1
    html = render_document(doc, report_format(project, "html"), project.model.root, {"charts": "builtin"})
    assert "This section could not be built: the plugin broke" in html
    md = render_report(project, "review", "md", tmp_path / "r.md", keep_going=True).read_text(encoding="utf-8")
    assert "**This section could not be built:** the plugin broke" in md
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg"') == 3  # two report charts and the analysis chart
    project.close()


def test_narrative_errors_name_the_report(tmp_path: Path) -> None:
    reports = fx.REPORTS.replace("{{ metrics.buyers }}", "{{ metrics.nope }}")
    project = crmetrics.load(fx.build(tmp_path, reports=reports))
    with pytest.raises(RenderError, match="report 'review': narrative text failed"):
        build_document(project, "review")
    project.close()


def test_narrative_is_sandboxed(tmp_path: Path) -> None:
    reports = fx.REPORTS.replace("{{ metrics.buyers }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    project = crmetrics.load(fx.build(tmp_path, reports=reports))
    with pytest.raises(RenderError, match=r"unsafe|narrative"):
        build_document(project, "review")
    project.close()


TREND_REPORT = """
reports:
  trend:
    title: Trend
    parameters:
      period: {start: "%s", end: "%s"}
      grain: %s
    sections:
      - type: kpis
        title: KPIs
        metrics: [revenue, order_count]
        trend: %d
"""


def trend(tmp_path: Path, start: str, end: str, grain: str, points: int, extra: str = "") -> dict:
    fx.build(tmp_path, TREND_REPORT % (start, end, grain, points), extra)
    with crmetrics.load(tmp_path / "crmetrics.yml") as project:
        tiles = section(build_document(project, "trend"), "KPIs")["tiles"]
    return {t["metric"]: dict(zip(t["spark_periods"], t["spark"], strict=True)) for t in tiles}


def test_kpi_trend_shows_periods_without_orders_as_zero(tmp_path: Path) -> None:
    months = [dt.date(2024, m, 1) for m in range(1, 13)]
    revenue = {m.isoformat(): 0.0 for m in months}
    for _, _, at, amount, _ in fx.ORDERS:
        if at.year == 2024:
            revenue[at.date().replace(day=1).isoformat()] += amount or 0
    assert trend(tmp_path, "2024-01-01", "2024-12-31", "month", 12)["revenue"] == pytest.approx(revenue)
    assert revenue["2024-05-01"] == 0  # a month with no orders is a point of the line, not skipped


def test_kpi_trend_weeks_start_where_the_projects_weeks_start(tmp_path: Path) -> None:
    # Saturday 6 July 2024 ends the period; Sunday weeks: 16 June, 23 June and 30 June (which holds the orders of
    # Sunday 30 June and Thursday 4 July, the latter of an unknown customer)
    got = trend(tmp_path, "2024-06-01", "2024-07-06", "week", 3, "settings: {week_start: sunday}\n")
    assert got["order_count"] == {"2024-06-16": 0, "2024-06-23": 0, "2024-06-30": 2}
    assert got["revenue"] == pytest.approx({"2024-06-16": 0, "2024-06-23": 0, "2024-06-30": 75.5 + 30.0})


def test_a_failing_section_is_named_in_the_error(tmp_path: Path) -> None:
    """Tickets cannot reach orders: the report stops, and says which of its sections could not be built."""
    fx.build(
        tmp_path,
        TREND_REPORT % ("2024-01-01", "2024-12-31", "month", 3)
        + "      - {type: kpis, title: Service, metrics: [tickets]}\n",
    )
    with crmetrics.load(tmp_path / "crmetrics.yml") as project:
        params = resolve_params(project.model.reports["trend"]["parameters"], where="orders.channel = 'online'")
        with pytest.raises(
            QueryError, match=r"^CRM300 section 2 \(kpis 'Service'\): 'orders.channel' for a measure of tickets"
        ):
            build_document(project, "trend", params)
        document = build_document(project, "trend", params, keep_going=True)
    [warning] = document["warnings"]
    assert warning.startswith("section 2 (kpis 'Service'): CRM300")
