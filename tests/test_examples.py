"""The examples run with their one documented command, and their reports hold the numbers their data says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import crmetrics
from crmetrics.reports import build_document

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CASES = {
    "retail-ecommerce": "shop",
    "b2b-pipeline": "pipeline_review",
    "service-desk": "desk",
}


@pytest.fixture(scope="module", params=sorted(CASES))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    name = request.param
    out = tmp_path_factory.mktemp(name)
    command = [sys.executable, str(EXAMPLES / name / "run.py"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out / "report.html")
    return name, out


def test_report_is_complete(example: tuple[str, Path]) -> None:
    _, out = example
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "could not be built" not in html
    assert len(re.findall(r"<svg ", html)) >= 4
    project = crmetrics.load(out / "crmetrics.yml")
    for analysis in project.model.analyses:
        assert f"<code>{analysis}</code>" in html
    project.close()


def test_headline_numbers_match_sql(example: tuple[str, Path]) -> None:
    name, out = example
    project = crmetrics.load(out / "crmetrics.yml")
    tiles = {t["metric"]: t["value"] for t in build_document(project, CASES[name])["sections"][0]["tiles"]}
    project.close()
    if name == "retail-ecommerce":
        con = duckdb.connect()
        orders = f"read_csv_auto('{out / 'data' / 'orders.csv'}')"
        revenue, count = con.execute(
            f"SELECT SUM(amount), COUNT(*) FROM {orders} WHERE ordered_at >= '2024-01-01' AND ordered_at < '2025-01-01'"
        ).fetchone()
        assert tiles["revenue"] == pytest.approx(float(revenue)) and tiles["orders"] == count
    elif name == "b2b-pipeline":
        con = duckdb.connect(str(out / "pipeline.duckdb"), read_only=True)
        won, closed = con.execute(
            "SELECT COUNT(*) FILTER (WHERE stage = 'won'), COUNT(closed_at) FROM opportunities "
            "WHERE created_at >= '2024-01-01' AND created_at < '2025-01-01'"
        ).fetchone()
        assert tiles["win_rate"] == pytest.approx(won / closed)
    else:
        con = duckdb.connect(str(out / "desk.duckdb"), read_only=True)
        tickets, breaches, resolved = con.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE date_diff('minute', opened_at, resolved_at) > 60 * sla_hours), "
            "COUNT(resolved_at) FROM tickets WHERE opened_at >= '2024-10-01' AND opened_at < '2025-01-01'"
        ).fetchone()
        assert tiles["tickets"] == tickets and tiles["sla_breach_rate"] == pytest.approx(breaches / resolved)
    con.close()


def test_readmes_document_the_command() -> None:
    index = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in CASES:
        assert f"python examples/{name}/run.py" in index
        assert f"python examples/{name}/run.py" in (EXAMPLES / name / "README.md").read_text(encoding="utf-8")


def test_the_csv_json_formats_work_on_an_example(example: tuple[str, Path], capsys: pytest.CaptureFixture) -> None:
    from crmetrics.cli import main

    name, out = example
    assert main(["report", CASES[name], "-p", str(out / "crmetrics.yml"), "-f", "json", "-o", str(out / "r.json")]) == 0
    data = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert data["name"] == CASES[name] and data["warnings"] == []
