"""`crmetrics demo` and `crmetrics report` end to end, through the CLI entry point."""

from __future__ import annotations

import json
import re
import shlex
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
    assert f"cd {shlex.quote(str(out))} && crmetrics query -m revenue" in stderr  # where to ask it questions


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
    if "nps" not in registry.of("analysis method"):  # a plugin of the repository: the reason says where it is
        assert reasons["nps_by_region"].endswith("(pip install plugins/crmetrics-nps, from the crmetrics repository)")
    assert all("plugin" not in analysis for analysis in kept.values())  # a note for the demo, not a parameter


@pytest.fixture(scope="module")
def overview(demo: tuple[Path, str, str]) -> dict:
    from crmetrics.reports import build_document

    project = crmetrics.load(demo[0] / "crmetrics.yml")
    try:
        return build_document(project, "overview")
    finally:
        project.close()


def _demo_sql(demo: tuple[Path, str, str], sql: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(str(demo[0] / "demo.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _analysis(document: dict, name: str) -> dict:
    return next(s for s in document["sections"] if s.get("analysis") == name)


def _columns(section: dict, table: str) -> dict[str, dict]:
    return {c["name"]: c for c in next(t for t in section["tables"] if t["name"] == table)["columns"]}


def test_analysis_columns_are_labelled_by_the_analysis_not_by_same_named_metrics(overview: dict) -> None:
    # the project has a metric `customers` labelled "New customers"; the analyses' count columns are not it
    columns = _columns(_analysis(overview, "new_vs_returning"), "periods")
    labels = [c["label"] for c in columns.values()]
    assert len(labels) == len(set(labels)), labels
    assert columns["customers"]["label"] == "Customers"
    assert columns["new_customers"]["label"] == "New customers"
    assert columns["returning_share"]["format"] == "percent"
    assert _columns(_analysis(overview, "signup_cohorts"), "retention")["customers"]["label"] == "Customers"
    summary = _columns(_analysis(overview, "customer_clv"), "summary")
    assert summary["customers"]["label"] == "Customers" and summary["aov"]["label"] == "AOV"
    assert _columns(_analysis(overview, "customer_clv"), "customers")["clv"]["label"] == "CLV"
    # shares are percentages and amounts currency wherever an analysis shows them
    assert _columns(_analysis(overview, "customer_rfm"), "segments")["share"]["format"] == "percent"
    pareto = _columns(_analysis(overview, "customer_pareto"), "items")
    assert pareto["share"]["format"] == pareto["cumulative_share"]["format"] == "percent"
    rules = _columns(_analysis(overview, "market_basket"), "rules")
    assert rules["support"]["format"] == rules["confidence"]["format"] == rules["leverage"]["format"] == "percent"
    assert _columns(_analysis(overview, "sales_pipeline"), "pipeline")["win_rate"]["format"] == "percent"
    assert _columns(_analysis(overview, "support_satisfaction"), "overall")["response_rate"]["format"] == "percent"


def test_pipeline_cycle_in_days_is_not_formatted_as_seconds(overview: dict) -> None:
    from crmetrics.reports.formatting import fmt

    figure = next(f for f in _analysis(overview, "sales_pipeline")["figures"] if f["name"] == "median_cycle_days")
    assert figure["value"] > 1  # whole days: the demo's deals take weeks
    assert fmt(figure["value"], figure["format"]) == f"{figure['value']:,.2f}"
    for section in overview["sections"]:
        for f in section.get("figures", []):
            assert not ("days" in f["label"] and f["format"] == "duration"), (section["title"], f["label"])


def test_data_quality_counts_only_declared_joins_as_orphans(demo: tuple[Path, str, str], overview: dict) -> None:
    section = _analysis(overview, "data_quality")
    rows = next(t for t in section["tables"] if t["name"] == "integrity")["rows"]
    assert {(r[0], r[1]) for r in rows} <= {
        ("customers", "sales_reps"),
        ("orders", "customers"),
        ("leads", "customers"),
        ("opportunities", "customers"),
        ("opportunities", "sales_reps"),
        ("opportunities", "products"),
        ("tickets", "customers"),
    }
    expected = 0
    for child, key, parent, parent_key in (
        ("customers", "owner_rep_id", "sales_reps", "rep_id"),
        ("orders", "customer_id", "customers", "customer_id"),
        ("leads", "customer_id", "customers", "customer_id"),
        ("opportunities", "customer_id", "customers", "customer_id"),
        ("opportunities", "owner_rep_id", "sales_reps", "rep_id"),
        ("opportunities", "product_id", "products", "product_id"),
        ("tickets", "customer_id", "customers", "customer_id"),
    ):
        sql = (
            f"SELECT count(*) FROM {child} c WHERE c.{key} IS NOT NULL"
            f" AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.{parent_key} = c.{key})"
        )
        expected += _demo_sql(demo, sql)[0][0]
    figure = next(f for f in section["figures"] if f["name"] == "orphans")
    assert 0 < figure["value"] == expected


def test_signup_cohorts_are_customers_by_sign_up_month(demo: tuple[Path, str, str], overview: dict) -> None:
    section = _analysis(overview, "signup_cohorts")
    members = next(f for f in section["figures"] if f["name"] == "members")["value"]
    # every customer with a sign-up date, whether it ordered or not; orders of unknown customers form no member
    assert (
        members
        == _demo_sql(demo, "SELECT count(DISTINCT customer_id) FROM customers WHERE signed_up_at IS NOT NULL")[0][0]
    )


def test_analyses_say_they_cover_all_the_data(overview: dict) -> None:
    for section in overview["sections"]:
        if section["type"] == "analysis":
            assert section["coverage"].startswith("All data, not only the report period (2024-01-01"), section["title"]
    kpis = next(s for s in overview["sections"] if s["type"] == "kpis")
    assert "coverage" not in kpis
    assert next(s for s in overview["sections"] if s["title"] == "Revenue by month")["coverage"]
    assert not next(s for s in overview["sections"] if s["title"] == "Revenue by region")["coverage"]


AGE_BAND = (
    "CASE WHEN age < 25 THEN '18-24' WHEN age < 35 THEN '25-34' WHEN age < 45 THEN '35-44' WHEN age < 55 THEN '45-54'"
    " WHEN age < 65 THEN '55-64' WHEN age >= 65 THEN '65+' END"
)


def test_profile_index_is_100_at_the_overall_level(demo: tuple[Path, str, str], overview: dict) -> None:
    section = _analysis(overview, "customer_profile")
    table = next(t for t in section["tables"] if t["name"] == "profile")
    names = [c["name"] for c in table["columns"]]
    got = {(r[0], r[1]): dict(zip(names, r, strict=True)) for r in table["rows"]}
    revenue = {
        (r[0], r[1]): float(r[2])
        for r in _demo_sql(
            demo,
            f"SELECT c.region, {AGE_BAND.replace('age', 'c.age')}, sum(o.amount) FROM orders o"
            " LEFT JOIN customers c ON c.customer_id = o.customer_id GROUP BY 1, 2",
        )
    }
    customers = {
        (r[0], r[1]): r[2] for r in _demo_sql(demo, f"SELECT region, {AGE_BAND}, count(*) FROM customers GROUP BY 1, 2")
    }
    total_revenue, total_customers = sum(revenue.values()), sum(customers.values())
    for key, count in customers.items():
        index = 100 * (revenue.get(key, 0.0) / total_revenue) / (count / total_customers)
        assert got[key]["revenue_index"] == pytest.approx(index), key
    # a group with its fair share of revenue has an index of 100: the customer-weighted mean index is 100
    weighted = sum(got[k]["revenue_index"] * n for k, n in customers.items()) / total_customers
    assert weighted == pytest.approx(100 * sum(revenue.get(k, 0.0) for k in customers) / total_revenue)
    (chart,) = section["charts"]
    encoding = chart["spec"]["encoding"]
    # two dimensions: one cell per (region, age band), not seven bars drawn over each other per region
    assert chart["spec"]["mark"] == "rect"
    assert (encoding["x"]["field"], encoding["y"]["field"]) == ("customers.region", "customers.age_band")
    assert chart["spec"]["title"] == "Revenue index by Region and Age band"
    assert section["title"] == "Profile by Region and Age band"


def test_demo_metrics_have_no_near_duplicates(demo: tuple[Path, str, str]) -> None:
    from crmetrics.reports.tables import humanize

    project = crmetrics.load(demo[0] / "crmetrics.yml")
    try:
        metrics = project.model.metrics
        labels = [(m.label or humanize(name)).lower() for name, m in metrics.items()]
        assert len(labels) == len(set(labels))
        for old in ("aov", "avg_csat", "csat_rate", "nps", "conversion_rate", "lead_cost", "opportunity_count"):
            assert old not in metrics, old
    finally:
        project.close()


def test_pipeline_stage_counts_include_won_and_open_deals(demo: tuple[Path, str, str]) -> None:
    # the data records last_stage_reached for lost deals only; a won deal reached qualification and proposal too
    project = crmetrics.load(demo[0] / "crmetrics.yml")
    try:
        got = project.query(["opportunities", "qualified_opportunities", "proposals", "won_deals"]).rows[0]
    finally:
        project.close()
    furthest = "coalesce(last_stage_reached, stage)"
    want = _demo_sql(
        demo,
        f"SELECT count(*), count(*) FILTER (WHERE {furthest} IN ('qualification', 'proposal', 'negotiation',"
        f" 'closed_won')), count(*) FILTER (WHERE {furthest} IN ('proposal', 'negotiation', 'closed_won')),"
        " count(*) FILTER (WHERE stage = 'closed_won') FROM opportunities",
    )[0]
    assert tuple(got) == want
    assert want[0] >= want[1] >= want[2] >= want[3] > 0


def test_demo_never_writes_over_a_project_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mine = "version: 1\nname: acme\n"
    (tmp_path / "crmetrics.yml").write_text(mine)
    assert main(["demo", "--out", str(tmp_path), "--customers", "5"]) == 2
    assert "is a project that `crmetrics demo` did not write" in capsys.readouterr().err
    assert (tmp_path / "crmetrics.yml").read_text() == mine and not (tmp_path / "demo.duckdb").exists()
