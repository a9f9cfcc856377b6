"""Service-desk example: generate a DuckDB help desk, then render the report. Usage: python run.py [--out DIR]."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import shutil
from pathlib import Path

import duckdb

import crmetrics
from crmetrics.reports import render_report

HERE = Path(__file__).resolve().parent
PRIORITIES = [("low", 48, 4), ("normal", 24, 6), ("high", 8, 3), ("urgent", 4, 1)]  # name, SLA hours, weight
CHANNELS = ["email", "chat", "phone", "portal"]


def generate(folder: Path, tickets: int = 6000, seed: int = 3) -> None:
    """Write customers, agents, tickets and surveys into folder/desk.duckdb."""
    rng = random.Random(seed)
    customers = []
    for c in range(1, 1201):
        email = None if rng.random() < 0.06 else f"user{c % 1150}@example.com"  # missing and duplicate e-mails
        customers.append((c, f"Customer {c}", rng.choice(["free", "pro", "enterprise"]), email))
    agents = [(a, f"Agent {a:02d}", "Tier 1" if a <= 12 else "Tier 2") for a in range(1, 19)]
    rows, surveys = [], []
    start = dt.datetime(2024, 1, 1, 8)
    for t in range(1, tickets + 1):
        priority, sla, _ = rng.choices(PRIORITIES, weights=[p[2] for p in PRIORITIES])[0]
        agent = rng.choice(agents)
        opened = start + dt.timedelta(minutes=rng.randrange(366 * 24 * 60))
        speed = 0.6 + 0.08 * (agent[0] % 6)  # some agents are slower: the quadrant shows it
        response = opened + dt.timedelta(minutes=int(rng.expovariate(1 / (40 * speed))) + 1)
        hours = rng.expovariate(1 / (sla * 0.7 * speed))
        resolved = response + dt.timedelta(hours=hours)
        if resolved > dt.datetime(2024, 12, 31, 23) or rng.random() < 0.03:
            resolved = None  # still open
        rows.append(
            (t, rng.randrange(1, 1201), agent[0], opened, response, resolved, priority, sla, rng.choice(CHANNELS))
        )
        if resolved is not None and rng.random() < 0.35:
            late = hours > sla
            score = max(1, min(5, round(rng.gauss(3.2 if late else 4.3, 0.8))))
            if t % 50 == 0:
                score = None  # a blank answer: no response
            elif t % 50 == 25:
                score = 10  # answered on a 0-10 form: out of the 1-5 scale, no response
            surveys.append((t, score, resolved + dt.timedelta(hours=rng.randrange(1, 48))))
    path = folder / "desk.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    load_table(con, folder, "customers", "customer_id INT, name VARCHAR, plan VARCHAR, email VARCHAR", customers)
    load_table(con, folder, "agents", "agent_id INT, name VARCHAR, team VARCHAR", agents)
    load_table(
        con,
        folder,
        "tickets",
        "ticket_id INT, customer_id INT, agent_id INT, opened_at TIMESTAMP, first_response_at TIMESTAMP, "
        "resolved_at TIMESTAMP, priority VARCHAR, sla_hours INT, channel VARCHAR",
        rows,
    )
    load_table(con, folder, "surveys", "ticket_id INT, score INT, answered_at TIMESTAMP", surveys)
    con.close()


def load_table(con: duckdb.DuckDBPyConnection, folder: Path, table: str, columns: str, rows: list[tuple]) -> None:
    """Create `table` and fill it through a CSV file (much faster than inserting row by row)."""
    path = folder / f".{table}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(["" if v is None else v for v in row] for row in rows)
    con.execute(f"CREATE TABLE {table} ({columns})")
    con.execute(f"COPY {table} FROM '{path}' (HEADER false, NULLSTR '')")
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the data and the report (default: here)")
    out = parser.parse_args().out.resolve()
    if out != HERE:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / "crmetrics.yml", out / "crmetrics.yml")
    generate(out)
    project = crmetrics.load(out / "crmetrics.yml")
    print(render_report(project, "desk", "html", out / "report.html"))
    project.close()


if __name__ == "__main__":
    main()
