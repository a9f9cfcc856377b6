"""B2B pipeline example: generate a DuckDB CRM, then render the report. Usage: python run.py [--out DIR]."""

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
STAGES = ["lead", "qualified", "demo", "proposal", "negotiation"]
INDUSTRIES = ["Software", "Manufacturing", "Healthcare", "Finance", "Retail"]
TEAMS = ["Mid-market", "Enterprise", "SMB"]


def generate(folder: Path, deals: int = 4000, seed: int = 5) -> None:
    """Write accounts, reps, opportunities, stage history and targets into folder/pipeline.duckdb."""
    rng = random.Random(seed)
    accounts = [
        (a, f"Account {a}", rng.choice(INDUSTRIES), rng.choice(["EMEA", "Americas", "APAC", None]))
        for a in range(1, 601)
    ]
    reps = [(r, f"Rep {r:02d}", TEAMS[r % 3]) for r in range(1, 25)]
    opportunities, history = [], []
    for o in range(1, deals + 1):
        rep = rng.choice(reps)
        created = dt.datetime(2023, 1, 1, 9) + dt.timedelta(days=rng.randrange(720), hours=rng.randrange(9))
        skill = 0.55 + 0.1 * (rep[0] % 5)  # some reps convert better: the quadrant shows it
        reached, at = 0, created
        history.append((o, STAGES[0], created))
        while reached < len(STAGES) - 1 and rng.random() < skill:
            reached += 1
            at += dt.timedelta(days=rng.randrange(3, 25))
            history.append((o, STAGES[reached], at))
        closed = at + dt.timedelta(days=rng.randrange(2, 20))
        if closed > dt.datetime(2024, 12, 31) or rng.random() < 0.15:
            stage, closed_at = STAGES[reached], None  # still open
        else:
            won = reached == len(STAGES) - 1 and rng.random() < 0.7
            stage, closed_at = ("won" if won else "lost"), closed
            history.append((o, stage, closed))
            if o % 40 == 0:
                closed_at = None  # a few closed deals came from an import without their close date: still closed
        size = {"Enterprise": 60_000, "Mid-market": 18_000, "SMB": 5_000}[rep[2]]
        amount = round(rng.lognormvariate(0, 0.5) * size, 2)
        opportunities.append((o, rng.randrange(1, 601), rep[0], created, closed_at, stage, STAGES[reached], amount))
    targets = [
        (r[0], dt.date(y, m, 1), {"Enterprise": 140_000, "Mid-market": 70_000, "SMB": 25_000}[r[2]])
        for r in reps
        for y in (2023, 2024)
        for m in range(1, 13)
    ]
    path = folder / "pipeline.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    load_table(con, folder, "accounts", "account_id INT, name VARCHAR, industry VARCHAR, region VARCHAR", accounts)
    load_table(con, folder, "reps", "rep_id INT, name VARCHAR, team VARCHAR", reps)
    load_table(
        con,
        folder,
        "opportunities",
        "opportunity_id INT, account_id INT, rep_id INT, created_at TIMESTAMP, closed_at TIMESTAMP, stage VARCHAR, "
        "last_stage_reached VARCHAR, amount DECIMAL(12, 2)",
        opportunities,
    )
    load_table(con, folder, "stage_history", "opportunity_id INT, stage VARCHAR, entered_at TIMESTAMP", history)
    load_table(con, folder, "targets", "rep_id INT, month DATE, target DECIMAL(12, 2)", targets)
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
    print(render_report(project, "pipeline_review", "html", out / "report.html"))
    project.close()


if __name__ == "__main__":
    main()
