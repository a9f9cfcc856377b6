"""The compiler's numbers against pure-Python computations over the same rows (tests/crm_fixture.py)."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable

import pytest

from tests.crm_fixture import CRM


def close(actual: object, expected: object) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    if isinstance(expected, float) or isinstance(actual, float):
        return math.isclose(float(actual), float(expected), rel_tol=1e-9, abs_tol=1e-9)
    return actual == expected


def assert_rows(result, expected: dict) -> None:
    """`expected` maps a group key tuple to a tuple of metric values; the result must hold exactly those groups."""
    width = len(result.columns) - len(next(iter(expected.values())))
    got = {tuple(row[:width]): row[width:] for row in result.rows}
    assert set(got) == set(expected), (sorted(got, key=repr), sorted(expected, key=repr))
    for key, values in expected.items():
        assert all(close(a, e) for a, e in zip(got[key], values, strict=True)), (key, got[key], values)


class Ref:
    """Pure-Python lookups over the fixture's rows."""

    def __init__(self, crm: CRM) -> None:
        self.crm = crm
        self.customers = {c["customer_id"]: c for c in crm.customers}
        self.regions = {r["region_id"]: r for r in crm.regions}

    def region_name(self, customer_id: int) -> str | None:
        customer = self.customers.get(customer_id)
        region = self.regions.get(customer["region_id"]) if customer else None
        return region["region_name"] if region else None

    def segment(self, customer_id: int) -> str | None:
        customer = self.customers.get(customer_id)
        return customer["segment"] if customer else None

    def lifetime_revenue(self, customer_id: int) -> float | None:
        if customer_id not in self.customers:
            return None
        return sum(o["amount"] or 0 for o in self.crm.orders if o["customer_id"] == customer_id)

    def order_total(self, customer_id: int) -> int | None:
        if customer_id not in self.customers:
            return None
        return sum(1 for o in self.crm.orders if o["customer_id"] == customer_id)


@pytest.fixture(scope="module")
def ref(crm: CRM) -> Ref:
    return Ref(crm)


def group(rows: Iterable[dict], key: Callable[[dict], tuple]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def amounts(rows: list[dict]) -> list[float]:
    return [r["amount"] for r in rows if r["amount"] is not None]


def percentile_cont(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def divide(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def test_total_revenue_counts_orphans_and_skips_null_amounts(crm, crm_project):
    result = crm_project.query(["revenue", "order_count"])
    assert result.columns == ["revenue", "order_count"]
    assert_rows(result, {(): (sum(amounts(crm.orders)), len(crm.orders))})


def test_every_aggregation_by_a_dimension_with_nulls(crm, crm_project, ref):
    metrics = [
        "revenue",
        "order_count",
        "buyers",
        "avg_amount",
        "min_amount",
        "max_amount",
        "median_amount",
        "p90_amount",
        "web_orders",
    ]
    result = crm_project.query(metrics, by=["customers.segment"])
    expected = {}
    for (segment,), rows in group(crm.orders, lambda o: (ref.segment(o["customer_id"]),)).items():
        values = amounts(rows)
        expected[(segment,)] = (
            sum(values),
            len(rows),
            len({r["customer_id"] for r in rows}),
            statistics.fmean(values) if values else None,
            min(values, default=None),
            max(values, default=None),
            statistics.median(values) if values else None,
            percentile_cont(values, 0.9),
            sum(1 for r in rows if r["channel"] == "web"),
        )
    assert_rows(result, expected)


def test_multi_hop_join_keeps_orphans_under_null_and_adds_up(crm, crm_project, ref):
    result = crm_project.query(["revenue"], by=["regions.name"])
    expected = {
        (name,): (sum(amounts(rows)),)
        for (name,), rows in group(crm.orders, lambda o: (ref.region_name(o["customer_id"]),)).items()
    }
    assert_rows(result, expected)
    assert None in {row[0] for row in result.rows}
    assert math.isclose(sum(row[1] for row in result.rows), sum(amounts(crm.orders)))


def test_filtered_ratio_and_derived_metrics(crm, crm_project, ref):
    result = crm_project.query(["aov", "revenue_per_buyer", "web_revenue", "web_share"], by=["customers.segment"])
    expected = {}
    for key, rows in group(crm.orders, lambda o: (ref.segment(o["customer_id"]),)).items():
        revenue = sum(amounts(rows))
        web = sum(amounts([r for r in rows if r["channel"] == "web"]))
        expected[key] = (
            divide(revenue, len(rows)),
            divide(revenue, len({r["customer_id"] for r in rows})),
            web,
            divide(web, revenue),
        )
    assert_rows(result, expected)


def test_two_fact_entities_do_not_fan_out(crm, crm_project, ref):
    both = crm_project.query(["revenue", "ticket_count", "revenue_per_ticket", "csat", "buyers"], by=["regions.name"])
    alone = crm_project.query(["revenue"], by=["regions.name"])
    orders = group(crm.orders, lambda o: (ref.region_name(o["customer_id"]),))
    tickets = group(crm.tickets, lambda t: (ref.region_name(t["customer_id"]),))
    expected = {}
    for key in set(orders) | set(tickets):
        revenue = sum(amounts(orders.get(key, [])))
        count = len(tickets.get(key, []))
        satisfied = sum(1 for t in tickets.get(key, []) if t["satisfied"])
        buyers = len({o["customer_id"] for o in orders.get(key, [])})  # 0, not NULL, where only tickets exist
        expected[key] = (revenue, count, divide(revenue, count), divide(satisfied, count), buyers)
    assert_rows(both, expected)
    for name, revenue in ((r[0], r[1]) for r in alone.rows):
        assert close(next(r[1] for r in both.rows if r[0] == name), revenue)


def test_zero_denominator_is_null(crm_project):
    result = crm_project.query(["revenue_per_ticket"], by=["regions.name"], where="regions.name = 'nowhere'")
    assert result.rows == []
    total = crm_project.query(["aov", "revenue", "avg_amount", "order_count"], where="orders.channel = 'nowhere'")
    assert total.rows == [(None, 0, None, 0)]


@pytest.mark.parametrize("grain", ["day", "week", "month", "quarter", "year"])
def test_metric_time_grains_on_period_boundaries(crm, crm_project, grain):
    def start(ts: dt.datetime) -> dt.date:
        d = ts.date()
        return {
            "day": d,
            "week": d - dt.timedelta(days=d.weekday()),
            "month": d.replace(day=1),
            "quarter": d.replace(month=3 * ((d.month - 1) // 3) + 1, day=1),
            "year": d.replace(month=1, day=1),
        }[grain]

    result = crm_project.query(["revenue", "ticket_count", "buyers"], by=[f"metric_time:{grain}"])
    orders = group(crm.orders, lambda o: (start(o["ordered_at"]),))
    tickets = group(crm.tickets, lambda t: (start(t["opened_at"]),))
    expected = {
        k: (
            sum(amounts(orders.get(k, []))),
            len(tickets.get(k, [])),
            len({o["customer_id"] for o in orders.get(k, [])}),
        )
        for k in set(orders) | set(tickets)
    }
    if grain == "day":  # days with tickets and no orders: a distinct count over no rows is 0, not NULL
        assert any(not orders.get(k) for k in tickets)
    assert_rows(result, expected)
    assert [r[0] for r in result.rows] == sorted(r[0] for r in result.rows)


def test_month_boundary_timestamps_land_in_their_own_month(crm, crm_project):
    result = crm_project.query(
        ["order_count"],
        by=["orders.ordered_at:month"],
        where="orders.ordered_at >= '2024-01-31' AND orders.ordered_at < '2024-02-02'",
    )
    expected = group(
        [o for o in crm.orders if dt.datetime(2024, 1, 31) <= o["ordered_at"] < dt.datetime(2024, 2, 2)],
        lambda o: (o["ordered_at"].date().replace(day=1),),
    )
    assert_rows(result, {k: (len(v),) for k, v in expected.items()})
    assert len(result.rows) == 2


def test_segment_over_measure_based_dimension(crm, crm_project, ref):
    result = crm_project.query(["revenue", "ticket_count"], segments=["high_value"])
    members = {c for c in ref.customers if ref.lifetime_revenue(c) >= 500}
    assert members
    revenue = sum(amounts([o for o in crm.orders if o["customer_id"] in members]))
    tickets = sum(1 for t in crm.tickets if t["customer_id"] in members)
    assert_rows(result, {(): (revenue, tickets)})


def test_two_segments_and_a_where_combine(crm, crm_project, ref):
    result = crm_project.query(
        ["order_count"], by=["customers.segment"], segments=["high_value", "young"], where="orders.channel IS NOT NULL"
    )

    def keep(o: dict) -> bool:
        c = ref.customers.get(o["customer_id"])
        return (
            bool(c)
            and ref.lifetime_revenue(c["customer_id"]) >= 500
            and c["age"] is not None
            and c["age"] < 35
            and o["channel"] is not None
        )

    expected = group([o for o in crm.orders if keep(o)], lambda o: (ref.segment(o["customer_id"]),))
    assert_rows(result, {k: (len(v),) for k, v in expected.items()})


@pytest.mark.parametrize("name", ["O'Higgins", "東京", 'Quote "Land"', "Île-de-France"])
def test_filters_with_quotes_and_unicode(crm, crm_project, ref, name):
    literal = "'" + name.replace("'", "''") + "'"
    result = crm_project.query(["revenue"], where=f"regions.name = {literal}")
    expected = sum(amounts([o for o in crm.orders if ref.region_name(o["customer_id"]) == name]))
    assert_rows(result, {(): (expected,)})
    by = crm_project.query(["revenue"], by=["regions.name"])
    assert name in by.column("regions.name")


def test_measure_based_dimension_in_by(crm, crm_project, ref):
    result = crm_project.query(["ticket_count"], by=["customers.order_total"])
    expected = group(crm.tickets, lambda t: (ref.order_total(t["customer_id"]),))
    assert_rows(result, {k: (len(v),) for k, v in expected.items()})


def test_expression_dimension_and_null_branch(crm, crm_project, ref):
    def band(o: dict) -> str | None:
        c = ref.customers.get(o["customer_id"])
        if not c or c["age"] is None:
            return None
        return "under 35" if c["age"] < 35 else "35+"

    result = crm_project.query(["order_count"], by=["customers.age_band"])
    assert_rows(result, {k: (len(v),) for k, v in group(crm.orders, lambda o: (band(o),)).items()})


def test_order_by_and_limit(crm_project):
    top = crm_project.query(["revenue"], by=["customers.segment"], order_by=["-revenue"], limit=2)
    everything = crm_project.query(["revenue"], by=["customers.segment"])
    expected = sorted(everything.rows, key=lambda r: -r[1])[:2]
    assert top.rows == expected


def test_result_conversions(crm_project):
    result = crm_project.query(["revenue", "order_count"], by=["metric_time:month"], limit=3)
    frame = result.to_pandas()
    assert list(frame.columns) == ["metric_time:month", "revenue", "order_count"]
    assert str(frame["metric_time:month"].dtype).startswith("datetime64")  # a time series, not Python objects
    assert [t.date() for t in frame["metric_time:month"]] == [row[0] for row in result.rows]
    assert frame["revenue"].tolist() == [row[1] for row in result.rows]
    assert result.to_arrow().num_rows == 3
    import json

    rows = json.loads(result.to_json())
    assert set(rows[0]) == {"metric_time:month", "revenue", "order_count"}
    assert isinstance(rows[0]["metric_time:month"], str) and len(rows[0]["metric_time:month"]) == 10


@pytest.mark.parametrize(
    "question",
    [
        {"metrics": ["revenue", "order_count", "aov", "median_amount", "buyers"], "by": ["customers.segment"]},
        {"metrics": ["revenue", "ticket_count", "csat"], "by": ["metric_time:month", "regions.name"]},
        {"metrics": ["p90_amount", "web_share"], "by": ["orders.ordered_at:day"], "limit": 50},
    ],
)
def test_arrow_and_plain_fetch_give_the_same_values_and_types(crm, crm_project, question):
    from crmetrics.engines.duckdb import DuckDBEngine

    sql = crm_project.compile(**question)
    columns = ["c" + str(i) for i in range(len(question["metrics"]) + len(question["by"]))]
    with_arrow = DuckDBEngine(str(crm.root / "crm.duckdb"), arrow=True).execute(sql, columns).rows
    plain = DuckDBEngine(str(crm.root / "crm.duckdb"), arrow=False).execute(sql, columns).rows
    assert plain == with_arrow
    assert [[type(v) for v in row] for row in plain] == [[type(v) for v in row] for row in with_arrow]


def test_a_host_that_blocks_pyarrow_still_gets_rows(monkeypatch):
    """`sys.modules["pyarrow"] = None` is how a host forbids an import: DuckDB must not try to fetch Arrow then."""
    import sys

    from crmetrics.engines.duckdb import DuckDBEngine

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert DuckDBEngine(":memory:").execute("SELECT 1.5 AS x", ["x"]).rows == [(1.5,)]


def test_decimals_become_the_nearest_float_on_the_arrow_path_too():
    """Arrow's own DECIMAL -> DOUBLE cast turns 917.56 into 917.5600000000001; crmetrics must not."""
    import decimal

    from crmetrics.engines.duckdb import DuckDBEngine

    cents = "CAST(i AS DECIMAL(12, 0)) * CAST(0.01 AS DECIMAL(3, 2))"  # a DECIMAL(15, 2), as money columns are
    sql = f"SELECT {cents} AS amount FROM range(0, 200000, 7) t(i) ORDER BY i"
    want = [(float(decimal.Decimal(i) / 100),) for i in range(0, 200000, 7)]
    assert want[13108] == (917.56,)  # one value the plain Arrow cast gets wrong
    for arrow in (True, False):
        assert DuckDBEngine(":memory:", arrow=arrow).execute(sql, ["amount"]).rows == want, arrow


def test_pandas_keeps_null_dates_and_mixed_columns():
    from crmetrics.result import Result

    dated = Result(["day", "n"], [(dt.date(2024, 2, 29), 1), (None, 2)]).to_pandas()
    assert str(dated["day"].dtype).startswith("datetime64") and dated["day"].isna().tolist() == [False, True]
    assert dated["day"][0].date() == dt.date(2024, 2, 29)
    # SQLite may return several types in one column: each value comes back as it was
    moment = dt.datetime(2024, 1, 2, 3, 0)
    rows = [(1, dt.date(2024, 1, 1), b"x", 2**70), ("a", moment, "y", 1)]
    mixed = Result(["value", "when", "raw", "big"], rows).to_pandas()
    assert mixed["value"].tolist() == [1, "a"] and mixed["raw"].tolist() == [b"x", "y"]
    assert mixed["when"].tolist()[1] == moment and mixed["big"].tolist() == [2**70, 1]


SEGMENT_ORPHANS = """\
version: 1
name: segment_orphans
entities:
  customers:
    sql: "SELECT * FROM (VALUES (1, 'North'), (2, 'South'), (3, NULL)) AS t(customer_id, region)"
    key: customer_id
    dimensions: {region: {}}
  orders:
    sql: >-
      SELECT * FROM (VALUES (10, 1, 100), (11, 2, 200), (12, 3, 300), (13, NULL, 1000), (14, 99, 5000))
      AS t(order_id, customer_id, amount)
    key: order_id
    joins: {customers: customer_id}
    measures: {revenue: {agg: sum, expr: amount}}
metrics:
  revenue: {measure: orders.revenue}
segments:
  no_region: {entity: customers, where: "customers.region IS NULL"}
  not_north: {entity: customers, where: "COALESCE(customers.region, '') <> 'North'"}
"""


@pytest.mark.parametrize(
    ("segment", "member"), [("no_region", "c.region IS NULL"), ("not_north", "COALESCE(c.region, '') <> 'North'")]
)
def test_a_segment_true_for_null_values_still_leaves_out_orders_without_a_known_customer(tmp_path, segment, member):
    import duckdb

    import crmetrics

    (tmp_path / "crmetrics.yml").write_text(SEGMENT_ORPHANS)
    project = crmetrics.load(tmp_path / "crmetrics.yml")
    # the members are customers that exist: an INNER join leaves out the NULL and the unknown customer_id
    expected = (
        duckdb.connect()
        .execute(f"""
        SELECT SUM(o.amount) FROM (VALUES (10, 1, 100), (11, 2, 200), (12, 3, 300), (13, NULL, 1000), (14, 99, 5000))
            AS o(order_id, customer_id, amount)
        JOIN (VALUES (1, 'North'), (2, 'South'), (3, NULL)) AS c(customer_id, region) USING (customer_id)
        WHERE {member}""")
        .fetchone()[0]
    )
    assert expected == {"no_region": 300, "not_north": 500}[segment]
    assert project.query(["revenue"], segments=[segment]).rows == [(expected,)]


FIRST_ORDERS = """\
version: 1
name: first_orders
entities:
  customers:
    sql: "SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) AS t(customer_id, name)"
    key: customer_id
    dimensions:
      first_order_at: {measure: orders.first_order, type: time, grain: month}
  orders:
    sql: >-
      SELECT * FROM (VALUES
        (10, 1, TIMESTAMP '2024-01-31 23:59:59', 100), (11, 1, TIMESTAMP '2024-03-02 10:00:00', 50),
        (12, 2, TIMESTAMP '2024-02-01 00:00:00', 20), (13, 2, TIMESTAMP '2023-12-31 12:00:00', 5),
        (14, NULL, TIMESTAMP '2024-01-05 00:00:00', 1000), (15, 99, TIMESTAMP '2024-01-06 00:00:00', 7)
      ) AS t(order_id, customer_id, ordered_at, amount)
    key: order_id
    time: ordered_at
    joins: {customers: customer_id}
    dimensions: {ordered_at: {type: time}}
    measures:
      revenue: {agg: sum, expr: amount}
      first_order: {agg: min, expr: ordered_at}
metrics:
  revenue: {measure: orders.revenue}
"""


@pytest.mark.parametrize("grain", ["month", "quarter", None])
def test_revenue_by_the_customers_first_order_period(tmp_path, grain):
    """A measure-based dimension with `type: time` (MIN of ordered_at per customer) takes a grain like a column."""
    import crmetrics

    (tmp_path / "crmetrics.yml").write_text(FIRST_ORDERS)
    project = crmetrics.load(tmp_path / "crmetrics.yml")
    orders = [(1, dt.datetime(2024, 1, 31, 23, 59, 59), 100), (1, dt.datetime(2024, 3, 2, 10), 50)]
    orders += [(2, dt.datetime(2024, 2, 1), 20), (2, dt.datetime(2023, 12, 31, 12), 5)]
    orders += [(None, dt.datetime(2024, 1, 5), 1000), (99, dt.datetime(2024, 1, 6), 7)]  # no known customer
    first = {c: min(t for k, t in ((k, t) for k, t, _ in orders) if k == c) for c in (1, 2)}

    def period(moment: dt.datetime) -> dt.date:
        day = moment.date()
        if grain == "quarter":
            return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        return day.replace(day=1)  # the dimension's own grain (month) when none is asked

    expected: dict = defaultdict(int)
    for customer, _, amount in orders:
        expected[(period(first[customer]) if customer in first else None,)] += amount
    ref = "customers.first_order_at" + (f":{grain}" if grain else "")
    assert_rows(project.query(["revenue"], by=[ref]), {k: (v,) for k, v in expected.items()})


def test_a_time_typed_measure_dimension_must_take_a_min_or_max(tmp_path):
    import crmetrics

    text = FIRST_ORDERS.replace(
        "first_order_at: {measure: orders.first_order,", "first_order_at: {measure: orders.revenue,"
    )
    (tmp_path / "crmetrics.yml").write_text(text)
    with pytest.raises(crmetrics.ConfigError) as caught:
        crmetrics.load(tmp_path / "crmetrics.yml")
    (issue,) = caught.value.issues
    assert issue.code == "CRM153" and issue.location.line == 8 and "not a sum ('orders.revenue')" in issue.message


AGE_BANDS = """\
version: 1
name: orphan_bands
entities:
  customers:
    sql: "SELECT * FROM (VALUES (1, 20), (2, 50), (3, NULL)) AS t(customer_id, age)"
    key: customer_id
    dimensions:
      age_band: {expr: "CASE WHEN age < 35 THEN 'under 35' ELSE '35+' END"}
  orders:
    sql: >-
      SELECT * FROM (VALUES (10, 1, 100), (11, 2, 200), (12, 3, 300), (13, NULL, 1000), (14, 9, 5000))
      AS t(order_id, customer_id, amount)
    key: order_id
    joins: {customers: customer_id}
    measures: {revenue: {agg: sum, expr: amount}}
metrics:
  revenue: {measure: orders.revenue}
"""


def test_an_expression_dimension_is_null_for_an_order_without_a_known_customer(tmp_path):
    """The CASE's ELSE would put an orphan order under '35+': the expression describes customers that exist."""
    import duckdb

    import crmetrics

    (tmp_path / "crmetrics.yml").write_text(AGE_BANDS)
    project = crmetrics.load(tmp_path / "crmetrics.yml")
    expected = (
        duckdb.connect()
        .execute("""
        SELECT CASE WHEN c.customer_id IS NULL THEN NULL WHEN c.age < 35 THEN 'under 35' ELSE '35+' END, SUM(amount)
        FROM (VALUES (10, 1, 100), (11, 2, 200), (12, 3, 300), (13, NULL, 1000), (14, 9, 5000))
            AS o(order_id, customer_id, amount)
        LEFT JOIN (VALUES (1, 20), (2, 50), (3, NULL)) AS c(customer_id, age) USING (customer_id)
        GROUP BY 1""")
        .fetchall()
    )
    assert_rows(project.query(["revenue"], by=["customers.age_band"]), {(band,): (v,) for band, v in expected})
    assert dict(expected) == {"under 35": 100, "35+": 500, None: 6000}  # customer 3's unknown age is '35+' by the CASE
    assert project.query(["revenue"], where="customers.age_band = '35+'").rows == [(500,)]
