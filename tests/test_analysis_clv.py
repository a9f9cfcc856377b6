"""clv: the SQL summary against Python, the historical estimate, and the models recovered from their own simulations."""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections import defaultdict

import pytest

from crmetrics.analysis import clv
from crmetrics.analysis.base import AnalysisContext
from crmetrics.compiler import render
from crmetrics.errors import AnalysisError, ConfigError
from tests.value_fixture import Fixture, records

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pytest.importorskip("scipy")

PROJECT = """
version: 1
name: shop
entities:
  customers:
    table: customers
    key: customer_id
    dimensions: {region: {}}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins: {customers: customer_id}
    measures: {revenue: {agg: sum, expr: amount}}
analyses:
  history: {method: clv, entity: customers, events: orders, monetary: orders.revenue, as_of: "2024-06-30",
            time_unit: week, horizon: 10, discount_rate: 0.1, margin: 0.25}
  models: {method: clv, entity: customers, events: orders, monetary: orders.revenue, as_of: "2024-06-30",
           model: bgnbd, time_unit: week, horizon: 26}
"""

AS_OF = dt.date(2024, 6, 30)
T = dt.datetime
EVENTS = [
    # order_id, customer_id, ordered_at, amount
    (1, 1, T(2024, 1, 1, 10), 10.0),
    (2, 1, T(2024, 1, 1, 18), 5.0),  # the same day as order 1: one purchase of 15
    (3, 1, T(2024, 1, 15), 20.0),
    (4, 1, T(2024, 2, 12), None),  # a purchase day of unknown value
    (5, 1, T(2025, 1, 5), 100.0),  # after as_of: ignored
    (6, 2, T(2024, 3, 1), 50.0),  # one purchase only
    (7, 3, T(2024, 6, 30, 23, 59), 30.0),  # on the as_of day: T = 0
    (8, 99, T(2024, 2, 1), 10.0),  # a customer missing from customers still has purchases
    (9, 99, T(2024, 2, 8), 12.0),
    (10, None, T(2024, 2, 8), 12.0),  # no customer: ignored
    (11, 4, None, 12.0),  # no time: ignored
    (12, 5, T(2024, 7, 1), 8.0),  # only after as_of: not a customer yet
    (13, 6, T(2024, 1, 1, 23, 59), 7.0),
    (14, 6, T(2024, 1, 2, 0, 1), 9.0),  # a minute later, but another day
]
UNITS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}


def summary_reference(events: list[tuple], as_of: dt.date, unit: str) -> dict:
    days: dict = defaultdict(lambda: defaultdict(list))
    for _, customer, at, amount in events:
        if customer is None or at is None or at.date() > as_of:
            continue
        days[customer][at.date()].append(amount)
    out = {}
    for customer, by_day in days.items():
        ordered = sorted(by_day)
        values = [
            None if all(a is None for a in by_day[d]) else sum(a for a in by_day[d] if a is not None) for d in ordered
        ]
        repeat = [v for v in values[1:] if v is not None]
        out[customer] = {
            "frequency": len(ordered) - 1,
            "recency": (ordered[-1] - ordered[0]).days / UNITS[unit],
            "T": (as_of - ordered[0]).days / UNITS[unit],
            "monetary": sum(repeat) / len(repeat) if repeat else None,
            "revenue": sum(v for v in values if v is not None) if any(v is not None for v in values) else None,
        }
    return out


@pytest.fixture
def shop(tmp_path) -> Fixture:
    fx = Fixture(tmp_path, PROJECT)
    fx.table("customers", "customer_id INTEGER, region VARCHAR", [(i, "x") for i in range(1, 7)])
    fx.table("orders", "order_id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, amount DOUBLE", EVENTS)
    return fx


def context(fx: Fixture, name: str, **params) -> AnalysisContext:
    merged = dict(fx.project.model.analyses[name].params) | params
    return AnalysisContext(name, merged, fx.project.model, fx.engine)


@pytest.mark.parametrize("unit", ["day", "week", "month"])
def test_summary_sql_follows_the_conventions(shop: Fixture, unit: str) -> None:
    ctx = context(shop, "models", time_unit=unit)
    setup = clv.Setup(ctx)
    rows = ctx.run(clv.summary_query(ctx, setup, AS_OF)).records()
    expected = summary_reference(EVENTS, AS_OF, unit)
    assert [r["customer_id"] for r in rows] == sorted(expected)
    for row in rows:
        for name, value in expected[row["customer_id"]].items():
            assert row[name] == pytest.approx(value), (row["customer_id"], name)
    assert expected[1]["frequency"] == 2 and expected[1]["monetary"] == 20.0
    assert expected[3]["T"] == 0


def test_purchases_are_days_even_when_the_time_dimension_has_a_coarser_grain(tmp_path) -> None:
    monthly = PROJECT.replace(
        "    joins: {customers: customer_id}\n    measures:",
        "    joins: {customers: customer_id}\n    dimensions: {ordered_at: {type: time, grain: month}}\n    measures:",
    )
    assert monthly != PROJECT
    fx = Fixture(tmp_path, monthly)
    fx.table("customers", "customer_id INTEGER, region VARCHAR", [(i, "x") for i in range(1, 7)])
    fx.table("orders", "order_id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, amount DOUBLE", EVENTS)
    ctx = context(fx, "models")
    rows = ctx.run(clv.summary_query(ctx, clv.Setup(ctx), AS_OF)).records()
    expected = summary_reference(EVENTS, AS_OF, "week")
    assert {r["customer_id"]: r["frequency"] for r in rows} == {k: v["frequency"] for k, v in expected.items()}


def test_default_as_of_is_the_last_event(shop: Fixture) -> None:
    ctx = context(shop, "models")
    del ctx.params["as_of"]
    assert clv.last_event(ctx, clv.Setup(ctx)) == dt.date(2025, 1, 5)


def test_summary_sql_renders_for_other_dialects(shop: Fixture) -> None:
    ctx = context(shop, "models")
    setup = clv.Setup(ctx)
    for dialect in ("postgres", "snowflake", "bigquery", "sqlite", "clickhouse"):
        assert "clv_days" in render(clv.summary_query(ctx, setup, AS_OF), dialect)
    # the PostgreSQL text gives the same numbers (DuckDB reads it)
    postgres = render(clv.summary_query(ctx, setup, AS_OF), "postgres")
    assert shop.con.execute(postgres).fetchall() == ctx.run(clv.summary_query(ctx, setup, AS_OF)).rows


def test_historical(shop: Fixture) -> None:
    result = shop.analyze("history")
    per = defaultdict(list)
    for _, customer, at, amount in EVENTS:
        if customer is not None and at is not None and at.date() <= AS_OF:
            per[customer].append((at.date(), amount))
    rows = {r["customer_id"]: r for r in records(result, "customers")}
    assert set(rows) == set(per)
    for customer, events in per.items():
        known = [a for _, a in events if a is not None]
        first = min(d for d, _ in events)
        row = rows[customer]
        assert row["orders"] == len(events)
        assert row["revenue"] == pytest.approx(sum(known))
        assert row["aov"] == pytest.approx(sum(known) / len(known))
        assert row["clv"] == pytest.approx(0.25 * sum(known))
        assert row["first_purchase"] == first and row["last_purchase"] == max(d for d, _ in events)
        assert row["tenure"] == pytest.approx((AS_OF - first).days / 7)
    summary = records(result, "summary")[0]
    orders = sum(len(e) for e in per.values())
    revenue = sum(a for e in per.values() for _, a in e if a is not None)
    valued = sum(1 for e in per.values() for _, a in e if a is not None)
    exposure = sum(max((AS_OF - min(d for d, _ in e)).days / 7, 1.0) for e in per.values())
    annuity = sum(1.1 ** (-(k * 7 / 365.25)) for k in range(1, 11))  # ten weekly steps, discounted at their end
    assert summary["aov"] == pytest.approx(revenue / valued)
    assert summary["purchase_frequency"] == pytest.approx(orders / exposure)
    assert summary["clv_estimate"] == pytest.approx(revenue / valued * orders / exposure * 0.25 * annuity)


def test_no_events_at_all(tmp_path) -> None:
    fx = Fixture(tmp_path, PROJECT)
    fx.table("customers", "customer_id INTEGER, region VARCHAR", [])
    fx.table("orders", "order_id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, amount DOUBLE", [])
    result = fx.analyze("models")
    assert records(result, "customers") == []
    assert "nothing to fit" in records(result, "summary")[0]["warnings"]
    assert [r["value"] for r in records(result, "parameters")] == [None] * 7
    assert records(fx.analyze("history"), "summary")[0]["clv_estimate"] is None
    ctx = context(fx, "history")
    del ctx.params["as_of"]
    with pytest.raises(AnalysisError, match="no events"):
        clv.run(ctx)


def test_bad_parameters_are_config_errors(shop: Fixture) -> None:
    with pytest.raises(ConfigError, match="not one of"):
        shop.analyze("models", model="pareto")
    with pytest.raises(ConfigError, match="outside"):
        shop.analyze("models", margin=1.5)
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        shop.analyze("models", as_of="30/06/2024")


def test_missing_scipy_names_the_extra(shop: Fixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(AnalysisError, match=r"crmetrics\[clv\]"):
        shop.analyze("models")
    assert records(shop.analyze("history"), "summary")  # the historical model needs neither


# --- the models, recovered from data simulated with known parameters -------------------------------------------------

TRUE = {"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43, "p": 6.25, "q": 3.74, "gamma": 15.44}  # CDNOW, weekly
HORIZON = 26


def simulate(n: int, seed: int) -> tuple[list[tuple], int, int]:
    """BG/NBD purchases and Gamma-Gamma spend per customer up to AS_OF; also who is alive then and the purchases
    each customer makes in the following HORIZON weeks (the simulated future the predictions are checked against)."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUE["r"], 1 / TRUE["alpha"], n)
    drop = rng.beta(TRUE["a"], TRUE["b"], n)
    scale = rng.gamma(TRUE["q"], 1 / TRUE["gamma"], n)
    observed_days = rng.integers(140, 547, n)
    events, alive_count, future = [], 0, 0
    for i in range(n):
        first = AS_OF - dt.timedelta(days=int(observed_days[i]))
        weeks = observed_days[i] / 7
        times, t, alive = [0.0], 0.0, True
        while True:
            t += rng.exponential(1 / rate[i])
            if t > weeks:
                break
            times.append(t)
            if rng.random() < drop[i]:
                alive = False
                break
        if alive:
            alive_count += 1
            t = weeks
            while True:
                t += rng.exponential(1 / rate[i])
                if t > weeks + HORIZON:
                    break
                future += 1
                if rng.random() < drop[i]:
                    break
        for at in times:
            day = first + dt.timedelta(days=int(at * 7))
            events.append((i + 1, dt.datetime.combine(day, dt.time(12)), float(rng.gamma(TRUE["p"], 1 / scale[i]))))
    return events, alive_count, future


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    events, alive, future = simulate(10_000, seed=2024)
    fx = Fixture(tmp_path_factory.mktemp("clv"), PROJECT)
    frame = pd.DataFrame(events, columns=["customer_id", "ordered_at", "amount"])
    frame.insert(0, "order_id", range(1, len(frame) + 1))
    fx.con.register("simulated_orders", frame)
    fx.con.execute("CREATE TABLE orders AS SELECT * FROM simulated_orders")
    fx.con.execute("CREATE TABLE customers AS SELECT DISTINCT customer_id, 'x' AS region FROM simulated_orders")
    return {"result": fx.analyze("models"), "alive": alive, "future": future}


def test_bgnbd_and_gamma_gamma_recover_the_true_parameters(simulated: dict) -> None:
    rows = {r["parameter"]: r for r in records(simulated["result"], "parameters")}
    assert set(rows) == set(TRUE)
    for name, true in TRUE.items():
        value, error = rows[name]["value"], rows[name]["std_error"]
        assert error is not None and 0 < error < 0.25 * true, name
        assert abs(value - true) < 4 * error, (name, value, true, error)
        assert value == pytest.approx(true, rel=0.2), name
    summary = records(simulated["result"], "summary")[0]
    assert summary["bgnbd_converged"] and summary["gamma_gamma_converged"]
    assert summary["warnings"] == ""


def test_predictions_match_the_simulated_future(simulated: dict) -> None:
    customers = records(simulated["result"], "customers")
    expected = sum(r["expected_purchases"] for r in customers)
    assert expected == pytest.approx(simulated["future"], rel=0.1)
    assert sum(r["p_alive"] for r in customers) == pytest.approx(simulated["alive"], rel=0.05)
    assert all(r["p_alive"] == 1.0 for r in customers if r["frequency"] == 0)


def test_log_likelihoods_match_the_formulas(simulated: dict) -> None:
    result = simulated["result"]
    v = {r["parameter"]: r["value"] for r in records(result, "parameters")}
    r, alpha, a, b = v["r"], v["alpha"], v["a"], v["b"]
    lg = math.lgamma
    bg = gg = 0.0
    for c in records(result, "customers"):
        x, tx, big_t = c["frequency"], c["recency"], c["T"]
        head = lg(r + x) - lg(r) + r * math.log(alpha) + lg(a + b) + lg(b + x) - lg(b) - lg(a + b + x)
        alive = math.exp(-(r + x) * math.log(alpha + big_t))
        dead = math.exp(math.log(a) - math.log(b + x - 1) - (r + x) * math.log(alpha + tx)) if x > 0 else 0.0
        bg += head + math.log(alive + dead)
        m = c["monetary"]
        if x > 0 and m is not None and m > 0:
            p, q, g = v["p"], v["q"], v["gamma"]
            gg += (
                lg(p * x + q)
                - lg(p * x)
                - lg(q)
                + q * math.log(g)
                + (p * x - 1) * math.log(m)
                + p * x * math.log(x)
                - (p * x + q) * math.log(x * m + g)
            )
    summary = records(result, "summary")[0]
    assert summary["bgnbd_log_likelihood"] == pytest.approx(bg, rel=1e-9)
    assert summary["gamma_gamma_log_likelihood"] == pytest.approx(gg, rel=1e-9)


def test_clv_is_margin_times_spend_times_discounted_purchases(simulated: dict) -> None:
    v = {r["parameter"]: r["value"] for r in records(simulated["result"], "parameters")}
    population = v["p"] * v["gamma"] / (v["q"] - 1)
    for c in records(simulated["result"], "customers")[:500]:
        # no discounting and no margin in this analysis: CLV = spend x expected purchases
        assert c["clv"] == pytest.approx(c["expected_spend"] * c["expected_purchases"], rel=1e-9)
        if c["frequency"] == 0:
            assert c["expected_spend"] == pytest.approx(population)
        else:
            x, m = c["frequency"], c["monetary"]
            assert c["expected_spend"] == pytest.approx(v["p"] * (v["gamma"] + x * m) / (v["p"] * x + v["q"] - 1))


def test_warnings_for_few_repeat_buyers_and_correlated_spend(tmp_path) -> None:
    fx = Fixture(tmp_path, PROJECT)
    fx.table("customers", "customer_id INTEGER, region VARCHAR", [])
    rows, order = [], 0
    for customer in range(1, 41):
        purchases = 1 + customer % 5
        for k in range(purchases):
            order += 1
            # the more often a customer buys, the more each purchase is worth
            rows.append((order, customer, T(2024, 1, 1) + dt.timedelta(days=9 * k + customer), 10.0 * purchases + k))
    fx.table("orders", "order_id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, amount DOUBLE", rows)
    warnings = records(fx.analyze("models"), "summary")[0]["warnings"]
    assert "too few repeat buyers" in warnings
    assert "correlated with frequency" in warnings


def test_parameters_are_checked_against_the_model_at_load(tmp_path) -> None:
    bad = PROJECT.replace(
        'monetary: orders.revenue, as_of: "2024-06-30",\n            time_unit',
        'monetary: orders.amount, as_of: "2024-06-31",\n            time_unit',
    )
    assert bad != PROJECT
    with pytest.raises(ConfigError) as error:
        Fixture(tmp_path, bad)
    text = str(error.value)
    assert "unknown measure 'orders.amount'" in text
    assert "2024-06-31" in text and "crmetrics.yml:" in text


def test_per_customer_outputs_are_dimensions(tmp_path) -> None:
    text = PROJECT.replace(
        "    dimensions: {region: {}}\n", "    dimensions: {region: {}}\n    measures: {customer_count: {agg: count}}\n"
    )
    text = text.replace(
        "analyses:",
        "metrics:\n  customers: {measure: customers.customer_count}\nsegments:\n"
        "  valuable: {entity: customers, where: history.clv >= 5}\nanalyses:",
    )
    fx = Fixture(tmp_path, text)
    fx.table("customers", "customer_id INTEGER, region VARCHAR", [(i, "x") for i in range(1, 7)])
    fx.table("orders", "order_id INTEGER, customer_id INTEGER, ordered_at TIMESTAMP, amount DOUBLE", EVENTS)
    by_frequency = fx.project.query(["customers"], by=["models.frequency"], connection=fx.engine).rows
    expected = summary_reference(EVENTS, AS_OF, "week")
    counts: dict = defaultdict(int)
    for customer in range(1, 7):
        counts[expected[customer]["frequency"] if customer in expected else None] += 1
    assert dict(by_frequency) == dict(counts)
    valuable = fx.project.query(["customers"], segments=["valuable"], connection=fx.engine).rows
    revenue = {c: v["revenue"] for c, v in expected.items() if c in range(1, 7)}
    assert valuable == [(sum(1 for r in revenue.values() if r is not None and 0.25 * r >= 5),)]
