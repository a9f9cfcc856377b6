"""satisfaction: CSAT, average score and response rate with Wilson intervals, against Python references."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from typing import Any

import pytest

from crmetrics.errors import ConfigError
from tests.value_fixture import Fixture, records

PROJECT = """
version: 1
name: service
entities:
  customers:
    table: customers
    key: customer_id
    dimensions: {region: {}}
  tickets:
    table: tickets
    key: ticket_id
    time: opened_at
    joins: {customers: customer_id}
    dimensions:
      channel: {}
      csat: {column: score, type: number}
      opened_at: {type: time}
analyses:
  csat: {method: satisfaction, entity: tickets, score: tickets.csat, by: [customers.region, tickets.channel],
         over_time: month, min_sample: 3}
  nps_like: {method: satisfaction, entity: tickets, score: score, scale: [0, 10], top_box: 2, confidence: 0.9}
"""

CUSTOMERS = [(1, "Nord"), (2, "Süd"), (3, None)]
TICKETS = [
    (1, 1, 5, "mail", dt.datetime(2024, 1, 3, 10)),
    (2, 1, 4, "mail", dt.datetime(2024, 1, 31, 23, 59)),  # the last minute of January
    (3, 1, None, "mail", dt.datetime(2024, 2, 1, 0, 0)),  # not answered; the first minute of February
    (4, 2, 1, "chat", dt.datetime(2024, 2, 3)),
    (5, 2, 3, "chat", dt.datetime(2024, 2, 4)),
    (6, 2, 4, "chat", dt.datetime(2024, 2, 5)),
    (7, 3, 9, "chat", dt.datetime(2024, 2, 6)),  # outside the 1..5 scale
    (8, 42, 5, None, None),  # unknown customer, channel and time
    (9, 1, 2, "phone", dt.datetime(2024, 3, 1)),
    (10, 2, None, "phone", dt.datetime(2024, 3, 2)),
]
Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float) -> tuple[float | None, float | None, float | None]:
    if n == 0:
        return None, None, None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return p, centre - half, centre + half


def reference(rows: list[tuple[Any, Any]], low: float, high: float, top: int, z: float) -> dict[Any, dict]:
    """rows: (group, score) -> per group the counts and rates."""
    groups: dict[Any, list] = defaultdict(list)
    for group, score in rows:
        groups[group].append(score)
    out = {}
    for group, scores in groups.items():
        answered = [s for s in scores if s is not None and low <= s <= high]
        satisfied = [s for s in answered if s >= high - top + 1]
        rr, rr_low, rr_high = wilson(len(answered), len(scores), z)
        csat, c_low, c_high = wilson(len(satisfied), len(answered), z)
        out[group] = {
            "invited": len(scores),
            "responses": len(answered),
            "satisfied": len(satisfied),
            "out_of_scale": sum(1 for s in scores if s is not None and not low <= s <= high),
            "avg_score": sum(answered) / len(answered) if answered else None,
            "response_rate": rr,
            "response_rate_low": rr_low,
            "response_rate_high": rr_high,
            "csat": csat,
            "csat_low": c_low,
            "csat_high": c_high,
        }
    return out


def check(table: list[dict], column: str | None, expected: dict[Any, dict], min_sample: int) -> None:
    got = {row[column] if column else None: row for row in table}
    assert set(got) == set(expected)
    for group, values in expected.items():
        for name, value in values.items():
            assert got[group][name] == pytest.approx(value, rel=1e-9, abs=1e-12), (group, name)
        assert got[group]["low_sample"] == (values["responses"] < min_sample)


@pytest.fixture
def service(tmp_path) -> Fixture:
    fx = Fixture(tmp_path, PROJECT)
    fx.table("customers", "customer_id INTEGER, region VARCHAR", CUSTOMERS)
    fx.table(
        "tickets",
        "ticket_id INTEGER, customer_id INTEGER, score INTEGER, channel VARCHAR, opened_at TIMESTAMP",
        TICKETS,
    )
    return fx


def test_overall(service: Fixture) -> None:
    result = service.analyze("csat")
    check(records(result, "overall"), None, reference([(None, t[2]) for t in TICKETS], 1, 5, 2, Z95), 3)
    figures = {f.name: f.value for f in result.figures}
    assert figures["csat"] == pytest.approx(4 / 7)
    assert figures["responses"] == 7


def test_by_dimensions_and_orphans(service: Fixture) -> None:
    result = service.analyze("csat")
    region = dict(CUSTOMERS)
    by_region = reference([(region.get(t[1]), t[2]) for t in TICKETS], 1, 5, 2, Z95)
    check(records(result, "customers.region"), "customers.region", by_region, 3)
    assert [r["customers.region"] for r in records(result, "customers.region")] == ["Nord", "Süd", None]
    by_channel = reference([(t[3], t[2]) for t in TICKETS], 1, 5, 2, Z95)
    check(records(result, "tickets.channel"), "tickets.channel", by_channel, 3)
    total = sum(r["invited"] for r in records(result, "customers.region"))
    assert total == len(TICKETS)  # groups add up to the total, the orphan ticket included


def test_over_time_month_boundaries(service: Fixture) -> None:
    result = service.analyze("csat")
    month = [(t[4].date().replace(day=1) if t[4] else None, t[2]) for t in TICKETS]
    check(records(result, "over_time"), "period", reference(month, 1, 5, 2, Z95), 3)
    january = records(result, "over_time")[0]
    assert january["period"] == dt.date(2024, 1, 1) and january["invited"] == 2


def test_scale_top_box_and_confidence(service: Fixture) -> None:
    result = service.analyze("nps_like")
    z90 = 1.6448536269514722
    check(records(result, "overall"), None, reference([(None, t[2]) for t in TICKETS], 0, 10, 2, z90), 30)


def test_known_wilson_interval(tmp_path) -> None:
    fx = Fixture(tmp_path, PROJECT)
    fx.table("customers", "customer_id INTEGER, region VARCHAR", [])
    fx.table(
        "tickets",
        "ticket_id INTEGER, customer_id INTEGER, score INTEGER, channel VARCHAR, opened_at TIMESTAMP",
        [(i, 1, 5 if i <= 8 else 1, "mail", dt.datetime(2024, 1, 1)) for i in range(1, 11)],
    )
    overall = records(fx.analyze("csat"), "overall")[0]
    # 8 of 10 at 95%: the Wilson interval is [0.4902, 0.9433] (Newcombe 1998)
    assert overall["csat_low"] == pytest.approx(0.4902, abs=1e-4)
    assert overall["csat_high"] == pytest.approx(0.9433, abs=1e-4)
    assert overall["response_rate_high"] == pytest.approx(1.0)


def test_no_rows(tmp_path) -> None:
    fx = Fixture(tmp_path, PROJECT)
    fx.table("customers", "customer_id INTEGER, region VARCHAR", [])
    fx.table(
        "tickets", "ticket_id INTEGER, customer_id INTEGER, score INTEGER, channel VARCHAR, opened_at TIMESTAMP", []
    )
    result = fx.analyze("csat")
    overall = records(result, "overall")[0]
    assert overall["invited"] == 0 and overall["csat"] is None and overall["csat_low"] is None
    assert overall["low_sample"] is True
    assert records(result, "customers.region") == []


def test_low_samples_are_noted(service: Fixture) -> None:
    notes = service.analyze("csat").notes
    assert any(n.startswith("tickets.channel:") and "fewer than 3" in n for n in notes)


def test_segment_and_where(service: Fixture) -> None:
    result = service.analyze("csat", where="customers.region = 'Süd'")
    expected = reference([(None, t[2]) for t in TICKETS if t[1] == 2], 1, 5, 2, Z95)
    check(records(result, "overall"), None, expected, 3)


def test_bad_parameters_are_config_errors(service: Fixture) -> None:
    with pytest.raises(ConfigError, match="expected 2 items"):
        service.analyze("csat", scale=[1, 2, 3])
    with pytest.raises(ConfigError, match="not one of"):
        service.analyze("csat", over_time="fortnight")


def test_parameters_are_checked_against_the_model_at_load(tmp_path) -> None:
    bad = PROJECT.replace("by: [customers.region, tickets.channel]", "by: [customers.regio, tickets.channel]").replace(
        "scale: [0, 10]", "scale: [10, 0]"
    )
    with pytest.raises(ConfigError) as error:
        Fixture(tmp_path, bad)
    text = str(error.value)
    assert "unknown dimension 'customers.regio'" in text
    assert "lowest < highest" in text
