"""Data for the lifecycle-analysis tests: seeded random rows plus hand-made awkward cases, kept in Python.

The tests compute their expected numbers from `LifecycleData` in pure Python, independently of crmetrics; the same
rows are written to a DuckDB file that a small project describes.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

STAGES = ["prospecting", "qualification", "proposal", "negotiation", "closed_won"]
OPEN_STAGES = STAGES[:-1]

PROJECT_YAML = """\
version: 1
name: lifecycle_test
connection: duckdb:///crm.duckdb
entities:
  customers:
    table: customers
    key: customer_id
    dimensions:
      channel: {}
      signed_up_at: {type: time}
      tenant_id: {type: number}
  orders:
    table: orders
    key: order_id
    time: ordered_at
    joins:
      customers: customer_id
    dimensions:
      ordered_at: {type: time}
      status: {}
    measures:
      revenue: {agg: sum, expr: amount}
      order_count: {agg: count}
      avg_amount: {agg: avg, expr: amount}
  leads:
    table: leads
    key: lead_id
    time: created_at
    dimensions:
      source: {}
      created_at: {type: time}
      converted_at: {type: time}
  opportunities:
    table: opportunities
    key: opportunity_id
    time: created_at
    dimensions:
      opportunity_id: {type: number}
      owner: {}
      region: {}
      stage: {}
      last_stage: {}
      kept_stage: {expr: "COALESCE(last_stage, stage)", description: the stage column of a CRM that keeps it on loss}
      is_lost: {expr: "stage = 'closed_lost'", type: boolean}
      created_at: {type: time}
      closed_at: {type: time}
      t_prospecting: {type: time}
      t_qualification: {type: time}
      t_proposal: {type: time}
      t_negotiation: {type: time}
      t_won: {type: time}
      lost_at: {type: time}
    measures:
      amount: {agg: sum, expr: amount}
  stage_history:
    table: stage_history
    time: entered_at
    joins:
      opportunities: opportunity_id
    dimensions:
      stage: {}
      entered_at: {type: time}
  contracts:
    table: contracts
    key: contract_id
    time: started_at
    dimensions:
      started_at: {type: time}
      ended_at: {type: time}
      plan: {}
    measures:
      mrr: {agg: sum, expr: mrr}
segments:
  web_customers: {entity: customers, where: "customers.channel = 'web'"}
security:
  row_filters:
    customers: "customers.tenant_id = :tenant_id"
analyses:
  retention: {method: cohort, entity: customers, events: orders, grain: month}
  retention_by_signup: {method: cohort, entity: customers, events: orders, cohort_by: customers.signed_up_at}
  lead_time: {method: time_to_event, entity: leads, start: leads.created_at, end: leads.converted_at}
  stage_funnel:
    method: funnel
    entity: opportunities
    stages: [prospecting, qualification, proposal, negotiation, closed_won]
    stage: opportunities.stage
    last_stage: opportunities.last_stage
    lost_stages: [closed_lost]
  time_funnel:
    method: funnel
    entity: opportunities
    stages: [prospecting, qualification, proposal, negotiation, closed_won]
    stage_times: [opportunities.t_prospecting, opportunities.t_qualification, opportunities.t_proposal,
                  opportunities.t_negotiation, opportunities.t_won]
    lost_at: opportunities.lost_at
  history_funnel:
    method: funnel
    entity: opportunities
    stages: [prospecting, qualification, proposal, negotiation, closed_won]
    history: stage_history
    history_stage: stage_history.stage
    lost_stages: [closed_lost]
  forecast:
    method: pipeline
    entity: opportunities
    amount: opportunities.amount
    stage: opportunities.stage
    stages: [prospecting, qualification, proposal, negotiation]
    won_stages: [closed_won]
    lost_stages: [closed_lost]
    last_stage: opportunities.last_stage
    closed: opportunities.closed_at
  activity_churn:
    method: churn
    entity: customers
    events: orders
    grain: month
    inactivity_days: 60
  contract_churn:
    method: churn
    entity: contracts
    start: contracts.started_at
    end: contracts.ended_at
    grain: month
"""


@dataclass
class LifecycleData:
    """The rows of every table, as Python tuples (column order as in the DuckDB tables)."""

    root: Path
    customers: list[tuple] = field(default_factory=list)  # id, channel, signed_up_at, tenant_id
    orders: list[tuple] = field(default_factory=list)  # id, customer_id, ordered_at, amount, status
    leads: list[tuple] = field(default_factory=list)  # id, source, created_at, converted_at
    opportunities: list[dict] = field(default_factory=list)
    history: list[tuple] = field(default_factory=list)  # opportunity_id, stage, entered_at
    contracts: list[tuple] = field(default_factory=list)  # id, plan, started_at, ended_at, mrr


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _customers_and_orders(data: LifecycleData, rng: random.Random) -> None:
    channels = ["web", "store", "partner", None, "réseau"]
    start = dt.datetime(2023, 1, 1)
    for cid in range(1, 61):
        signup = start + dt.timedelta(days=rng.randrange(0, 300), hours=rng.randrange(24))
        data.customers.append((cid, rng.choice(channels), signup, 1 if cid % 7 else 2))
    oid = 0

    def order(cid: int | None, when: dt.datetime | None, amount: float | None, status: str = "completed") -> None:
        nonlocal oid
        oid += 1
        data.orders.append((oid, cid, when, amount, status))

    for cid, _, signup, _ in data.customers:
        if cid % 11 == 0:
            continue  # customers with no orders at all
        when = signup + dt.timedelta(days=rng.randrange(0, 40))
        for _ in range(rng.randrange(1, 9)):
            order(cid, when, round(rng.uniform(5, 500), 2) if rng.random() > 0.05 else None)
            when += dt.timedelta(days=rng.choice([0, 1, 3, 20, 45, 95, 140]), seconds=rng.randrange(86400))
    # a single-member cohort far from the others, with a gap of inactive months
    data.customers.append((100, "web", ts("2021-06-15 10:00:00"), 1))
    order(100, ts("2021-06-15 10:00:00"), 50.0)
    order(100, ts("2021-09-30 23:59:59"), 20.0)  # the last second of a month and quarter
    order(100, ts("2021-10-01 00:00:00"), 30.0)  # the first second of the next
    # ties: two orders at the same instant, and orders of a customer on a week boundary (Sunday/Monday)
    data.customers.append((101, "store", ts("2023-03-05 00:00:00"), 1))
    order(101, ts("2023-03-05 23:59:59"), 10.0)  # a Sunday
    order(101, ts("2023-03-06 00:00:00"), 10.0)  # the Monday after
    order(101, ts("2023-03-06 00:00:00"), 15.0)
    # orphans and NULLs: unknown customer, NULL customer, NULL time
    order(999, ts("2023-02-10 12:00:00"), 70.0)
    order(None, ts("2023-02-11 12:00:00"), 80.0)
    order(1, None, 90.0)


def _leads(data: LifecycleData, rng: random.Random) -> None:
    sources = ["ads", "referral", None, "événement"]
    for lid in range(1, 81):
        created = dt.datetime(2023, 1, 1) + dt.timedelta(days=rng.randrange(0, 365), seconds=rng.randrange(86400))
        converted = None
        if rng.random() < 0.6:
            converted = created + dt.timedelta(days=rng.choice([0, 1, 2, 5, 9, 30]), seconds=rng.randrange(86400))
        data.leads.append((lid, rng.choice(sources), created, converted))
    data.leads.append((81, "ads", ts("2023-05-01 00:00:00"), ts("2023-05-01 00:00:00")))  # zero duration
    data.leads.append((82, "ads", None, ts("2023-05-03 00:00:00")))  # no start: not measurable


def _opportunities(data: LifecycleData, rng: random.Random) -> None:
    owners = ["ana", "bo", None, "Zoë"]
    for oid in range(1, 121):
        created = dt.datetime(2023, 1, 1) + dt.timedelta(days=rng.randrange(0, 330), hours=rng.randrange(24))
        furthest = rng.choices([1, 2, 3, 4, 5], weights=[3, 3, 3, 3, 4])[0]  # 5 = won
        skip = {i for i in (2, 3) if i < furthest and rng.random() < 0.15}  # stages passed without a record
        outcome = "won" if furthest == 5 else rng.choice(["lost", "open", "open"])
        times: dict[int, dt.datetime] = {}
        when = created
        for index in range(1, furthest + 1):
            if index not in skip:
                times[index] = when
            when += dt.timedelta(days=rng.choice([0, 0, 2, 5, 11, 23]), hours=rng.randrange(24))
        lost_at = when if outcome == "lost" else None
        closed_at = times[5] if outcome == "won" else lost_at
        reached = STAGES[furthest - 1]
        stage = reached if outcome != "lost" else "closed_lost"
        amount = None if oid % 17 == 0 else float(rng.randrange(1, 50) * 100)
        data.opportunities.append(
            {
                "opportunity_id": oid,
                "owner": rng.choice(owners),
                "region": rng.choice(["north", "south"]),
                "stage": stage,
                "last_stage": reached if outcome == "lost" else None,
                "amount": amount,
                "created_at": created,
                "closed_at": closed_at,
                **{f"t_{name}": times.get(i) for i, name in enumerate(STAGES[:-1], 1)},
                "t_won": times.get(5),
                "lost_at": lost_at,
                "times": times,
            }
        )
        for index, at in times.items():
            data.history.append((oid, STAGES[index - 1], at))
        if lost_at is not None:
            data.history.append((oid, "closed_lost", lost_at))
    # no stage at all, and a stage outside the declared order
    data.opportunities.append(_bare(121, "spam", ts("2023-04-01 09:00:00")))
    data.opportunities.append(_bare(122, None, ts("2023-04-02 09:00:00")))
    data.history.append((9999, "prospecting", ts("2023-01-01 00:00:00")))  # history of an unknown opportunity


def _bare(oid: int, stage: str | None, created: dt.datetime) -> dict:
    empty = {f"t_{name}": None for name in STAGES[:-1]}
    return {
        "opportunity_id": oid,
        "owner": "ana",
        "region": "north",
        "stage": stage,
        "last_stage": None,
        "amount": 100.0,
        "created_at": created,
        "closed_at": None,
        **empty,
        "t_won": None,
        "lost_at": None,
        "times": {},
    }


def _contracts(data: LifecycleData, rng: random.Random) -> None:
    for cid in range(1, 71):
        start = dt.datetime(2023, 1, 1) + dt.timedelta(days=rng.randrange(0, 300))
        end = None if rng.random() < 0.4 else start + dt.timedelta(days=rng.choice([0, 10, 31, 59, 90, 200]))
        data.contracts.append((cid, rng.choice(["basic", "pro"]), start, end, float(rng.choice([10, 20, 50]))))
    data.contracts.append((71, "pro", ts("2023-03-01 00:00:00"), ts("2023-04-01 00:00:00"), 40.0))  # boundaries


OPPORTUNITY_COLUMNS = [
    "opportunity_id",
    "owner",
    "region",
    "stage",
    "last_stage",
    "amount",
    "created_at",
    "closed_at",
    "t_prospecting",
    "t_qualification",
    "t_proposal",
    "t_negotiation",
    "t_won",
    "lost_at",
]


def build(root: Path, seed: int = 5) -> LifecycleData:
    """Generate the rows, write them to root/crm.duckdb and the project to root/crmetrics.yml."""
    rng = random.Random(seed)
    data = LifecycleData(root)
    _customers_and_orders(data, rng)
    _leads(data, rng)
    _opportunities(data, rng)
    _contracts(data, rng)
    con = duckdb.connect(str(root / "crm.duckdb"))
    con.execute("CREATE TABLE customers (customer_id INT, channel VARCHAR, signed_up_at TIMESTAMP, tenant_id INT)")
    con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", data.customers)
    con.execute(
        "CREATE TABLE orders (order_id INT, customer_id INT, ordered_at TIMESTAMP, amount DOUBLE, status VARCHAR)"
    )
    con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", data.orders)
    con.execute("CREATE TABLE leads (lead_id INT, source VARCHAR, created_at TIMESTAMP, converted_at TIMESTAMP)")
    con.executemany("INSERT INTO leads VALUES (?, ?, ?, ?)", data.leads)
    types = {"opportunity_id": "INT", "amount": "DOUBLE", "owner": "VARCHAR", "region": "VARCHAR"}
    types |= {"stage": "VARCHAR", "last_stage": "VARCHAR"}
    decl = ", ".join(f"{c} {types.get(c, 'TIMESTAMP')}" for c in OPPORTUNITY_COLUMNS)
    con.execute(f"CREATE TABLE opportunities ({decl})")
    rows = [tuple(o[c] for c in OPPORTUNITY_COLUMNS) for o in data.opportunities]
    con.executemany(f"INSERT INTO opportunities VALUES ({', '.join('?' * len(OPPORTUNITY_COLUMNS))})", rows)
    con.execute("CREATE TABLE stage_history (opportunity_id INT, stage VARCHAR, entered_at TIMESTAMP)")
    con.executemany("INSERT INTO stage_history VALUES (?, ?, ?)", data.history)
    con.execute(
        "CREATE TABLE contracts (contract_id INT, plan VARCHAR, started_at TIMESTAMP, ended_at TIMESTAMP, mrr DOUBLE)"
    )
    con.executemany("INSERT INTO contracts VALUES (?, ?, ?, ?, ?)", data.contracts)
    con.close()
    (root / "crmetrics.yml").write_text(PROJECT_YAML)
    return data
