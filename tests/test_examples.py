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

# the standard definitions of the service desk's SLA, written by hand: a ticket's resolution SLA is due once it is
# resolved or its deadline has passed, and it is breached when it was resolved late or is still open past it
DESK_NOW = "CAST(current_timestamp AS TIMESTAMP)"
DESK_LATE = f"date_diff('minute', opened_at, COALESCE(resolved_at, {DESK_NOW})) > 60 * sla_hours"
DESK_DUE = f"resolved_at IS NOT NULL OR date_diff('minute', opened_at, {DESK_NOW}) > 60 * sla_hours"


_RUNS: dict[str, Path] = {}


def _run(name: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder an example's documented command wrote its data and report to (each example runs once)."""
    if name not in _RUNS:
        out = tmp_path_factory.mktemp(name)
        command = [sys.executable, str(EXAMPLES / name / "run.py"), "--out", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(out / "report.html")
        _RUNS[name] = out
    return _RUNS[name]


@pytest.fixture(scope="module", params=sorted(CASES))
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    return request.param, _run(request.param, tmp_path_factory)


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
            "SELECT COUNT(*) FILTER (WHERE stage = 'won'), COUNT(*) FILTER (WHERE stage IN ('won', 'lost')) "
            "FROM opportunities WHERE created_at >= '2024-01-01' AND created_at < '2025-01-01'"
        ).fetchone()
        assert tiles["win_rate"] == pytest.approx(won / closed)
    else:
        con = duckdb.connect(str(out / "desk.duckdb"), read_only=True)
        tickets, breaches, due = con.execute(
            f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {DESK_LATE}), COUNT(*) FILTER (WHERE {DESK_DUE}) "
            "FROM tickets WHERE opened_at >= '2024-10-01' AND opened_at < '2025-01-01'"
        ).fetchone()
        assert tiles["tickets"] == tickets and tiles["sla_breach_rate"] == pytest.approx(breaches / due)
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


def _values(out: Path, metrics: list[str], start: str, end: str, by: list[str] | None = None) -> dict:
    """The project's figures for the period: {metric: value}, or {(group...): {metric: value}} with `by`."""
    project = crmetrics.load(out / "crmetrics.yml")
    try:
        result = project.query(metrics, by=by, start=start, end=end)
    finally:
        project.close()
    if not by:
        return result.records()[0]
    return {tuple(r[b] for b in by): {m: r[m] for m in metrics} for r in result.records()}


def test_pipeline_kpis_follow_the_standard_definitions(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Closed is a stage (won or lost), not a close date; won revenue counts on the close date, not the creation."""
    out = _run("b2b-pipeline", tmp_path_factory)
    con = duckdb.connect(str(out / "pipeline.duckdb"), read_only=True)
    # the edge cases are in the data: won and lost deals without a close date, deals created in 2023 and won in 2024
    undated_won, undated_lost, crossing = con.execute(
        "SELECT COUNT(*) FILTER (WHERE stage = 'won' AND closed_at IS NULL), "
        "COUNT(*) FILTER (WHERE stage = 'lost' AND closed_at IS NULL), "
        "COUNT(*) FILTER (WHERE stage = 'won' AND created_at < '2024-01-01' AND closed_at >= '2024-01-01') "
        "FROM opportunities"
    ).fetchone()
    assert undated_won > 0 and undated_lost > 0 and crossing > 0
    created = "created_at >= '2024-01-01' AND created_at < '2025-01-01'"
    won, closed, open_amount = con.execute(
        "SELECT COUNT(*) FILTER (WHERE stage = 'won'), COUNT(*) FILTER (WHERE stage IN ('won', 'lost')), "
        f"SUM(amount) FILTER (WHERE stage NOT IN ('won', 'lost')) FROM opportunities WHERE {created}"
    ).fetchone()
    won_amount, won_closed = con.execute(
        "SELECT SUM(amount), COUNT(*) FROM opportunities "
        "WHERE stage = 'won' AND closed_at >= '2024-01-01' AND closed_at < '2025-01-01'"
    ).fetchone()
    (target,) = con.execute("SELECT SUM(target) FROM targets WHERE year(month) = 2024").fetchone()
    by_team = dict(
        con.execute(
            "SELECT r.team, SUM(o.amount) FILTER (WHERE o.stage = 'won' AND year(o.closed_at) = 2024) "
            "/ (SELECT SUM(t.target) FROM targets t JOIN reps r2 USING (rep_id) "
            "   WHERE r2.team = r.team AND year(t.month) = 2024) "
            "FROM opportunities o JOIN reps r USING (rep_id) GROUP BY r.team"
        ).fetchall()
    )
    by_month = dict(
        con.execute(
            "SELECT month(closed_at), SUM(amount) FROM opportunities "
            "WHERE stage = 'won' AND year(closed_at) = 2024 GROUP BY 1"
        ).fetchall()
    )
    con.close()
    metrics = ["closed_deals", "win_rate", "open_pipeline", "won_amount", "avg_deal_size", "target_attainment"]
    values = _values(out, metrics, "2024-01-01", "2024-12-31")
    assert values["closed_deals"] == closed
    assert values["win_rate"] == pytest.approx(won / closed)
    assert values["open_pipeline"] == pytest.approx(float(open_amount))
    assert values["won_amount"] == pytest.approx(float(won_amount))
    assert values["avg_deal_size"] == pytest.approx(float(won_amount) / won_closed)
    assert values["target_attainment"] == pytest.approx(float(won_amount) / float(target))
    teams = _values(out, ["target_attainment"], "2024-01-01", "2024-12-31", by=["reps.team"])
    assert {k[0]: v["target_attainment"] for k, v in teams.items()} == pytest.approx(
        {k: float(v) for k, v in by_team.items()}
    )
    months = _values(out, ["won_amount"], "2024-01-01", "2024-12-31", by=["metric_time:month"])
    assert {k[0].month: v["won_amount"] for k, v in months.items()} == pytest.approx(
        {k: float(v) for k, v in by_month.items()}
    )


def test_retail_kpis_follow_the_standard_definitions(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Orders per buyer (purchase frequency) is over the orders of known customers: a guest order is no buyer's."""
    out = _run("retail-ecommerce", tmp_path_factory)
    con = duckdb.connect()
    orders = f"read_csv_auto('{out / 'data' / 'orders.csv'}')"
    guests, buyer_orders, buyers = con.execute(
        "SELECT COUNT(*) FILTER (WHERE customer_id IS NULL), COUNT(customer_id), COUNT(DISTINCT customer_id) "
        f"FROM {orders} WHERE ordered_at >= '2024-01-01' AND ordered_at < '2025-01-01'"
    ).fetchone()
    con.close()
    assert guests > 0  # the edge case is in the data
    values = _values(out, ["buyers", "orders_per_buyer"], "2024-01-01", "2024-12-31")
    assert values["buyers"] == buyers
    assert values["orders_per_buyer"] == pytest.approx(buyer_orders / buyers)


def test_service_desk_kpis_follow_the_standard_definitions(tmp_path_factory: pytest.TempPathFactory) -> None:
    """CSAT is the share of 4-5 among the answers from 1 to 5 (a blank or out-of-scale answer is none); an open
    ticket past its SLA breached it; response and resolution times are averages over the tickets that have them."""
    out = _run("service-desk", tmp_path_factory)
    con = duckdb.connect(str(out / "desk.duckdb"), read_only=True)
    answered = "answered_at >= '2024-10-01' AND answered_at < '2025-01-01'"
    blank, out_of_scale, responses, satisfied, avg_score = con.execute(
        "SELECT COUNT(*) FILTER (WHERE score IS NULL), COUNT(*) FILTER (WHERE score NOT BETWEEN 1 AND 5), "
        "COUNT(*) FILTER (WHERE score IN (1, 2, 3, 4, 5)), COUNT(*) FILTER (WHERE score IN (4, 5)), "
        f"AVG(score) FILTER (WHERE score IN (1, 2, 3, 4, 5)) FROM surveys WHERE {answered}"
    ).fetchone()
    opened = "opened_at >= '2024-10-01' AND opened_at < '2025-01-01'"
    overdue, breaches, due, first_response, resolution = con.execute(
        f"SELECT COUNT(*) FILTER (WHERE resolved_at IS NULL AND {DESK_LATE}), COUNT(*) FILTER (WHERE {DESK_LATE}), "
        f"COUNT(*) FILTER (WHERE {DESK_DUE}), AVG(date_diff('minute', opened_at, first_response_at)), "
        f"AVG(date_diff('minute', opened_at, resolved_at) / 60.0) FROM tickets WHERE {opened}"
    ).fetchone()
    con.close()
    assert blank > 0 and out_of_scale > 0 and overdue > 0  # the edge cases are in the data
    metrics = [
        "survey_responses",
        "csat",
        "avg_csat_score",
        "sla_breaches",
        "sla_breach_rate",
        "sla_compliance",
        "first_response_minutes",
        "resolution_hours",
    ]
    values = _values(out, metrics, "2024-10-01", "2024-12-31")
    assert values["survey_responses"] == responses
    assert values["csat"] == pytest.approx(satisfied / responses)
    assert values["avg_csat_score"] == pytest.approx(avg_score)
    assert values["sla_breaches"] == breaches
    assert values["sla_breach_rate"] == pytest.approx(breaches / due)
    assert values["sla_compliance"] == pytest.approx(1 - breaches / due)
    assert values["first_response_minutes"] == pytest.approx(first_response)
    assert values["resolution_hours"] == pytest.approx(resolution)
