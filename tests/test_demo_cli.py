"""`crmetrics demo` and `crmetrics report` end to end, through the CLI entry point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import crmetrics
from crmetrics.cli import main
from crmetrics.demo.writer import LIBRARY, usable_analyses
from crmetrics.plugins import Registry, get_plugin_manager


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    out = tmp_path_factory.mktemp("demo") / "crm demo"  # a space in the path, as on many laptops
    capture = pytest.MonkeyPatch()
    import io
    import sys

    stdout, stderr = io.StringIO(), io.StringIO()
    capture.setattr(sys, "stdout", stdout)
    capture.setattr(sys, "stderr", stderr)
    try:
        code = main(["demo", "--out", str(out), "--customers", "400", "--charts", "builtin"])
    finally:
        capture.undo()
    assert code == 0, stderr.getvalue()
    return out, stdout.getvalue(), stderr.getvalue()


def test_demo_writes_database_project_and_report(demo: tuple[Path, str, str]) -> None:
    out, stdout, stderr = demo
    assert stdout.strip() == str((out / "report.html").resolve())
    for name in ("demo.duckdb", "crmetrics.yml", "model.yml", "analyses.yml", "reports.yml"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "metric_definitions").glob("*.yml")) == sorted(
        p.name for p in LIBRARY.glob("*.yml")
    )
    assert "100% account_balances" in stderr and "Revenue" in stderr and "Open the report" in stderr


def test_demo_report_has_every_installed_analysis_and_all_chart_kinds(demo: tuple[Path, str, str]) -> None:
    out, _, _ = demo
    html = (out / "report.html").read_text(encoding="utf-8")
    project = crmetrics.load(out / "crmetrics.yml")
    installed = set(project.plugins.of("analysis method"))
    declared = {a.method for a in project.model.analyses.values()}
    assert declared <= installed
    for name in project.model.analyses:
        assert f"<code>{name}</code>" in html, name
    assert "could not be built" not in html
    for title in (
        "Headline KPIs",
        "Revenue by month",
        "Product revenue by category and region",
        "Pipeline stage funnel",
    ):
        assert title in html
    assert len(re.findall(r"<svg xmlns=", html)) >= 7
    assert "Largest orders of the period" in html and "matching records" in html
    project.close()


def test_report_command_writes_each_format(demo: tuple[Path, str, str], capsys: pytest.CaptureFixture) -> None:
    out, _, _ = demo
    project_file = str(out / "crmetrics.yml")
    for fmt, name in (("md", "r.md"), ("json", "r.json"), ("csv", "tables")):
        code = main(
            [
                "report",
                "overview",
                "-p",
                project_file,
                "-f",
                fmt,
                "-o",
                str(out / name),
                "--period",
                "2024-07-01..2024-12-31",
                "--grain",
                "quarter",
            ]
        )
        assert code == 0, capsys.readouterr().err
    data = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert data["parameters"]["period"]["start"] == "2024-07-01"
    assert data["parameters"]["previous_period"]["start"] == "2024-01-01"
    assert data["parameters"]["grain"] == "quarter"
    assert (out / "tables" / "index.csv").is_file()
    assert (out / "r.md").read_text(encoding="utf-8").startswith("# CRM performance overview")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "nope"], "unknown report 'nope'"),
        (["report", "overview", "-f", "pdf"], "unknown report format 'pdf'"),
        (["report", "overview", "--period", "2024"], "START..END"),
        (["report", "overview", "--segment", "nope"], "unknown segment 'nope'"),
    ],
)
def test_report_user_errors_exit_2_without_traceback(
    demo: tuple[Path, str, str], capsys: pytest.CaptureFixture, argv: list[str], message: str
) -> None:
    out, _, _ = demo
    assert main([*argv, "-p", str(out / "crmetrics.yml"), "-o", str(out / "x.html")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_demo_rejects_a_bad_size(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["demo", "--out", str(tmp_path), "--customers", "0"]) == 2
    assert "--customers must be at least 1" in capsys.readouterr().err


def test_analyses_of_missing_methods_are_skipped_with_a_reason() -> None:
    reasons: dict[str, str] = {}
    kept = usable_analyses(Registry(), lambda name, why: reasons.__setitem__(name, why))
    assert kept == {} and reasons["customer_rfm"] == "method 'rfm' is not installed"
    registry = get_plugin_manager(entry_points_too=False)[1]
    kept = usable_analyses(registry, lambda name, why: reasons.__setitem__(name, why))
    assert set(kept) == {n for n, a in kept.items() if a["method"] in registry.of("analysis method")}
