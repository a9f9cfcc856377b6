"""The KPI library: every KPI on the demo data against a hand-written SQL query, and the reference page is current."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import crmetrics
from crmetrics.demo import build_demo_database
from crmetrics.demo.library import AREAS, reference_page
from crmetrics.demo.writer import LIBRARY, library_metrics, write_project
from crmetrics.plugins import get_plugin_manager

PERIOD = "metric_time >= DATE '2024-01-01' AND metric_time < DATE '2025-01-01'"


def within(column: str) -> str:
    return f"{column} >= TIMESTAMP '2024-01-01' AND {column} < TIMESTAMP '2025-01-01'"


ORDERS = f"FROM orders WHERE {within('ordered_at')}"
LINES = f"FROM order_lines l JOIN orders o USING (order_id) WHERE {within('o.ordered_at')}"
OPPS = f"FROM opportunities WHERE {within('created_at')}"
LEADS = f"FROM leads WHERE {within('created_at')}"
TICKETS = f"FROM tickets WHERE {within('opened_at')}"
NPS = f"FROM nps_responses WHERE {within('answered_at')}"
TARGETS = "FROM targets WHERE month >= DATE '2024-01-01' AND month < DATE '2025-01-01'"
LIFETIME = "(SELECT customer_id, COUNT(*) FILTER (WHERE status = 'completed') AS n FROM orders GROUP BY customer_id)"
CUSTOMERS = f"FROM customers c LEFT JOIN {LIFETIME} l USING (customer_id) WHERE {within('c.signed_up_at')}"
REVENUE = f"(SELECT SUM(amount) {ORDERS})"
TARGET = f"(SELECT SUM(revenue_target) {TARGETS})"
WON = f"(SELECT SUM(amount) FROM opportunities WHERE stage = 'closed_won' AND {within('closed_at')})"  # closed now
REPS = f"(SELECT COUNT(DISTINCT owner_rep_id) {OPPS})"
REPEAT = f"(SELECT COUNT(*) FILTER (WHERE l.n >= 2) / COUNT(*) FILTER (WHERE l.n >= 1) {CUSTOMERS})"
FIRST_TOUCH = (  # each customer's earliest converted lead
    "(SELECT arg_min(lead_id, (converted_at, lead_id)) AS lead_id, customer_id FROM leads "
    "WHERE converted_at IS NOT NULL GROUP BY customer_id)"
)
COMPLETED = "(SELECT customer_id, SUM(amount) AS revenue FROM orders WHERE status = 'completed' GROUP BY customer_id)"
ATTRIBUTED = (
    f"(SELECT SUM(r.revenue) FROM leads ld JOIN {FIRST_TOUCH} f USING (lead_id) JOIN {COMPLETED} r "
    f"ON r.customer_id = f.customer_id WHERE {within('ld.created_at')})"
)
CSAT_SCALE = "csat_score BETWEEN 1 AND 5 AND csat_score = FLOOR(csat_score)"  # a blank or out-of-scale answer: none
CLOSED = "stage IN ('closed_won', 'closed_lost')"  # a stage, as won is: a close date may be missing
# the data keeps last_stage_reached for lost deals only; won and open deals got as far as their current stage
QUALIFIED = "coalesce(last_stage_reached, stage) IN ('qualification', 'proposal', 'negotiation', 'closed_won')"
PROPOSED = "coalesce(last_stage_reached, stage) IN ('proposal', 'negotiation', 'closed_won')"

# One independent query per KPI, over the report period 2024 (each entity's own time column).
SQL = {
    "revenue": f"SELECT SUM(amount) {ORDERS}",
    "order_count": f"SELECT COUNT(*) {ORDERS}",
    "buyers": f"SELECT COUNT(DISTINCT customer_id) {ORDERS}",
    "average_order_value": f"SELECT SUM(amount) / COUNT(*) {ORDERS}",
    "units_sold": f"SELECT SUM(l.quantity) {LINES}",
    "units_per_order": f"SELECT (SELECT SUM(l.quantity) {LINES}) / (SELECT COUNT(*) {ORDERS})",
    "product_revenue": f"SELECT SUM(l.line_amount) {LINES}",
    "products_sold": f"SELECT COUNT(DISTINCT l.product_id) {LINES}",
    "revenue_target": f"SELECT SUM(revenue_target) {TARGETS}",
    "target_attainment": f"SELECT {REVENUE} / {TARGET}",
    "opportunities": f"SELECT COUNT(*) {OPPS}",
    "won_deals": f"SELECT COUNT(*) FILTER (WHERE stage = 'closed_won') {OPPS}",
    "closed_deals": f"SELECT COUNT(*) FILTER (WHERE {CLOSED}) {OPPS}",
    "win_rate": f"SELECT COUNT(*) FILTER (WHERE stage = 'closed_won') / COUNT(*) FILTER (WHERE {CLOSED}) {OPPS}",
    "qualified_opportunities": f"SELECT COUNT(*) FILTER (WHERE {QUALIFIED}) {OPPS}",
    "qualification_rate": f"SELECT COUNT(*) FILTER (WHERE {QUALIFIED}) / COUNT(*) {OPPS}",
    "proposals": f"SELECT COUNT(*) FILTER (WHERE {PROPOSED}) {OPPS}",
    "proposal_win_rate": f"SELECT COUNT(*) FILTER (WHERE stage = 'closed_won') / COUNT(*) FILTER (WHERE {PROPOSED}) "
    f"{OPPS}",
    "sales_cycle_days": f"SELECT AVG(date_diff('day', created_at, closed_at)) FILTER (WHERE stage = 'closed_won') "
    f"{OPPS}",
    "open_pipeline": f"SELECT SUM(amount) FILTER (WHERE NOT {CLOSED}) {OPPS}",
    "pipeline_activities": f"SELECT COUNT(*) FROM opportunity_stage_history WHERE {within('entered_at')}",
    "customer_lifetime_value": f"SELECT SUM(amount) FILTER (WHERE customer_id IS NOT NULL) "
    f"/ COUNT(DISTINCT customer_id) {ORDERS}",
    "purchase_frequency": f"SELECT COUNT(customer_id) / COUNT(DISTINCT customer_id) {ORDERS}",
    "customers": f"SELECT COUNT(*) {CUSTOMERS}",
    "active_customers": f"SELECT COUNT(*) FILTER (WHERE l.n >= 1) {CUSTOMERS}",
    "returning_customers": f"SELECT COUNT(*) FILTER (WHERE l.n >= 2) {CUSTOMERS}",
    "repeat_purchase_rate": f"SELECT {REPEAT}",
    "one_time_buyer_rate": f"SELECT 1 - {REPEAT}",
    "csat": f"SELECT AVG(csat_score) FILTER (WHERE {CSAT_SCALE}) {TICKETS}",
    "csat_responses": f"SELECT COUNT(*) FILTER (WHERE {CSAT_SCALE}) {TICKETS}",
    "satisfied_tickets": f"SELECT COUNT(*) FILTER (WHERE csat_score IN (4, 5)) {TICKETS}",
    "csat_satisfied_rate": f"SELECT COUNT(*) FILTER (WHERE csat_score IN (4, 5)) "
    f"/ COUNT(*) FILTER (WHERE {CSAT_SCALE}) {TICKETS}",
    "promoters": f"SELECT COUNT(*) FILTER (WHERE score IN (9, 10)) {NPS}",
    "detractors": f"SELECT COUNT(*) FILTER (WHERE score BETWEEN 0 AND 6 AND score = FLOOR(score)) {NPS}",
    "nps_responses": f"SELECT COUNT(*) FILTER (WHERE score BETWEEN 0 AND 10 AND score = FLOOR(score)) {NPS}",
    "net_promoter_score": f"SELECT 100.0 * (COUNT(*) FILTER (WHERE score IN (9, 10)) - COUNT(*) FILTER (WHERE score "
    f"BETWEEN 0 AND 6 AND score = FLOOR(score))) / COUNT(*) FILTER (WHERE score BETWEEN 0 AND 10 AND score = "
    f"FLOOR(score)) {NPS}",
    "active_reps": f"SELECT {REPS}",
    "won_amount": f"SELECT {WON}",
    "revenue_per_rep": f"SELECT {WON} / {REPS}",
    "deals_per_rep": f"SELECT COUNT(*) FILTER (WHERE stage = 'closed_won') / COUNT(DISTINCT owner_rep_id) {OPPS}",
    "target_completion": f"SELECT {WON} / {TARGET}",
    "leads": f"SELECT COUNT(*) {LEADS}",
    "converted_leads": f"SELECT COUNT(converted_at) {LEADS}",
    "lead_conversion_rate": f"SELECT COUNT(converted_at) / COUNT(*) {LEADS}",
    "marketing_cost": f"SELECT SUM(cost) {LEADS}",
    "cost_per_lead": f"SELECT SUM(cost) / COUNT(*) {LEADS}",
    "cost_per_acquisition": f"SELECT SUM(cost) / COUNT(converted_at) {LEADS}",
    "attributed_revenue": f"SELECT {ATTRIBUTED}",
    "channel_roi": f"SELECT ({ATTRIBUTED} - (SELECT SUM(cost) {LEADS})) / (SELECT SUM(cost) {LEADS})",
}
NO_TIME = {"catalogue_size", "product_penetration"}

EDGE_ROWS = """
INSERT INTO nps_responses SELECT 900000 + i, 1, TIMESTAMP '2024-05-01', s
    FROM (VALUES (1, NULL), (2, 11), (3, -1)) AS t(i, s);  -- a blank and two out-of-scale answers: no responses
INSERT INTO tickets (ticket_id, customer_id, opened_at, csat_score) SELECT 900000 + i, 1, TIMESTAMP '2024-04-01', s
    FROM (VALUES (1, 9), (2, 0)) AS t(i, s);  -- out of the 1-5 scale: not satisfied, not a response
INSERT INTO leads SELECT 900000, TIMESTAMP '2024-02-01', 'web', 'DE', TIMESTAMP '2024-09-01', customer_id, 10
    FROM leads WHERE converted_at >= TIMESTAMP '2024-03-01' ORDER BY lead_id LIMIT 1;  -- the same customer, again
INSERT INTO opportunities SELECT 900000, 1, 1, TIMESTAMP '2024-03-01', NULL, 'closed_won', NULL, 500, NULL;
INSERT INTO orders SELECT 800000, NULL, TIMESTAMP '2024-06-01', 'online', 'completed', 300, 1;  -- nobody's order
INSERT INTO orders SELECT 900000 + ROW_NUMBER() OVER (ORDER BY customer_id), customer_id, TIMESTAMP '2024-06-02',
    'store', 'cancelled', 50, 1 FROM customers WHERE signed_up_at >= TIMESTAMP '2024-01-01' ORDER BY customer_id
    LIMIT 20;  -- a cancelled order makes no customer a repeat buyer
"""  # products have no time: checked without a period below


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("kpis")
    build_demo_database(out / "demo.duckdb", customers=1500)
    with duckdb.connect(str(out / "demo.duckdb")) as con:  # rows a real CRM holds that the generator does not make
        con.execute(EDGE_ROWS)
    path = write_project(out, get_plugin_manager(entry_points_too=False)[1], lambda name, why: None)
    project = crmetrics.load(path)
    con = duckdb.connect(str(out / "demo.duckdb"), read_only=True)
    yield project, con
    con.close()
    project.close()


def test_every_library_metric_has_a_reference_query() -> None:
    assert library_metrics() == set(SQL) | NO_TIME


@pytest.mark.parametrize("metric", sorted(SQL))
def test_kpi_matches_hand_written_sql(demo, metric: str) -> None:
    project, con = demo
    got = project.query([metric], where=PERIOD).rows[0][0]
    expected = con.execute(SQL[metric]).fetchone()[0]
    assert expected is not None
    assert float(got) == pytest.approx(float(expected), rel=1e-9)


def test_breakdowns_add_up_and_keep_nulls(demo) -> None:
    project, con = demo
    by_source = dict(project.query(["channel_roi"], by=["leads.source"], where=PERIOD).rows)
    expected = con.execute(
        "SELECT source, (COALESCE(SUM(r.revenue), 0) - SUM(cost)) / SUM(cost) "
        f"FROM leads ld LEFT JOIN {FIRST_TOUCH} f USING (lead_id) LEFT JOIN {COMPLETED} r "
        f"ON r.customer_id = f.customer_id WHERE {within('ld.created_at')} GROUP BY source"
    ).fetchall()
    assert by_source == {s: pytest.approx(float(v)) for s, v in expected}
    penetration = project.query(["product_penetration", "catalogue_size"], by=["products.category"]).rows
    expected = dict(
        con.execute(
            "SELECT p.category, COUNT(DISTINCT l.product_id) / COUNT(DISTINCT p.product_id) FROM products p "
            "LEFT JOIN order_lines l USING (product_id) GROUP BY 1"
        ).fetchall()
    )
    assert {r[0]: r[1] for r in penetration} == {k: pytest.approx(float(v)) for k, v in expected.items()}
    regions = project.query(["revenue"], by=["customers.region"], where=PERIOD).rows
    assert None in {r[0] for r in regions}  # customers without a region and orphan orders stay visible
    assert sum(float(r[1]) for r in regions) == pytest.approx(float(con.execute(SQL["revenue"]).fetchone()[0]))


def test_every_area_has_descriptions_and_the_reference_page_is_current() -> None:
    page = reference_page()
    for stem, (title, _) in AREAS.items():
        assert (LIBRARY / f"{stem}.yml").is_file() and f"## {title}" in page
    assert sorted(p.stem for p in LIBRARY.glob("*.yml")) == sorted(AREAS)
    current = (Path(__file__).resolve().parents[1] / "docs" / "metric-definitions.md").read_text(encoding="utf-8")
    regenerate = "python -m crmetrics.demo.library > docs/metric-definitions.md"
    assert current == page, f"docs/metric-definitions.md is stale: {regenerate}"
    for line in page.splitlines():
        if line.startswith("| ") and not line.startswith(("| KPI", "| ---")):
            assert line.rstrip(" |").split(" | ")[-1].strip(), f"no description: {line}"
