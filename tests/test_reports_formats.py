"""Report formats (html, md, json, csv), the sandboxed templates, project overrides, and the chart renderers."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import crmetrics
from crmetrics.errors import PluginError, ReferenceNotFound, RenderError
from crmetrics.hookspecs import hookimpl
from crmetrics.plugins import get_plugin_manager
from crmetrics.reports import ReportFormat, build_document, render_report, report_format
from crmetrics.reports.base import write_output
from crmetrics.reports.charts import to_svg
from crmetrics.reports.charts.svg import render_svg
from crmetrics.reports.charts.vega import chart_spec
from crmetrics.reports.render import render_document
from tests import reports_fixture as fx


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("formats")
    project = crmetrics.load(fx.build(root))
    yield project
    project.close()


@pytest.fixture(scope="module")
def document(project) -> dict:
    return build_document(project, "review")


def render(project, document: dict, name: str, **options) -> object:
    return render_document(document, report_format(project, name), project.model.root, {"charts": "builtin", **options})


def test_builtin_formats_register_through_the_hook(project) -> None:
    registry = get_plugin_manager(entry_points_too=False)[1]
    assert {"html", "md", "json", "csv"} <= set(registry.of("report format"))
    assert registry.owners[("report format", "html")] == "crmetrics.reports.builtin"
    with pytest.raises(ReferenceNotFound, match="unknown report format 'pdf'"):
        report_format(project, "pdf")


def test_a_plugin_format_that_is_not_installed_says_how_to_install_it() -> None:
    class Bare:  # a project whose plugins are the built-in ones only, as without crmetrics-xlsx installed
        plugins = get_plugin_manager(entry_points_too=False)[1]

    with pytest.raises(ReferenceNotFound) as error:
        report_format(Bare(), "xlsx")  # type: ignore[arg-type]
    text = str(error.value)
    assert text.startswith("CRM200 unknown report format 'xlsx'")
    assert "pip install crmetrics-xlsx" in text and "pip install -e plugins/crmetrics-xlsx" in text
    with pytest.raises(ReferenceNotFound) as error:
        report_format(Bare(), "pdf")  # type: ignore[arg-type]
    assert "pip install" not in str(error.value)


def test_html_is_self_contained_accessible_and_escaped(project, document: dict) -> None:
    html = render(project, document, "html")
    assert isinstance(html, str) and html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing loaded from the network
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Review &lt;2024&gt;" in html  # the title is escaped too
    assert '<th scope="col"' in html and '<caption class="visually-hidden">By region</caption>' in html
    svgs = re.findall(r"<svg xmlns=.*?</svg>", html, re.S)
    assert len(svgs) == 2
    for svg in svgs:
        ET.fromstring(svg)  # well-formed
        assert 'role="img"' in svg and ("<rect" in svg or "<path" in svg)
    assert "@media print" in html and "<script>" not in html.replace("&lt;script&gt;", "")


def test_interactive_mode_adds_inline_script_only(project, document: dict) -> None:
    html = render(project, document, "html", interactive=True)
    assert "<script>" in html and "aria-sort" in html and "<script src" not in html


def test_json_has_every_table_as_row_objects(project, document: dict) -> None:
    data = json.loads(render(project, document, "json"))
    table = next(s for s in data["sections"] if s["title"] == "By region")["table"]
    assert table["rows"][0] == {"customers.region": "north", "revenue": 325.25, "order_count": 2}
    assert table["rows"][-1]["customers.region"] is None
    drill = next(s for s in data["sections"] if s["type"] == "drilldown")
    assert drill["table"]["rows"][0]["orders.ordered_at"] == "2024-01-01"  # a time dimension is at day grain
    assert data["parameters"]["period"]["start"] == "2024-01-01"


def test_csv_is_a_folder_of_tables(project, document: dict, tmp_path: Path) -> None:
    files = render(project, document, "csv")
    assert isinstance(files, dict) and "index.csv" in files
    region = next(v for k, v in files.items() if "by-region" in k)
    rows = list(csv.reader(io.StringIO(region)))
    assert rows[0] == ["customers.region", "revenue", "order_count"] and rows[-1][0] == ""
    kpis = list(csv.reader(io.StringIO(next(v for k, v in files.items() if "kpis" in k))))
    assert kpis[0] == ["metric", "value", "previous", "delta", "change"]
    revenue = next(r for r in kpis if r[0] == "revenue")  # 630.75 in 2024 against 150.00 in 2023
    assert [float(v) for v in revenue[1:]] == pytest.approx([630.75, 150.0, 480.75, 480.75 / 150.0])
    out = write_output(files, tmp_path / "out")
    assert (out / "index.csv").is_file() and len(list(out.glob("*.csv"))) == len(files)


def test_markdown_has_tables_and_escapes_pipes(project, document: dict) -> None:
    md = render(project, document, "md")
    assert md.startswith("# Review <2024>")
    assert "| Revenue | 630.75 | 150.00 |" in md
    assert "| north | 325.25 | 2 |" in md


def test_project_templates_override_the_builtin_ones(tmp_path: Path) -> None:
    path = fx.build(tmp_path)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "report.md.j2").write_text("custom {{ report.title }} {{ report.sections | length }}\n")
    project = crmetrics.load(path)
    out = render_report(project, "review", "md", tmp_path / "r.md")
    assert out.read_text() == "custom Review <2024> 6\n"
    (tmp_path / "templates" / "report.md.j2").write_text("{{ report.nope }}")
    crmetrics.reports.render._environment.cache_clear()
    with pytest.raises(RenderError, match=r"format 'md': template report.md.j2"):
        render_report(project, "review", "md", tmp_path / "r.md")
    (tmp_path / "templates" / "report.md.j2").write_text("{{ report.__class__.__mro__ }}")
    crmetrics.reports.render._environment.cache_clear()
    with pytest.raises(RenderError):
        render_report(project, "review", "md", tmp_path / "r.md")
    project.close()


class _TxtPlugin:
    @hookimpl
    def register_report_formats(self, register) -> None:  # type: ignore[no-untyped-def]
        register(ReportFormat("txt", "plain text", ".txt", lambda request: request.document["title"] + "\n"))


class _Clash:
    @hookimpl
    def register_report_formats(self, register) -> None:  # type: ignore[no-untyped-def]
        register(ReportFormat("html", "mine", ".html", lambda request: ""))


def test_a_third_party_format_is_used_like_a_builtin(tmp_path: Path) -> None:
    project = crmetrics.load(fx.build(tmp_path), plugins=[_TxtPlugin()])
    out = render_report(project, "review", "txt", tmp_path / "r.txt")
    assert out.read_text() == "Review <2024>\n"
    with pytest.raises(PluginError, match="report format 'html' is registered by both"):
        get_plugin_manager(entry_points_too=False, strict=True, extra=[_Clash()])


def test_write_output_refuses_paths_outside_the_folder(tmp_path: Path) -> None:
    with pytest.raises(RenderError):
        write_output({"../escape.csv": "x"}, tmp_path / "out")


TABLE = {
    "columns": [
        {"name": "customers.region", "label": "Region", "format": "number", "numeric": False},
        {"name": "orders.channel", "label": "Channel", "format": "number", "numeric": False},
        {"name": "revenue", "label": "Revenue", "format": "currency", "numeric": True},
        {"name": "order_count", "label": "Orders", "format": "integer", "numeric": True},
    ],
    "rows": [
        ["north", "online", 10.0, 2],
        ["south", "store", 5.0, 1],
        [None, "online", None, 0],
        ["旧", "store", 7, 3],
    ],
}


@pytest.mark.parametrize(
    ("kind", "by", "metrics"),
    [
        ("bar", ["customers.region"], ["revenue"]),
        ("bar", ["customers.region"], ["revenue", "order_count"]),
        ("line", ["customers.region"], ["revenue"]),
        ("stacked_bar", ["customers.region", "orders.channel"], ["revenue"]),
        ("heatmap", ["customers.region", "orders.channel"], ["revenue"]),
        ("scatter", ["customers.region"], ["revenue", "order_count"]),
        ("funnel", [], ["order_count", "revenue"]),
    ],
)
def test_builtin_renderer_draws_every_chart_kind(kind: str, by: list[str], metrics: list[str]) -> None:
    cols = [c for c in TABLE["columns"] if c["name"] in by + metrics]
    index = [TABLE["columns"].index(c) for c in cols]
    table = {"columns": cols, "rows": [[row[i] for i in index] for row in TABLE["rows"]]}
    svg = render_svg(chart_spec(kind, table, by, metrics), "t")
    assert svg is not None
    root = ET.fromstring(svg)
    marks = [e for e in root.iter() if e.tag.endswith(("rect", "circle", "path"))]
    assert marks, kind
    assert "—" in svg or kind in ("funnel", "scatter")  # NULL categories are shown, not dropped


def test_builtin_renderer_bar_heights_follow_the_data() -> None:
    spec = {
        "data": {"values": [{"k": "a", "v": 10}, {"k": "b", "v": 5}, {"k": "c", "v": 0}]},
        "mark": "bar",
        "encoding": {"x": {"field": "k", "type": "nominal", "sort": None}, "y": {"field": "v", "type": "quantitative"}},
    }
    root = ET.fromstring(render_svg(spec))
    heights = [float(e.get("height")) for e in root.iter() if e.tag.endswith("rect") and e.get("rx") == "2"]
    assert heights[0] == pytest.approx(2 * heights[1]) and heights[2] == 0


def test_builtin_renderer_refuses_what_it_cannot_draw() -> None:
    assert render_svg({"facet": {"row": {"field": "a"}}, "spec": {}}) is None
    assert render_svg({"mark": "geoshape", "data": {"values": []}}) is None
    assert render_svg({"mark": "bar", "transform": [{"filter": "datum.a > 1"}], "data": {"values": []}}) is None


def test_vl_convert_renders_the_same_specs_when_installed() -> None:
    pytest.importorskip("vl_convert")
    spec = chart_spec(
        "bar", {"columns": TABLE["columns"][::2], "rows": [["a", 1.0], ["b", 2.0]]}, ["customers.region"], ["revenue"]
    )
    svg = to_svg(spec, "t", "vl-convert")
    assert svg and 'role="img"' in svg and "viewBox" in svg


def test_cohort_heatmap_reads_as_months_in_both_renderers() -> None:
    """Vega cannot apply a time `format` to ordinal ISO dates (it refused the whole chart); the axis must still work."""
    from crmetrics.analysis.cohort import _heatmap

    values = [
        {"cohort": "2024-01-01", "period": 0, "retention_rate": 1.0},
        {"cohort": "2024-02-01", "period": 1, "retention_rate": 0.5},
    ]
    spec = {**_heatmap(), "data": {"values": values}}
    renderers = ["builtin"]
    try:
        import vl_convert  # noqa: F401

        renderers.append("vl-convert")
    except ImportError:
        pass
    for renderer in renderers:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a renderer falling back is a failure here
            svg = to_svg(spec, "t", renderer)
        texts = re.findall(r">([^<>]+)</text>", svg or "")
        assert "Jan 2024" in texts and "Feb 2024" in texts and "2024-01-01" not in texts, renderer


def test_demo_report_names_are_unique_files(project, document: dict) -> None:
    from crmetrics.reports.builtin import report_tables

    names = [name for name, _ in report_tables(document)]
    assert len(names) == len(set(names))


def test_builtin_renderer_bins_a_histogram() -> None:
    values = [{"v": v} for v in (1, 2, 3, 11, 12, 25, None)]
    spec = {
        "data": {"values": values},
        "mark": "bar",
        "encoding": {
            "x": {"field": "v", "type": "quantitative", "bin": {"maxbins": 3}},
            "y": {"aggregate": "count", "type": "quantitative"},
        },
    }
    root = ET.fromstring(render_svg(spec))
    bars = [e for e in root.iter() if e.tag.endswith("rect") and e.get("rx") == "2"]
    heights = sorted(float(b.get("height")) for b in bars)
    assert len(bars) == 3 and heights[2] == pytest.approx(3 * heights[0], abs=0.5)  # 3 in 0-10, 2 in 10-20, 1 in 20-30


def test_small_shares_booleans_and_percent_ticks_are_readable() -> None:
    from crmetrics.reports.charts.scales import axis_label
    from crmetrics.reports.formatting import fmt

    assert fmt(0.0044, "percent") == "0.44%"  # not 0.4% on every basket rule
    assert fmt(0.25, "percent") == "25.0%" and fmt(0, "percent") == "0.0%" and fmt(-0.005, "percent") == "-0.50%"
    assert fmt(True) == "yes" and fmt(False, "number") == "no"
    assert (axis_label(0.005, ".0%"), axis_label(0.02, ".0%"), axis_label(0.07, "%")) == ("0.5%", "2%", "7%")


def test_analysis_charts_get_column_labels_and_percent_axes() -> None:
    from crmetrics.reports.charts.vega import label_channels

    spec = {
        "data": {"name": "churn"},
        "layer": [{"mark": "line", "encoding": {"x": {"field": "period"}, "y": {"field": "churn_rate"}}}],
        "encoding": {"color": {"field": "retention_rate", "title": "Kept"}},
    }
    columns = {
        "churn": {
            "period": {"label": "Period", "format": "date"},
            "churn_rate": {"label": "Churn rate", "format": "percent"},
            "retention_rate": {"label": "Retention rate", "format": "percent"},
        }
    }
    out = label_channels(spec, columns)
    y = out["layer"][0]["encoding"]["y"]
    assert y == {"field": "churn_rate", "title": "Churn rate", "axis": {"format": "%"}}
    assert out["layer"][0]["encoding"]["x"]["title"] == "Period"
    assert out["encoding"]["color"] == {"field": "retention_rate", "title": "Kept", "legend": {"format": "%"}}
    assert "title" not in spec["layer"][0]["encoding"]["y"]  # the analysis's own spec is left alone


def test_currency_keeps_cents_and_axis_ticks_share_one_style() -> None:
    from crmetrics.reports.charts.scales import axis_label
    from crmetrics.reports.formatting import short_number

    assert short_number(56, "currency") == "56.00" and short_number(55.364, "currency") == "55.36"
    assert short_number(1_250_000, "currency") == "1.2M" and short_number(56, "integer") == "56"
    assert [axis_label(v, None) for v in (0, 0.5, 1, 1.5, 5000, 12500)] == ["0", "0.5", "1", "1.5", "5k", "12.5k"]


def test_ordinal_date_axis_with_a_time_format_reads_as_months() -> None:
    spec = {
        "data": {"values": [{"cohort": "2024-01-01", "period": 0, "r": 1.0}, {"cohort": "2024-02-01", "period": 0}]},
        "mark": "rect",
        "encoding": {
            "x": {"field": "period", "type": "ordinal"},
            "y": {"field": "cohort", "type": "ordinal", "axis": {"format": "%b %Y"}},
            "color": {"field": "r", "type": "quantitative", "legend": {"format": "%"}},
        },
    }
    texts = re.findall(r">([^<>]+)</text>", render_svg(spec, "t") or "")
    assert "Jan 2024" in texts and "Feb 2024" in texts and "2024-01-01" not in texts
    assert "100%" in texts  # the colour legend in its format


def test_a_number_metric_column_keeps_one_style(project) -> None:
    from crmetrics.reports.tables import column_meta

    metric = next(n for n, m in project.model.metrics.items() if m.format == "number")
    assert column_meta(project.model, metric, [30.0, 27.36, None])["format"] == "decimal"
    assert column_meta(project.model, metric, [30, 31])["format"] == "number"


def test_scores_show_in_points_and_change_in_points() -> None:
    from crmetrics.reports.formatting import change_text, fmt, short_number

    assert fmt(17.004, "score") == "17.0" and fmt(-100, "score") == "-100.0" and short_number(-4.96, "score") == "-5.0"
    # an NPS from 17.00 to 20.03: up 3.0 points, not "+17.8%"; from -5 to 5 is not a change of -200%
    assert change_text({"format": "score", "delta": 20.03 - 17.0, "change": 0.178}) == "+3.0 pts"
    assert change_text({"format": "score", "delta": 10.0, "change": -2.0}) == "+10.0 pts"
    assert change_text({"format": "score", "delta": None, "change": None}) == "—"
    assert change_text({"format": "percent", "delta": 0.004, "change": 0.1}) == "+0.4 pp"
    assert change_text({"format": "number", "delta": 5, "change": 0.121}) == "+12.1%"
