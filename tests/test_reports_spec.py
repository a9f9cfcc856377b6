"""Report definitions are validated at load time with file:line:column, like the rest of the project."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import crmetrics
from crmetrics.errors import ConfigError
from crmetrics.reports.spec import REPORT
from tests import reports_fixture as fx


def issues(tmp_path: Path, reports: str) -> list[str]:
    path = fx.build(tmp_path, reports=reports)
    with pytest.raises(ConfigError) as info:
        crmetrics.load(path)
    return [str(i) for i in info.value.issues]


def line_of(tmp_path: Path, needle: str) -> int:
    lines = (tmp_path / "crmetrics.yml").read_text(encoding="utf-8").splitlines()
    return next(n for n, text in enumerate(lines, start=1) if needle in text)


def test_unknown_section_type_points_at_it_with_a_suggestion(tmp_path: Path) -> None:
    found = issues(
        tmp_path, "reports:\n  r:\n    title: R\n    sections:\n      - type: tabel\n        metrics: revenue\n"
    )
    assert len(found) == 1
    assert re.search(
        rf"crmetrics.yml:{line_of(tmp_path, 'type: tabel')}:\d+: CRM801 .*did you mean 'table'", found[0], re.I
    )


def test_every_wrong_name_is_reported_at_once(tmp_path: Path) -> None:
    reports = """
reports:
  r:
    title: R
    parameters: {segments: [nort], period: {start: "2024-01-01", end: "2023-01-01"}}
    sections:
      - {type: kpis, metrics: [revenu, aov]}
      - {type: table, metrics: [revenue], by: [customers.regio], order_by: [-nope]}
      - {type: chart, chart: heatmap, metrics: [revenue], by: [customers.region]}
      - {type: analysis, analysis: missing}
      - {type: drilldown, entity: order, columns: [orders.amount]}
      - {type: drilldown, entity: orders, columns: [orders.amount], limit: 5000}
      - {type: chart, chart: pie, metrics: [revenue]}
"""
    found = "\n".join(issues(tmp_path, reports))
    assert "CRM802 unknown segment 'nort'" in found
    assert "CRM805 the period ends (2023-01-01) before it starts (2024-01-01)" in found
    assert "CRM802 unknown metric 'revenu'" in found
    assert "customers.regio" in found
    assert "CRM804 order_by 'nope' is not a column" in found
    assert "CRM806 a heatmap chart needs 2 `by` (x, y) and 1 metric" in found
    assert "CRM802 unknown analysis 'missing'" in found
    assert "CRM802 unknown entity 'order'" in found
    assert "5000 is outside [1, 1000]" in found
    assert "'pie' is not one of: line, bar, stacked_bar, heatmap, scatter, funnel" in found
    line = line_of(tmp_path, "revenu, aov")
    assert f"crmetrics.yml:{line}:" in found


def test_missing_title_and_sections(tmp_path: Path) -> None:
    found = "\n".join(issues(tmp_path, "reports:\n  r: {description: nothing}\n"))
    assert "missing required key 'title'" in found and "missing required key 'sections'" in found


def test_bad_dates_are_config_errors(tmp_path: Path) -> None:
    reports = "reports:\n  r:\n    title: R\n    parameters: {period: {start: 2024-13-01, end: 2024-12-31}}\n"
    reports += "    sections: [{type: text, text: hi}]\n"
    assert any("'2024-13-01' is not a date" in i for i in issues(tmp_path, reports))


def test_the_report_schema_has_a_json_schema() -> None:
    schema = REPORT.json()
    section = schema["properties"]["sections"]["items"]
    kinds = {option["properties"]["type"]["const"] for option in section["oneOf"]}
    assert kinds == {"kpis", "table", "chart", "analysis", "analyses", "text", "drilldown"}
