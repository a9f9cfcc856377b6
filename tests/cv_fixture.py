"""Generated CRM data for the customer-value analyses (rfm, profile, quadrant, pareto, new_vs_returning).

The rows are kept in Python so that every test can compute its expected numbers independently; the same rows go
into a DuckDB file under the tiny CRM project of `crmetrics.testing`. The generator makes ties on purpose (amounts
and dates from small sets), NULL amounts and regions, customers without orders, orders of unknown customers, a
region with a single customer ('solo') and a segment that matches nobody ('empty'), across two tenants.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmetrics.testing import TINY_ROWS, write_project

REGIONS = ("north", "south", "east", None)
AMOUNTS = (10.0, 20.0, 20.0, 50.0, 100.0, None)
START = dt.date(2024, 1, 1)


@dataclass
class Customer:
    id: int
    name: str
    region: str | None
    tenant: int
    signed_up: dt.date


@dataclass
class Order:
    id: int
    customer: int
    day: dt.date
    amount: float | None
    channel: str
    tenant: int


@dataclass
class Data:
    customers: list[Customer] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)

    def by_id(self) -> dict[int, Customer]:
        return {c.id: c for c in self.customers}

    def rows(self) -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
        return {
            "customers": (
                TINY_ROWS["customers"][0],
                [(c.id, c.name, c.region, c.tenant, c.signed_up) for c in self.customers],
            ),
            "orders": (
                TINY_ROWS["orders"][0],
                [(o.id, o.customer, o.day, o.amount, o.channel, o.tenant) for o in self.orders],
            ),
            "nps_responses": TINY_ROWS["nps_responses"],
        }


def generate(seed: int = 1, customers: int = 60) -> Data:
    """Customers 1..n (about a fifth without orders), one 'solo' customer, a few orphan orders."""
    rng = random.Random(seed)
    data = Data()
    for cid in range(1, customers + 1):
        region = "solo" if cid == 7 else rng.choice(REGIONS)
        tenant = 1 if cid % 3 else 2
        data.customers.append(Customer(cid, f"Kunde {cid} Ø ü", region, tenant, START - dt.timedelta(days=cid)))
    order_id = 1
    for customer in data.customers:
        if rng.random() < 0.2 and customer.region != "solo":
            continue  # no orders (the single customer of 'solo' always has some)
        for _ in range(rng.randint(1, 6)):
            day = START + dt.timedelta(days=rng.choice(range(0, 200, 7)))  # weekly: many tied dates
            channel = rng.choice(("web", "store"))
            data.orders.append(Order(order_id, customer.id, day, rng.choice(AMOUNTS), channel, customer.tenant))
            order_id += 1
    for _ in range(3):  # orders of an unknown customer
        data.orders.append(Order(order_id, 999, START + dt.timedelta(days=30), 40.0, "web", 1))
        order_id += 1
    return data


SEGMENTS = {
    "north": {"entity": "customers", "where": "customers.region = 'north'"},
    "solo": {"entity": "customers", "where": "customers.region = 'solo'"},
    "empty": {"entity": "customers", "where": "customers.region = 'nowhere'"},
}


def project_file(folder: Path, data: Data, analyses: dict[str, Any], **extra: Any) -> Path:
    """The tiny CRM project over `data`, with the test segments and `analyses`."""
    segments = {**SEGMENTS, **extra.pop("segments", {})}
    return write_project(folder, analyses, rows=data.rows(), segments=segments, **extra)


# --- the plain-Python building blocks of the references -------------------------------------------------------


def visible_orders(data: Data, tenant: int | None = None, region: str | None = "*") -> list[tuple[Order, Customer]]:
    """Orders with their (existing, visible) customer; `region` '*' means any."""
    customers = data.by_id()
    found = []
    for order in data.orders:
        customer = customers.get(order.customer)
        if customer is None or (tenant is not None and (customer.tenant != tenant or order.tenant != tenant)):
            continue
        if region != "*" and customer.region != region:
            continue
        found.append((order, customer))
    return found


def min_rank(values: list[Any], value: Any, nulls_lowest: bool = True) -> int:
    """1-based minimum rank of `value` in ascending order (NULLs first when `nulls_lowest`)."""

    def below(other: Any) -> bool:
        if other is None:
            return value is not None and nulls_lowest
        return value is not None and other < value

    return 1 + sum(1 for other in values if below(other))
