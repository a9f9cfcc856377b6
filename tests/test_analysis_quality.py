"""quality: completeness, duplicates, staleness, orphans and validity, against counts made in Python."""

from __future__ import annotations

import datetime as dt

import pytest

from crmetrics.errors import ConfigError
from tests.value_fixture import Fixture, records

PROJECT = """
version: 1
name: crm
entities:
  customers:
    table: customers
    key: customer_id
    dimensions:
      email: {}
      phone: {}
      gender: {}
      age: {type: number}
      tenant_id: {type: number}
      updated_at: {type: time}
    quality:
      natural_keys:
        email: {column: email, normalize: email}
        phone: {column: phone, normalize: phone}
        name: lower(trim(name))
      accepted_values: {gender: [f, m, x]}
      ranges: {age: {min: 18, max: 99}, signed_up: {min: "2020-01-01"}}
      staleness: {column: updated_at, days: 30}
  orders:
    table: orders
    key: order_id
    joins: {customers: customer_id}
    dimensions: {tenant_id: {type: number}}
analyses:
  dq: {method: quality, as_of: "2024-06-30"}
  dq_customers: {method: quality, entities: customers, as_of: "2024-06-30"}
  dq_orders: {method: quality, entities: orders, as_of: "2024-06-30"}
"""

CUSTOMERS = [
    # id, email, phone, gender, age, updated_at, name, signed_up, tenant
    (1, "Ann@Example.com", "+1 555-0100", "f", 30, dt.datetime(2024, 6, 1), "Ann", dt.date(2021, 1, 1), 1),
    (2, " ann@example.COM ", "1 (555) 0100", "F", 17, dt.datetime(2024, 5, 31), "ann ", dt.date(2019, 5, 1), 1),
    (3, None, None, None, None, None, "Björn", None, 1),
    (3, "bjorn@example.com", "555.0101", "m", 120, dt.datetime(2024, 5, 30, 23), "björn", dt.date(2022, 2, 2), 2),
    (4, "zoë@example.com", None, "x", 99, dt.datetime(2024, 1, 1), "Zoë", dt.date(2020, 1, 1), 2),
]
ORDERS = [(1, 1, 1), (2, 5, 1), (3, None, 1), (4, 3, 2), (5, 4, 1), (6, 77, 2)]


@pytest.fixture
def crm(tmp_path) -> Fixture:
    fx = Fixture(tmp_path, PROJECT)
    fx.table(
        "customers",
        "customer_id INTEGER, email VARCHAR, phone VARCHAR, gender VARCHAR, age INTEGER, updated_at TIMESTAMP, "
        "name VARCHAR, signed_up DATE, tenant_id INTEGER",
        CUSTOMERS,
    )
    fx.table("orders", "order_id INTEGER, customer_id INTEGER, tenant_id INTEGER", ORDERS)
    return fx


def dupes(values: list) -> tuple[int, int, int, int]:
    """(non-null, distinct, groups with more than one row, rows in those groups), NULLs never duplicates."""
    known = [v for v in values if v is not None]
    counts = {v: known.count(v) for v in set(known)}
    groups = [c for c in counts.values() if c > 1]
    return len(known), len(counts), len(groups), sum(groups)


def test_completeness(crm: Fixture) -> None:
    rows = {(r["entity"], r["column"]): r for r in records(crm.analyze("dq"), "completeness")}
    columns = {"customer_id": 0, "email": 1, "phone": 2, "gender": 3, "age": 4, "tenant_id": 8, "updated_at": 5}
    for column, index in columns.items():
        filled = sum(1 for c in CUSTOMERS if c[index] is not None)
        row = rows[("customers", column)]
        assert (row["rows"], row["non_null"]) == (len(CUSTOMERS), filled)
        assert row["completeness"] == pytest.approx(filled / len(CUSTOMERS))
    assert rows[("orders", "order_id")]["completeness"] == 1.0


def test_duplicates_by_key_and_normalised_natural_keys(crm: Fixture) -> None:
    rows = {(r["entity"], r["key"]): r for r in records(crm.analyze("dq"), "duplicates")}
    expected = {
        "customer_id": dupes([c[0] for c in CUSTOMERS]),
        "email": dupes([c[1].replace(" ", "").lower() if c[1] else None for c in CUSTOMERS]),
        "phone": dupes(["".join(ch for ch in c[2] if ch not in " -.()/+") if c[2] else None for c in CUSTOMERS]),
        "name": dupes([c[6].strip().lower() for c in CUSTOMERS]),
    }
    assert expected["email"] == (4, 3, 1, 2)  # the two Anns differ only in case and spacing
    assert expected["name"] == (5, 3, 2, 4)  # unicode lower-casing: Björn and björn
    for key, (non_null, distinct, groups, duplicated) in expected.items():
        row = rows[("customers", key)]
        assert row["kind"] == ("key" if key == "customer_id" else "natural key")
        assert (row["non_null"], row["distinct"], row["duplicate_groups"], row["duplicate_rows"]) == (
            non_null,
            distinct,
            groups,
            duplicated,
        )
        assert row["duplicate_rate"] == pytest.approx((non_null - distinct) / non_null)
    assert rows[("orders", "order_id")]["duplicate_rate"] == 0


def test_staleness_boundary(crm: Fixture) -> None:
    (row,) = records(crm.analyze("dq"), "staleness")
    cutoff = dt.date(2024, 6, 30) - dt.timedelta(days=30)  # 2024-05-31: updated that day is still fresh
    stale = sum(1 for c in CUSTOMERS if c[5] is None or c[5].date() < cutoff)
    assert stale == 3
    assert (row["rows"], row["stale"], row["unknown"], row["days"]) == (5, stale, 1, 30)
    assert row["stale_rate"] == pytest.approx(stale / 5)


def test_orphans_per_join(crm: Fixture) -> None:
    (row,) = records(crm.analyze("dq"), "integrity")
    known = {c[0] for c in CUSTOMERS}
    with_reference = [o for o in ORDERS if o[1] is not None]
    orphans = [o for o in with_reference if o[1] not in known]
    assert (row["entity"], row["join"], row["column"]) == ("orders", "customers", "customer_id")
    assert (row["rows"], row["with_reference"], row["orphans"]) == (len(ORDERS), len(with_reference), len(orphans))
    # customer 3 appears twice in customers: the order is not counted twice
    assert row["orphan_rate"] == pytest.approx(2 / 5)


def test_accepted_values_and_ranges(crm: Fixture) -> None:
    rows = {(r["column"], r["rule"]): r for r in records(crm.analyze("dq"), "validity")}
    gender = rows[("gender", "accepted_values")]
    assert (gender["checked"], gender["invalid"]) == (4, 1)  # 'F' is not 'f'; NULL is not checked
    age = rows[("age", "range")]
    assert (age["checked"], age["invalid"]) == (4, 2)  # 17 and 120; 99 is inside the closed range
    signed = rows[("signed_up", "range")]
    assert (signed["checked"], signed["invalid"]) == (4, 1)  # 2019-05-01 is before 2020-01-01


def test_entities_parameter_and_unknown_entity(crm: Fixture) -> None:
    result = crm.analyze("dq_customers")
    assert {r["entity"] for r in records(result, "completeness")} == {"customers"}
    assert records(result, "integrity") == []
    with pytest.raises(ConfigError, match="unknown entity 'customer'"):
        crm.analyze("dq", entities=["customer"])


def test_row_level_security_applies(tmp_path) -> None:
    fx = Fixture(
        tmp_path,
        PROJECT.replace(
            "analyses:",
            """security:
  row_filters:
    customers: "customers.tenant_id = :tenant"
    orders: "orders.tenant_id = :tenant"
analyses:""",
        ),
    )
    fx.table(
        "customers",
        "customer_id INTEGER, email VARCHAR, phone VARCHAR, gender VARCHAR, age INTEGER, "
        "updated_at TIMESTAMP, name VARCHAR, signed_up DATE, tenant_id INTEGER",
        CUSTOMERS,
    )
    fx.table("orders", "order_id INTEGER, customer_id INTEGER, tenant_id INTEGER", ORDERS)
    result = fx.analyze("dq", context={"tenant": 1})
    completeness = {(r["entity"], r["column"]): r for r in records(result, "completeness")}
    assert completeness[("customers", "customer_id")]["rows"] == 3
    (row,) = records(result, "integrity")
    # tenant 1's orders: 1 -> customer 1 (tenant 1), 2 -> 5 (missing), 3 -> NULL, 5 -> 4 (tenant 2, not visible)
    assert (row["rows"], row["with_reference"], row["orphans"]) == (4, 3, 2)


def test_quality_block_is_validated(tmp_path) -> None:
    bad = PROJECT.replace("normalize: phone", "normalize: telephone").replace(
        "name: lower(trim(name))", "name: lower(orders.name)"
    )
    with pytest.raises(ConfigError) as error:
        Fixture(tmp_path, bad)
    text = str(error.value)
    assert "'telephone' is not one of" in text
    assert "names another entity" in text
    assert "crmetrics.yml:" in text


def test_figures_and_notes(crm: Fixture) -> None:
    result = crm.analyze("dq")
    figures = {f.name: f.value for f in result.figures}
    assert figures["orphans"] == 2
    assert figures["records"] == len(CUSTOMERS) + len(ORDERS)
    assert any("orphan" in n for n in result.notes)


def test_parameters_are_checked_against_the_model_at_load(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown entity 'customer'"):
        Fixture(tmp_path, PROJECT.replace("entities: customers,", "entities: customer,"))


def test_analysis_output_entities_are_not_orphan_checks(tmp_path) -> None:
    # customers 2 and 3 never ordered, so the RFM analysis scores only some of them; its output entity is joined
    # onto customers automatically, and an unscored customer is not an orphan reference
    project = PROJECT.replace(
        "    dimensions: {tenant_id: {type: number}}",
        "    time: ordered_at\n    dimensions: {tenant_id: {type: number}}\n    measures: {order_count: {agg: count}}",
    ).replace(
        "analyses:",
        "analyses:\n  scores: {method: rfm, entity: customers, events: orders, monetary: orders.order_count}",
    )
    fx = Fixture(tmp_path, project)
    fx.table(
        "customers",
        "customer_id INTEGER, email VARCHAR, phone VARCHAR, gender VARCHAR, age INTEGER, "
        "updated_at TIMESTAMP, name VARCHAR, signed_up DATE, tenant_id INTEGER",
        CUSTOMERS,
    )
    orders = [(*row, dt.datetime(2024, 1, row[0])) for row in ORDERS]
    fx.table("orders", "order_id INTEGER, customer_id INTEGER, tenant_id INTEGER, ordered_at TIMESTAMP", orders)
    result = fx.analyze("dq")
    joins = [(r["entity"], r["join"]) for r in records(result, "integrity")]
    assert joins == [("orders", "customers")]
    # orders 2 (customer 5) and 6 (customer 77) point at no customer; order 3 has no customer at all
    assert {f.name: f.value for f in result.figures}["orphans"] == 2


def test_notes_say_which_checks_had_no_rules(crm: Fixture) -> None:
    # dq_customers checks customers only, which declare staleness and validity rules: nothing to report missing
    assert not any("not checked" in n for n in crm.analyze("dq_customers").notes)
    notes = crm.analyze("dq_orders").notes
    assert any(n.startswith("Staleness was not checked") for n in notes)
    assert any(n.startswith("Validity was not checked") for n in notes)
