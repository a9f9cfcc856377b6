"""basket: association rules checked against a pure-Python count of the baskets the test builds."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from itertools import combinations
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmetrics.analysis import basket
from crmetrics.analysis.base import AnalysisContext
from crmetrics.compiler import render
from crmetrics.errors import ConfigError
from tests.value_fixture import Fixture, records

PROJECT = """
version: 1
name: shop
entities:
  products:
    table: products
    key: product_id
    dimensions: {category: {}}
  orders:
    table: orders
    key: order_id
    dimensions: {channel: {}}
  lines:
    table: lines
    key: line_id
    joins: {orders: order_id, products: product_id}
analyses:
  pairs: {method: basket, entity: lines, order: orders, item: products, min_support: 0}
  categories: {method: basket, entity: lines, order: orders, item: products.category, min_support: 0}
"""

PRODUCTS = [(1, "fruit"), (2, "fruit"), (3, "Milchprodukte 乳製品"), (4, "Milchprodukte 乳製品"), (5, None)]
ORDERS = [(o, "web" if o % 2 else "shop") for o in range(1, 12)]
LINES = [
    # order 1: product 2 on two lines counts once
    (1, 1, 1),
    (2, 1, 2),
    (3, 1, 2),
    (4, 2, 1),
    (5, 2, 2),
    (6, 2, 3),
    (7, 3, 1),  # a single-line order: counts as a basket, forms no pair
    (8, 4, 3),
    (9, 5, 1),
    (10, 5, 3),
    (11, 5, 4),
    (12, 6, None),  # a line without a product
    (13, None, 1),  # a line without an order
    (14, 99, 1),
    (15, 99, 4),  # an order missing from orders: still a basket of its own
    (16, 7, 4),
    (17, 7, 5),
    (18, 8, 6),  # product 6 is missing from products (no category)
    (19, 8, 5),
]


def reference(lines: list[tuple], min_support: float = 0.0, min_confidence: float = 0.0, size: int = 2) -> dict:
    """Rules {antecedent...} -> consequent with their measures, counted in Python from the baskets."""
    baskets: dict[Any, set] = defaultdict(set)
    for order, item in lines:
        if order is not None and item is not None:
            baskets[order].add(item)
    n = len(baskets)
    count: Counter = Counter()
    for items in baskets.values():
        for k in range(1, size + 1):
            count.update(combinations(sorted(items), k))
    rules = {}
    for itemset, c in count.items():
        if len(itemset) != size or c / n < min_support:
            continue
        for consequent in itemset:
            antecedent = tuple(i for i in itemset if i != consequent)
            confidence = c / count[antecedent]
            if confidence < min_confidence:
                continue
            cons_support = count[(consequent,)] / n
            rules[(*antecedent, consequent)] = {
                "orders": c,
                "support": c / n,
                "confidence": confidence,
                "lift": confidence / cons_support,
                "leverage": c / n - count[antecedent] / n * cons_support,
                "conviction": None if confidence == 1 else (1 - cons_support) / (1 - confidence),
            }
    return rules


def as_rules(rows: list[dict], width: int = 1) -> dict:
    names = ["antecedent"] if width == 1 else ["antecedent_1", "antecedent_2"]
    return {(*(r[n] for n in names), r["consequent"]): {k: r[k] for k in basket.METRICS} for r in rows}


def assert_same(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, values in expected.items():
        for name, value in values.items():
            if value is None:  # conviction of a rule that always holds
                assert got[key][name] is None, (key, name)
            else:
                assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-12), (key, name)


@pytest.fixture
def shop(tmp_path) -> Fixture:
    fx = Fixture(tmp_path, PROJECT)
    fx.table("products", "product_id INTEGER, category VARCHAR", PRODUCTS)
    fx.table("orders", "order_id INTEGER, channel VARCHAR", ORDERS)
    fx.table("lines", "line_id INTEGER, order_id INTEGER, product_id INTEGER", LINES)
    return fx


def test_pair_rules_match_the_reference(shop: Fixture) -> None:
    result = shop.analyze("pairs")
    expected = reference([(o, p) for _, o, p in LINES])
    assert_same(as_rules(records(result, "rules")), expected)
    # 2 -> 1 always holds: conviction is infinite, reported as NULL
    assert as_rules(records(result, "rules"))[(2, 1)]["conviction"] is None


def test_items_and_summary_count_each_order_once(shop: Fixture) -> None:
    result = shop.analyze("pairs")
    items = {r["item"]: r["orders"] for r in records(result, "items")}
    assert items == {1: 5, 2: 2, 3: 3, 4: 3, 5: 2, 6: 1}
    summary = records(result, "summary")[0]
    assert summary["orders"] == 8  # orders 1-5, 7, 8 and 99; order 6 has no product
    assert summary["lines"] == len(LINES)
    assert summary["lines_without_item"] == 1
    assert summary["lines_without_order"] == 1
    assert summary["items"] == 6
    assert summary["rules"] == len(records(result, "rules"))


@pytest.mark.parametrize(("min_support", "min_confidence"), [(0.2, 0.0), (0.25, 0.5), (0.0, 0.6), (0.5, 0.0)])
def test_thresholds(shop: Fixture, min_support: float, min_confidence: float) -> None:
    result = shop.analyze("pairs", min_support=min_support, min_confidence=min_confidence)
    expected = reference([(o, p) for _, o, p in LINES], min_support, min_confidence)
    assert_same(as_rules(records(result, "rules")), expected)


def test_rules_are_ordered_by_lift_then_confidence(shop: Fixture) -> None:
    rows = records(shop.analyze("pairs"), "rules")
    keys = [(-r["lift"], -r["confidence"], -r["support"], r["antecedent"], r["consequent"]) for r in rows]
    assert keys == sorted(keys)


def test_top_rules_keep_ties_together(shop: Fixture) -> None:
    result = shop.analyze("pairs", top_n=1)
    rules = records(result, "rules")
    top = records(result, "top_rules")
    for antecedent in {r["antecedent"] for r in rules}:
        mine = [r for r in rules if r["antecedent"] == antecedent]
        best = max((r["lift"], r["confidence"]) for r in mine)
        expected = {r["consequent"] for r in mine if (r["lift"], r["confidence"]) == best}
        assert {r["consequent"] for r in top if r["antecedent"] == antecedent} == expected
    assert all(r["rank"] == 1 for r in top)


def test_triples_match_the_reference(shop: Fixture) -> None:
    result = shop.analyze("pairs", triples=True)
    expected = reference([(o, p) for _, o, p in LINES], size=3)
    assert expected  # orders 2 and 5 hold three items
    assert_same(as_rules(records(result, "triple_rules"), 2), expected)


def test_items_can_be_a_dimension(shop: Fixture) -> None:
    categories = dict(PRODUCTS)
    lines = [(o, categories.get(p)) for _, o, p in LINES]
    result = shop.analyze("categories")
    assert_same(as_rules(records(result, "rules")), reference(lines))


def test_where_filters_the_orders(shop: Fixture) -> None:
    result = shop.analyze("pairs", where="orders.channel = 'web'")
    web = {o for o, channel in ORDERS if channel == "web"}
    expected = reference([(o, p) for _, o, p in LINES if o in web])
    assert_same(as_rules(records(result, "rules")), expected)


def test_random_baskets_with_triples(tmp_path) -> None:
    rng = random.Random(11)
    lines, line_id = [], 0
    for order in range(1, 401):
        for _ in range(rng.randint(1, 5)):
            line_id += 1
            lines.append((line_id, order, rng.choice([1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])))
    fx = Fixture(tmp_path, PROJECT)
    fx.table("products", "product_id INTEGER, category VARCHAR", [])
    fx.table("orders", "order_id INTEGER, channel VARCHAR", [])
    fx.table("lines", "line_id INTEGER, order_id INTEGER, product_id INTEGER", lines)
    result = fx.analyze("pairs", min_support=0.02, min_confidence=0.1, triples=True)
    pairs = [(o, p) for _, o, p in lines]
    assert_same(as_rules(records(result, "rules")), reference(pairs, 0.02, 0.1))
    assert_same(as_rules(records(result, "triple_rules"), 2), reference(pairs, 0.02, 0.1, size=3))


def test_no_lines(tmp_path) -> None:
    fx = Fixture(tmp_path, PROJECT)
    fx.table("products", "product_id INTEGER, category VARCHAR", [])
    fx.table("orders", "order_id INTEGER, channel VARCHAR", [])
    fx.table("lines", "line_id INTEGER, order_id INTEGER, product_id INTEGER", [])
    result = fx.analyze("pairs", triples=True)
    assert records(result, "rules") == [] and records(result, "triple_rules") == []
    assert records(result, "summary")[0]["orders"] == 0


def test_unknown_item_reference(shop: Fixture) -> None:
    with pytest.raises(ConfigError, match="unknown entity 'product'"):
        shop.analyze("pairs", item="product")


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery", "sqlite", "spark"])
def test_sql_renders_in_other_dialects(shop: Fixture, dialect: str) -> None:
    ctx = AnalysisContext(
        "pairs", dict(shop.project.model.analyses["pairs"].params) | {"triples": True}, shop.project.model, shop.engine
    )
    sql = render(basket._rules_query(ctx, basket._base_ctes(ctx), True), dialect)
    assert "basket_triples" in sql


def test_postgres_sql_gives_the_same_rules_on_duckdb(shop: Fixture) -> None:
    ctx = AnalysisContext("pairs", dict(shop.project.model.analyses["pairs"].params), shop.project.model, shop.engine)
    sql = render(basket._rules_query(ctx, basket._base_ctes(ctx), False), "postgres")
    rows = shop.con.execute(sql).fetchall()
    assert rows == shop.analyze("pairs").tables["rules"].rows


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(
        st.tuples(st.none() | st.integers(1, 8), st.none() | st.sampled_from(["a", "B", "b", "ä", "中"])), max_size=40
    ),
    min_support=st.sampled_from([0.0, 0.1, 0.25]),
    min_confidence=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_any_baskets_match_the_reference(shop: Fixture, lines: list, min_support: float, min_confidence: float) -> None:
    shop.con.execute("DROP TABLE IF EXISTS lines")
    shop.con.execute("CREATE TABLE lines (line_id INTEGER, order_id INTEGER, product_id VARCHAR)")
    if lines:
        shop.con.executemany("INSERT INTO lines VALUES (?, ?, ?)", [(i, o, p) for i, (o, p) in enumerate(lines)])
    result = shop.analyze("pairs", min_support=min_support, min_confidence=min_confidence, triples=True)
    assert_same(as_rules(records(result, "rules")), reference(lines, min_support, min_confidence))
    assert_same(as_rules(records(result, "triple_rules"), 2), reference(lines, min_support, min_confidence, size=3))


def test_parameters_are_checked_against_the_model_at_load(tmp_path) -> None:
    bad = PROJECT.replace("item: products.category", "item: produkts.category").replace(
        "order: orders, item: products, min", "order: order, item: products, min"
    )
    with pytest.raises(ConfigError) as error:
        Fixture(tmp_path, bad)
    text = str(error.value)
    assert "unknown dimension 'produkts.category'" in text
    assert "unknown entity 'order'" in text
