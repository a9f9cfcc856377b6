"""Retail / e-commerce example: generate CSV data, then render the report. Usage: python run.py [--out DIR]."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import shutil
from pathlib import Path

import crmetrics
from crmetrics.reports import render_report

HERE = Path(__file__).resolve().parent
COUNTRIES = [("Germany", 5), ("France", 4), ("United Kingdom", 4), ("España", 2), ("Österreich", 1), ("日本", 1)]
CATEGORIES = {
    "Coffee": ["Espresso beans", "Filter coffee", "Decaf beans", "Cold brew"],
    "Equipment": ["Grinder", "Moka pot", "French press", "Kettle"],
    "Accessories": ["Filter papers", "Milk jug", "Tamper", "Scale"],
}
CHANNELS = [("web", 6), ("app", 3), ("marketplace", 1)]


def weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def generate(folder: Path, customers: int = 2000, seed: int = 11) -> None:
    """Write customers, products, orders and order lines as CSV files into folder/data."""
    rng = random.Random(seed)
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    products = [
        (pid, name, category, round(rng.uniform(4, 40) if category != "Equipment" else rng.uniform(25, 220), 2))
        for pid, (category, name) in enumerate(((c, n) for c, names in CATEGORIES.items() for n in names), start=1)
    ]
    start = dt.date(2023, 1, 1)
    people, orders, lines = [], [], []
    for cid in range(1, customers + 1):
        signed = start + dt.timedelta(days=rng.randrange(730))
        people.append((cid, f"Customer {cid}", weighted(rng, COUNTRIES), signed.isoformat()))
        loyalty = rng.random()
        day = signed
        while day < dt.date(2025, 1, 1) and len(orders) < customers * 8:
            oid = len(orders) + 1
            basket = rng.sample(products, k=rng.choice([1, 1, 2, 3]))
            if rng.random() < 0.5:  # coffee buyers come back for filter papers: the basket analysis finds it
                basket = [products[0], products[8]]
            total, at = 0.0, f"{day.isoformat()} {rng.randrange(8, 22):02d}:00:00"
            for product in basket:
                quantity = rng.choice([1, 1, 1, 2])
                lines.append((len(lines) + 1, oid, product[0], quantity, round(product[3] * quantity, 2), at))
                total += product[3] * quantity
            amount = round(total, 2) if rng.random() > 0.01 else None  # a few orders lost their amount
            orders.append((oid, cid, at, amount, weighted(rng, CHANNELS)))
            day += dt.timedelta(days=int(rng.expovariate(1 / (30 + 300 * (1 - loyalty)))) + 1)
    guests = random.Random(seed + 1)  # guest checkouts: orders without a customer (no buyer's, no cohort's)
    for _ in range(customers // 5):
        oid, product = len(orders) + 1, guests.choice(products)
        at = f"{start + dt.timedelta(days=guests.randrange(730))} {guests.randrange(8, 22):02d}:00:00"
        lines.append((len(lines) + 1, oid, product[0], 1, product[3], at))
        orders.append((oid, None, at, product[3], weighted(guests, CHANNELS)))
    write(data / "customers.csv", ("customer_id", "name", "country", "signed_up_at"), people)
    write(data / "products.csv", ("product_id", "name", "category", "price"), products)
    write(data / "orders.csv", ("order_id", "customer_id", "ordered_at", "amount", "channel"), orders)
    write(
        data / "order_lines.csv", ("line_id", "order_id", "product_id", "quantity", "line_amount", "ordered_at"), lines
    )


def write(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the data and the report (default: here)")
    out = parser.parse_args().out.resolve()
    if out != HERE:
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / "crmetrics.yml", out / "crmetrics.yml")
    generate(out)
    project = crmetrics.load(out / "crmetrics.yml")
    print(render_report(project, "shop", "html", out / "report.html"))
    project.close()


if __name__ == "__main__":
    main()
