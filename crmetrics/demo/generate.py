"""A deterministic generator of a realistic CRM sample database in DuckDB.

Every value is computed by SQL inside DuckDB from `hash(row key, seed, salt)`, never from `random()`: DuckDB's
random numbers depend on how rows are split between threads, while a hash of the row's own key does not. Money is
DECIMAL, so sums are exact and independent of the order in which threads add them up. The same seed therefore
yields identical tables on every run and every machine running the same DuckDB version. All dates fall in
2022-01-01 .. 2024-12-31, never relative to today, so reports on the demo data do not drift over time.

The data is deliberately imperfect, as real CRM data is: duplicate customers whose e-mails differ only in case or
spaces, missing regions and ages, orphan orders, NULL amounts, skipped pipeline stages and tied timestamps.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

__all__ = ["TABLES", "build_demo_database"]

START = "2022-01-01"
MONTHS = 36  # 2022-01 .. 2024-12
SPAN_SECONDS = 1096 * 86_400  # 2022-01-01 00:00:00 up to (excluding) 2025-01-01 00:00:00
T0 = f"TIMESTAMP '{START} 00:00:00'"
LAST_DAY = dt.date(2024, 12, 31)  # the data never depends on today: reports on it do not drift
T_END = f"TIMESTAMP '{LAST_DAY + dt.timedelta(days=1)} 00:00:00'"

TABLES = (
    "sales_reps",
    "products",
    "customers",
    "orders",
    "order_lines",
    "leads",
    "opportunities",
    "opportunity_stage_history",
    "tickets",
    "nps_responses",
    "targets",
    "account_balances",
)

STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost")
REGIONS = ("North America", "EMEA", "APAC", "LATAM")

# (country, city, region, dialling code, weight): the weight is how often a customer lives there.
GEO: tuple[tuple[str, str, str, str, int], ...] = (
    ("United States", "New York", "North America", "+1", 8),
    ("United States", "Los Angeles", "North America", "+1", 6),
    ("United States", "Chicago", "North America", "+1", 5),
    ("United States", "Houston", "North America", "+1", 4),
    ("United States", "Seattle", "North America", "+1", 3),
    ("United States", "Miami", "North America", "+1", 3),
    ("Canada", "Toronto", "North America", "+1", 3),
    ("Canada", "Montréal", "North America", "+1", 2),
    ("Canada", "Vancouver", "North America", "+1", 2),
    ("United Kingdom", "London", "EMEA", "+44", 6),
    ("United Kingdom", "Manchester", "EMEA", "+44", 2),
    ("Ireland", "Dublin", "EMEA", "+353", 1),
    ("Germany", "Berlin", "EMEA", "+49", 4),
    ("Germany", "München", "EMEA", "+49", 3),
    ("Germany", "Köln", "EMEA", "+49", 2),
    ("France", "Paris", "EMEA", "+33", 4),
    ("France", "Lyon", "EMEA", "+33", 1),
    ("Spain", "Madrid", "EMEA", "+34", 2),
    ("Spain", "Barcelona", "EMEA", "+34", 2),
    ("Italy", "Milan", "EMEA", "+39", 2),
    ("Netherlands", "Amsterdam", "EMEA", "+31", 2),
    ("Poland", "Kraków", "EMEA", "+48", 1),
    ("Sweden", "Göteborg", "EMEA", "+46", 1),
    ("Switzerland", "Zürich", "EMEA", "+41", 1),
    ("United Arab Emirates", "Dubai", "EMEA", "+971", 1),
    ("South Africa", "Cape Town", "EMEA", "+27", 1),
    ("Japan", "東京", "APAC", "+81", 3),
    ("Japan", "Osaka", "APAC", "+81", 1),
    ("Australia", "Sydney", "APAC", "+61", 2),
    ("Australia", "Melbourne", "APAC", "+61", 2),
    ("Singapore", "Singapore", "APAC", "+65", 1),
    ("India", "Bengaluru", "APAC", "+91", 2),
    ("India", "Mumbai", "APAC", "+91", 2),
    ("South Korea", "Seoul", "APAC", "+82", 1),
    ("China", "上海", "APAC", "+86", 1),
    ("Brazil", "São Paulo", "LATAM", "+55", 3),
    ("Brazil", "Rio de Janeiro", "LATAM", "+55", 1),
    ("Mexico", "Mexico City", "LATAM", "+52", 2),
    ("Mexico", "Guadalajara", "LATAM", "+52", 1),
    ("Argentina", "Buenos Aires", "LATAM", "+54", 1),
    ("Colombia", "Bogotá", "LATAM", "+57", 1),
    ("Chile", "Santiago", "LATAM", "+56", 1),
)
TOKYO = 1 + [g[1] for g in GEO].index("東京")

FIRST_NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Sophia", "Mateo", "Isabella", "Leon",
    "Charlotte", "James", "Amelia", "Hugo", "Hannah", "Daniel", "Léa", "Jonas", "Chloé", "Felix", "Zoë", "José",
    "María", "François", "Søren", "Łukasz", "Aiko", "Hiroshi", "Yuki", "Priya", "Arjun", "Wei", "Mei", "Fatima",
    "Omar", "Ingrid", "Björn", "Siobhán", "Seán", "Nia", "Kwame", "Camila", "Diego", "Anna", "Paul", "Sarah",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "García", "Rodriguez", "Martínez",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Dubois", "Lefèvre", "Rossi", "Bianchi", "O'Brien",
    "O'Connor", "Murphy", "Kowalski", "Nowak", "Johansson", "Andersson", "Nielsen", "Søndergaard", "Tanaka",
    "Suzuki", "Sato", "Kim", "Park", "Chen", "Wang", "Singh", "Patel", "Silva", "Santos", "Núñez", "van der Berg",
    "De Luca", "Ivanova", "Haddad", "Mensah", "Taylor", "Wilson", "Clark",
)  # fmt: skip
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "web.de", "example.com")
TEAMS = ("Inbound", "Outbound", "Key Accounts", "Partnerships")

# Ten categories of twenty products, in bundles of four that are bought together; this is what gives
# market-basket analysis real associations to find. (category, anchor price range, four bundles of four names)
CATALOGUE: tuple[tuple[str, float, float, tuple[str, ...]], ...] = (
    ("Electronics", 150.0, 1500.0, (
        "Laptop", "Laptop Sleeve", "Wireless Mouse", "USB-C Hub",
        "Smartphone", "Phone Case", "Screen Protector", "Fast Charger",
        "Digital Camera", "Memory Card", "Camera Bag", "Tripod",
        "Smart TV", "Soundbar", "HDMI Cable", "TV Wall Mount",
        "Game Console", "Game Controller", "Gaming Headset", "Charging Dock",
    )),
    ("Home & Kitchen", 40.0, 600.0, (
        "Espresso Machine", "Coffee Grinder", "Milk Frother", "Espresso Cups",
        "Chef's Knife", "Cutting Board", "Knife Sharpener", "Knife Block",
        "Nonstick Pan", "Spatula Set", "Oven Mitts", "Pan Lid",
        "Bed Sheets", "Duvet Cover", "Pillow", "Mattress Protector",
        "Stand Mixer", "Mixing Bowls", "Baking Sheet", "Measuring Cups",
    )),
    ("Apparel", 30.0, 250.0, (
        "Running Shoes", "Sports Socks", "Running Shorts", "Training Tee",
        "Denim Jeans", "Leather Belt", "Casual Shirt", "Canvas Sneakers",
        "Winter Jacket", "Wool Scarf", "Beanie", "Gloves",
        "Dress Shirt", "Silk Tie", "Cufflinks", "Dress Shoes",
        "Swimsuit", "Beach Towel", "Sunglasses", "Flip-Flops",
    )),
    ("Beauty", 15.0, 150.0, (
        "Hair Dryer", "Shampoo", "Conditioner", "Hair Mask",
        "Face Serum", "Face Cleanser", "Moisturizer", "Sunscreen SPF 50",
        "Lipstick", "Lip Liner", "Makeup Remover", "Mascara",
        "Perfume", "Body Lotion", "Shower Gel", "Deodorant",
        "Electric Razor", "Shaving Cream", "Aftershave", "Beard Oil",
    )),
    ("Sports & Outdoors", 30.0, 900.0, (
        "Yoga Mat", "Yoga Blocks", "Resistance Bands", "Foam Roller",
        "Tent", "Sleeping Bag", "Camping Stove", "Headlamp",
        "Road Bike", "Bike Helmet", "Bike Lights", "Water Bottle",
        "Tennis Racket", "Tennis Balls", "Racket Grip", "Sports Bag",
        "Hiking Boots", "Hiking Socks", "Trekking Poles", "Daypack",
    )),
    ("Books", 10.0, 60.0, (
        "Mystery Novel", "Thriller Novel", "Crime Anthology", "Bookmark Set",
        "Children's Picture Book", "Coloring Book", "Crayons", "Sticker Album",
        "Python Programming", "SQL Cookbook", "Data Science Handbook", "Statistics Primer",
        "Travel Guide: 日本", "Japanese Phrasebook", "Travel Journal", "City Map",
        "Poetry Collection", "Classic Novel", "Reading Light", "Book Stand",
    )),
    ("Toys", 15.0, 200.0, (
        "Building Blocks", "Block Storage Box", "Minifigure Pack", "Baseplate",
        "Doll", "Dollhouse", "Doll Clothes", "Doll Stroller",
        "RC Car", "RC Batteries", "RC Charger", "Spare Tyres",
        "Board Game", "Card Game", "Puzzle 1000 pcs", "Dice Set",
        "Plush Bear", "Plush Bunny", "Baby Rattle", "Teething Ring",
    )),
    ("Grocery", 4.0, 40.0, (
        "Ground Coffee", "Coffee Filters", "Oat Milk", "Sugar Cubes",
        "Olive Oil", "Pasta", "Pasta Sauce", "Parmesan",
        "Granola", "Breakfast Cereal", "Milk", "Honey",
        "Green Tea", "Black Tea", "Tea Infuser", "Biscuits",
        "Tortilla Chips", "Salsa", "Guacamole", "Sparkling Water",
    )),
    ("Office", 20.0, 700.0, (
        "Office Chair", "Standing Desk", "Desk Lamp", "Monitor Arm",
        "Printer", "Printer Paper", "Ink Cartridge", "Toner",
        "Notebook", "Gel Pens", "Highlighters", "Sticky Notes",
        "Laptop Backpack", "Cable Organizer", "Travel Adapter", "Power Bank",
        "Whiteboard", "Dry-Erase Markers", "Whiteboard Eraser", "Magnets",
    )),
    ("Garden", 20.0, 600.0, (
        "Lawn Mower", "Grass Seed", "Lawn Fertilizer", "Garden Rake",
        "Garden Hose", "Hose Reel", "Spray Nozzle", "Watering Can",
        "Pruning Shears", "Garden Gloves", "Kneeling Pad", "Plant Labels",
        "Flower Pots", "Potting Soil", "Plant Food", "Seed Starter Kit",
        "BBQ Grill", "Grill Tools", "Charcoal", "Grill Cover",
    )),
)  # fmt: skip
N_PRODUCTS = sum(len(names) for *_, names in CATALOGUE)
BUNDLE = 4
# Popularity rank r maps to product (r * 73 mod 200) + 1, so best sellers are spread over categories and bundles.
POPULARITY_STRIDE = 73

Progress = Callable[[str, float], None]


def build_demo_database(
    path: str | os.PathLike,
    customers: int = 50_000,
    seed: int = 7,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Create (overwrite) a DuckDB file at `path` with the demo CRM tables; return {table: row_count}."""
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    seed = int(seed)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in (target, target.with_name(target.name + ".wal")):
        stale.unlink(missing_ok=True)

    sizes = _Sizes(customers)
    counts: dict[str, int] = {}
    con = duckdb.connect(str(target))
    try:
        _define_helpers(con, seed)
        for done, (table, statements) in enumerate(_steps(con, sizes), start=1):
            for sql in statements():
                con.execute(sql)
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(row[0]) if row else 0
            if progress is not None:
                progress(table, done / len(TABLES))
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return counts


class _Sizes:
    """Row counts derived from the number of customers."""

    def __init__(self, n: int) -> None:
        self.customers = n
        self.reps = n // 500 + 20
        self.leads = max(1, n // 2)
        self.opportunities = max(1, n // 5)
        self.tickets = max(1, n // 2)
        self.nps = max(1, n // 3)
        self.orphan_orders = max(5, n // 5_000)
        # a stride coprime with n turns lead numbers into distinct customers (a permutation of 1..n)
        self.lead_stride = next(p for p in (7919, 7927, 7933, 7937, 104_729) if math.gcd(p, n) == 1)


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list(values: Sequence[str]) -> str:
    return "[" + ", ".join(_lit(v) for v in values) + "]"


def _pick(values: Sequence[str], u: str) -> str:
    """An element of `values` chosen uniformly by the uniform number `u`."""
    return f"{_list(values)}[1 + floor({u} * {len(values)})::BIGINT]"


def _choice(u: str, options: Sequence[tuple[str, float]]) -> str:
    """A CASE expression choosing among SQL expressions with the given weights by the uniform number `u`."""
    total = sum(w for _, w in options)
    parts, cumulative = [], 0.0
    for value, weight in options[:-1]:
        cumulative += weight / total
        parts.append(f"WHEN {u} < {cumulative:.6f} THEN {value}")
    return f"(CASE {' '.join(parts)} ELSE {options[-1][0]} END)"


def _ts(seconds: str) -> str:
    """A timestamp `seconds` after 2022-01-01 00:00:00."""
    return f"({T0} + to_seconds(({seconds})::BIGINT))"


def _define_helpers(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Temporary macros and lookup tables; nothing here is written to the database file."""
    # DuckDB's multi-argument hash(a, b) combines weakly (hash(i, 'x') and hash(i, 'y') correlate at 0.97),
    # so the row hash is xor-ed with a per-(salt, seed) constant and mixed again. The 53 high bits then give
    # a uniform double in [0, 1) with full precision.
    con.execute(
        f"CREATE TEMP MACRO _u(k, salt) AS (hash(xor(hash(k), hash(salt, {seed}))) >> 11)::DOUBLE / 9007199254740992.0"
    )
    # an exponential variate with the given mean; 1 - u is never 0
    con.execute("CREATE TEMP MACRO _exp(k, salt, mean) AS -ln(1.0 - _u(k, salt)) * mean")
    # roughly standard normal (Irwin-Hall: a scaled sum of three uniforms), bounded to (-3, 3)
    con.execute(
        "CREATE TEMP MACRO _z(k, salt) AS (_u(k, salt || '.1') + _u(k, salt || '.2') + _u(k, salt || '.3') - 1.5) * 2"
    )
    geo_rows = ", ".join(
        f"({i}, {_lit(country)}, {_lit(city)}, {_lit(region)}, {REGIONS.index(region) + 1}, {_lit(dial)})"
        for i, (country, city, region, dial, _) in enumerate(GEO, start=1)
    )
    con.execute(
        "CREATE TEMP TABLE _geo (geo_id INTEGER, country VARCHAR, city VARCHAR, region VARCHAR, "
        f"region_idx INTEGER, dial_code VARCHAR); INSERT INTO _geo VALUES {geo_rows}"
    )
    # geo ids repeated by weight: a uniform pick from this list is a weighted pick of a place
    weighted = [i for i, (*_, weight) in enumerate(GEO, start=1) for _ in range(weight)]
    con.execute(f"CREATE TEMP MACRO _geo_pick(k, salt) AS {weighted}[1 + floor(_u(k, salt) * {len(weighted)})::BIGINT]")


def _steps(con: duckdb.DuckDBPyConnection, s: _Sizes) -> list[tuple[str, Callable[[], list[str]]]]:
    """(table, statements) in dependency order; statements are built lazily because some read earlier tables."""
    return [
        ("sales_reps", lambda: [_sales_reps(s)]),
        ("products", lambda: [_products()]),
        ("customers", lambda: _customers(s)),
        ("orders", lambda: _orders(s)),
        ("order_lines", lambda: []),  # written together with orders: amounts are the sums of their lines
        ("leads", lambda: [_leads(s)]),
        ("opportunities", lambda: _opportunities(con, s)),
        ("opportunity_stage_history", lambda: [_stage_history()]),
        ("tickets", lambda: [_tickets(s)]),
        ("nps_responses", lambda: [_nps(s)]),
        ("targets", lambda: [_targets(s)]),
        ("account_balances", lambda: [_account_balances()]),
    ]


def _sales_reps(s: _Sizes) -> str:
    hired_days = 3_102  # 2016-01-01 .. 2024-06-30
    return f"""
    CREATE TABLE sales_reps AS
    SELECT i::INTEGER AS rep_id,
           ({_pick(FIRST_NAMES, "_u(i, 'rep_first')")} || ' ' || {_pick(LAST_NAMES, "_u(i, 'rep_last')")})::VARCHAR
               AS name,
           -- round-robin regions, so customers can be owned by a rep of their own region
           {_list(REGIONS)}[1 + (i - 1) % {len(REGIONS)}]::VARCHAR AS region,
           {_pick(TEAMS, "_u(i, 'rep_team')")}::VARCHAR AS team,
           (DATE '2016-01-01' + floor(_u(i, 'rep_hired') * {hired_days})::INTEGER)::DATE AS hired_at
    FROM range(1, {s.reps} + 1) AS t(i)
    ORDER BY rep_id
    """


def _products() -> str:
    rows = ", ".join(
        f"({c * 20 + j + 1}, {_lit(name)}, {_lit(category)}, {lo}, {hi})"
        for c, (category, lo, hi, names) in enumerate(CATALOGUE)
        for j, name in enumerate(names)
    )
    return f"""
    CREATE TABLE products AS
    WITH catalogue(product_id, name, category, lo, hi) AS (VALUES {rows})
    SELECT product_id::INTEGER AS product_id, name::VARCHAR AS name, category::VARCHAR AS category,
           -- the first product of a bundle is the main item; the other three are accessories priced off it
           -- prices end in .99, as shop prices do
           (ceil(exp(ln(lo) + _u((product_id - 1) // {BUNDLE}, 'price') * (ln(hi) - ln(lo)))
                 * CASE WHEN (product_id - 1) % {BUNDLE} = 0 THEN 1.0 ELSE 0.08 + 0.25 * _u(product_id, 'acc') END)
            - 0.01)::DECIMAL(12, 2) AS list_price
    FROM catalogue
    ORDER BY product_id
    """


def _customers(s: _Sizes) -> list[str]:
    dup_rate = 0.015
    reps, n_regions = s.reps, len(REGIONS)
    email_variant = _choice(
        "_u(customer_id, 'email_variant')",
        [("upper(email)", 1), ("' ' || email || ' '", 1), ("upper(email[1]) || email[2:] || ' '", 1)],
    )
    gender = _choice(
        "_u(m.customer_id, 'gender')", [("'female'", 48), ("'male'", 47), ("'non-binary'", 2), ("'undisclosed'", 3)]
    )
    segment = _choice(
        "_u(m.customer_id, 'segment')", [("'consumer'", 70), ("'small business'", 22), ("'enterprise'", 8)]
    )
    channel = _choice(
        "_u(m.customer_id, 'acq')",
        [("'organic_search'", 25), ("'paid_search'", 20), ("'social'", 15), ("'referral'", 12), ("'email'", 10),
         ("'partner'", 8), ("'direct'", 10)],
    )  # fmt: skip
    helper = f"""
    CREATE TEMP TABLE _cust AS
    WITH ids AS (
        SELECT i AS customer_id,
               -- a duplicate re-registers the previous customer (who is not a duplicate themself)
               i > 1 AND _u(i, 'dup') < {dup_rate} AND _u(i - 1, 'dup') >= {dup_rate} AS is_dup
        FROM range(1, {s.customers} + 1) AS t(i)
    ),
    people AS (
        SELECT customer_id, is_dup, CASE WHEN is_dup THEN customer_id - 1 ELSE customer_id END AS pid
        FROM ids
    ),
    named AS (
        SELECT *,
               CASE pid WHEN 1 THEN 'Zoë' WHEN 2 THEN 'Seán'
                    ELSE {_pick(FIRST_NAMES, "_u(pid, 'first')")} END AS first_name,
               CASE pid WHEN 1 THEN 'Müller' WHEN 2 THEN 'O''Brien'
                    ELSE {_pick(LAST_NAMES, "_u(pid, 'last')")} END AS last_name,
               {_pick(EMAIL_DOMAINS, "_u(pid, 'domain')")} AS domain,
               CASE customer_id WHEN 3 THEN {TOKYO} ELSE _geo_pick(customer_id, 'geo') END AS geo_id,
               -- u^0.8 puts more sign-ups late in the range: a growing business
               floor({SPAN_SECONDS} * pow(_u(customer_id, 'signup'), 0.8))::BIGINT AS signup_s
        FROM people
    ),
    mailed AS (
        SELECT *,
               CASE WHEN _u(pid, 'email_null') >= 0.02 THEN
                   lower(strip_accents(replace(first_name, ' ', '') || '.'
                         || replace(replace(last_name, '''', ''), ' ', '')))
                   || pid || '@' || domain
               END AS email
        FROM named
    )
    SELECT m.customer_id, m.first_name || ' ' || m.last_name AS name,
           CASE WHEN m.is_dup THEN {email_variant} ELSE m.email END AS email,
           CASE WHEN _u(m.customer_id, 'phone_null') >= 0.05 THEN
               g.dial_code || ' ' || lpad(floor(_u(m.customer_id, 'phone') * 1e9)::BIGINT::VARCHAR, 9, '0')
           END AS phone,
           CASE WHEN _u(m.customer_id, 'region_null') >= 0.012 THEN g.region END AS region,
           g.region_idx, g.country, g.city,
           CASE WHEN _u(m.customer_id, 'age_null') >= 0.08 THEN
               18 + floor(60 * pow((_u(m.customer_id, 'age1') + _u(m.customer_id, 'age2')) / 2, 1.3))
           END::INTEGER AS age,
           {gender} AS gender,
           {segment} AS segment,
           {channel} AS acquisition_channel,
           m.signup_s,
           -- most records are touched soon after sign-up and then go stale (for staleness metrics)
           m.signup_s + floor(({SPAN_SECONDS} - 1 - m.signup_s) * pow(_u(m.customer_id, 'updated'), 2))::BIGINT
               AS updated_s,
           CASE WHEN _u(m.customer_id, 'tenant') < 0.7 THEN 1 ELSE 2 END AS tenant_id,
           CASE WHEN _u(m.customer_id, 'owner_null') >= 0.02 THEN
               -- reps of region k are k, k + 4, k + 8, ...: pick one of them
               g.region_idx + {n_regions} * floor(_u(m.customer_id, 'owner')
                   * (({reps} - g.region_idx) // {n_regions} + 1))::BIGINT
           END AS owner_rep_id
    FROM mailed AS m JOIN _geo AS g USING (geo_id)
    """
    table = f"""
    CREATE TABLE customers AS
    SELECT customer_id::INTEGER AS customer_id, name::VARCHAR AS name, email::VARCHAR AS email,
           phone::VARCHAR AS phone, region::VARCHAR AS region, country::VARCHAR AS country,
           city::VARCHAR AS city, age, gender::VARCHAR AS gender, segment::VARCHAR AS segment,
           acquisition_channel::VARCHAR AS acquisition_channel,
           {_ts("signup_s")} AS signed_up_at, {_ts("updated_s")} AS updated_at,
           tenant_id::INTEGER AS tenant_id, owner_rep_id::INTEGER AS owner_rep_id
    FROM _cust
    ORDER BY customer_id
    """
    return [helper, table]


def _orders(s: _Sizes) -> list[str]:
    n = s.customers
    # Orders per buyer follow a capped Pareto law (a few customers place most orders), scaled by how long the
    # customer has been around; a quarter of the customers never buy.
    skeleton = f"""
    CREATE TEMP TABLE _orders AS
    WITH counts AS (
        SELECT customer_id, signup_s, tenant_id,
               CASE WHEN _u(customer_id, 'buyer') < 0.25 THEN 0
                    ELSE least(200, greatest(1, floor(pow(1.0 - _u(customer_id, 'freq'), -1.0 / 1.35)
                         * (0.46 + 2.85 * ({SPAN_SECONDS} - signup_s) / {SPAN_SECONDS}))))
               END::BIGINT AS n_orders
        FROM _cust
    ),
    expanded AS (
        SELECT customer_id, signup_s, tenant_id, unnest(range(n_orders)) AS seq FROM counts WHERE n_orders > 0
    ),
    raw AS (
        SELECT customer_id, seq, tenant_id, customer_id * 1000 + seq AS k,
               signup_s + floor(({SPAN_SECONDS} - signup_s) * _u(customer_id * 1000 + seq, 'order_ts'))::BIGINT
                   AS ts_s
        FROM expanded
        UNION ALL
        -- orphans: orders whose customer is missing from `customers` (a deleted or never-synced record)
        SELECT {n} + 1 + floor(_u(-1 - o, 'orphan') * 1000)::BIGINT, o, 1, -1 - o,
               floor({SPAN_SECONDS} * _u(-1 - o, 'order_ts'))::BIGINT
        FROM range({s.orphan_orders}) AS t(o)
    ),
    stamped AS (
        SELECT *, {_ts("ts_s")} AS ts FROM raw
    ),
    placed AS (
        SELECT customer_id, seq, tenant_id, k,
               -- some orders land exactly on midnight of the 1st, to test month bucketing at the boundary
               CASE WHEN _u(k, 'month_start') < 0.006 AND date_trunc('month', ts) + INTERVAL 1 MONTH < {T_END}
                    THEN date_trunc('month', ts) + INTERVAL 1 MONTH
                    ELSE ts
               END::TIMESTAMP AS ordered_at
        FROM stamped
    )
    SELECT row_number() OVER (ORDER BY ordered_at, customer_id, seq) AS order_id,
           customer_id, ordered_at, tenant_id, k,
           {_choice("_u(k, 'channel')", [("'online'", 60), ("'store'", 28), ("'phone'", 12)])} AS channel,
           CASE WHEN ordered_at >= {T_END} - INTERVAL 10 DAY AND _u(k, 'pending') < 0.6 THEN 'pending'
                ELSE {_choice("_u(k, 'status')", [("'completed'", 88), ("'returned'", 6), ("'cancelled'", 6)])}
           END AS status,
           {_choice("_u(k, 'n_lines')", [("1", 30), ("2", 25), ("3", 20), ("4", 15), ("5", 7), ("6", 3)])}
               AS n_lines,
           _u(k, 'amount_null') < 0.002 AS amount_missing,
           -- the order's main product, drawn from a skewed popularity ranking
           (floor({N_PRODUCTS} * pow(_u(k, 'primary'), 1.7))::BIGINT * {POPULARITY_STRIDE}) % {N_PRODUCTS} + 1
               AS primary_product
    FROM placed
    """
    popular = f"(floor({N_PRODUCTS} * pow(_u(order_id * 8 + line_no, 'other'), 1.7))::BIGINT * {POPULARITY_STRIDE})"
    lines = f"""
    CREATE TABLE order_lines AS
    WITH expanded AS (
        SELECT order_id, primary_product, unnest(range(1, n_lines + 1)) AS line_no FROM _orders
    ),
    chosen AS (
        SELECT order_id, line_no, order_id * 8 + line_no AS k,
               CASE WHEN line_no = 1 THEN primary_product
                    -- lines 2..4 usually complete the primary product's bundle (distinct bundle members)
                    WHEN line_no <= {BUNDLE} AND _u(order_id * 8 + line_no, 'affinity') < 0.7 THEN
                        (primary_product - 1) // {BUNDLE} * {BUNDLE}
                        + ((primary_product - 1) % {BUNDLE} + line_no - 1) % {BUNDLE} + 1
                    ELSE {popular} % {N_PRODUCTS} + 1
               END AS product_id
        FROM expanded
    ),
    priced AS (
        SELECT c.*,
               {_choice("_u(c.k, 'qty')", [("1", 72), ("2", 18), ("3", 6), ("4", 2), ("6", 1), ("10", 1)])}
                   AS quantity,
               round(p.list_price * {_choice("_u(c.k, 'discount')", [("1.0", 75), ("0.9", 15), ("0.8", 10)])}, 2)
                   ::DECIMAL(12, 2) AS unit_price
        FROM chosen AS c JOIN products AS p USING (product_id)
    )
    SELECT row_number() OVER (ORDER BY order_id, line_no)::INTEGER AS order_line_id,
           order_id::INTEGER AS order_id, product_id::INTEGER AS product_id, quantity::INTEGER AS quantity,
           unit_price, (quantity * unit_price)::DECIMAL(12, 2) AS line_amount
    FROM priced
    ORDER BY order_line_id
    """
    orders = """
    CREATE TABLE orders AS
    WITH totals AS (SELECT order_id, sum(line_amount) AS amount FROM order_lines GROUP BY order_id)
    SELECT o.order_id::INTEGER AS order_id, o.customer_id::INTEGER AS customer_id, o.ordered_at,
           o.channel::VARCHAR AS channel, o.status::VARCHAR AS status,
           CASE WHEN NOT o.amount_missing THEN t.amount END::DECIMAL(12, 2) AS amount,
           o.tenant_id::INTEGER AS tenant_id
    FROM _orders AS o JOIN totals AS t USING (order_id)
    ORDER BY o.order_id
    """
    return [skeleton, lines, orders, "DROP TABLE _orders"]


def _leads(s: _Sizes) -> str:
    source = _choice(
        "_u(i, 'source')",
        [("'web'", 35), ("'paid_search'", 25), ("'referral'", 15), ("'event'", 12), ("'partner'", 13)],
    )
    return f"""
    CREATE TABLE leads AS
    WITH l AS (
        SELECT i AS lead_id, {source} AS source,
               -- distinct leads convert into distinct customers
               ((i - 1) * {s.lead_stride}) % {s.customers} + 1 AS candidate
        FROM range(1, {s.leads} + 1) AS t(i)
    ),
    c AS (
        SELECT *,
               _u(lead_id, 'converted') < CASE source WHEN 'referral' THEN 0.42 WHEN 'partner' THEN 0.30
                   WHEN 'web' THEN 0.22 WHEN 'event' THEN 0.18 ELSE 0.14 END AS converted
        FROM l
    )
    SELECT c.lead_id::INTEGER AS lead_id,
           CASE WHEN c.converted
                -- a converted lead was created some days (exponential, mean 21) before its customer signed up
                THEN greatest({T0}, cu.signed_up_at - to_seconds(_exp(c.lead_id, 'lag', 21 * 86400)::BIGINT))
                ELSE {_ts(f"{SPAN_SECONDS} * pow(_u(c.lead_id, 'created'), 0.8)")}
           END::TIMESTAMP AS created_at,
           c.source::VARCHAR AS source,
           CASE WHEN c.converted THEN cu.country ELSE g.country END::VARCHAR AS country,
           CASE WHEN c.converted THEN cu.signed_up_at END::TIMESTAMP AS converted_at,
           CASE WHEN c.converted THEN cu.customer_id END::INTEGER AS customer_id,
           round(CASE c.source WHEN 'web' THEN 0.5 + 4 * _u(c.lead_id, 'cost')
                               WHEN 'paid_search' THEN 20 + 130 * _u(c.lead_id, 'cost')
                               WHEN 'referral' THEN 10 + 40 * _u(c.lead_id, 'cost')
                               WHEN 'event' THEN 50 + 250 * _u(c.lead_id, 'cost')
                               ELSE 30 + 70 * _u(c.lead_id, 'cost') END, 2)::DECIMAL(12, 2) AS cost
    FROM c
    JOIN customers AS cu ON cu.customer_id = c.candidate
    JOIN _geo AS g ON g.geo_id = _geo_pick(c.lead_id, 'lead_geo')
    ORDER BY lead_id
    """


def _opportunities(con: duckdb.DuckDBPyConnection, s: _Sizes) -> list[str]:
    # Opportunities are a B2B pipeline: they belong to business customers (any customer in a tiny demo without one).
    row = con.execute("SELECT count(*) FROM _cust WHERE segment <> 'consumer'").fetchone()
    pool = "segment <> 'consumer'" if row and row[0] else "TRUE"
    day = 86_400
    stage_list = _list(STAGES)
    helper = f"""
    CREATE TEMP TABLE _opps AS
    WITH pool AS (
        SELECT customer_id, signup_s, owner_rep_id, segment, row_number() OVER (ORDER BY customer_id) AS rn
        FROM _cust WHERE {pool}
    ),
    o AS (
        SELECT i AS opportunity_id, 1 + floor(_u(i, 'opp_customer') * (SELECT count(*) FROM pool))::BIGINT AS rn
        FROM range(1, {s.opportunities} + 1) AS t(i)
    ),
    walked AS (
        SELECT o.opportunity_id, p.customer_id, p.segment,
               coalesce(p.owner_rep_id, 1 + floor(_u(o.opportunity_id, 'opp_rep') * {s.reps})::BIGINT)
                   AS owner_rep_id,
               p.signup_s + floor(({SPAN_SECONDS} - p.signup_s) * _u(o.opportunity_id, 'opp_created'))::BIGINT
                   AS t1,
               -- the furthest open stage reached (1 = prospecting .. 4 = negotiation): a narrowing funnel
               CASE WHEN _u(o.opportunity_id, 'reach2') >= 0.8 THEN 1
                    WHEN _u(o.opportunity_id, 'reach3') >= 0.65 THEN 2
                    WHEN _u(o.opportunity_id, 'reach4') >= 0.6 THEN 3 ELSE 4 END AS k,
               -- time spent in each stage; a few zero durations give tied timestamps
               CASE WHEN _u(o.opportunity_id, 'tie1') < 0.04 THEN 0
                    ELSE _exp(o.opportunity_id, 'd1', 7 * {day}) END::BIGINT AS d1,
               _exp(o.opportunity_id, 'd2', 10 * {day})::BIGINT AS d2,
               _exp(o.opportunity_id, 'd3', 14 * {day})::BIGINT AS d3,
               CASE WHEN _u(o.opportunity_id, 'tie_close') < 0.04 THEN 0
                    ELSE _exp(o.opportunity_id, 'dc', 12 * {day}) END::BIGINT AS dc
        FROM o JOIN pool AS p USING (rn)
    ),
    timed AS (
        SELECT *, t1 + d1 AS t2, t1 + d1 + d2 AS t3, t1 + d1 + d2 + d3 AS t4,
               -- some deals jump from prospecting straight to proposal
               k >= 3 AND _u(opportunity_id, 'skip') < 0.08 AS skip2,
               _u(opportunity_id, 'won') < CASE k WHEN 1 THEN 0.03 WHEN 2 THEN 0.1 WHEN 3 THEN 0.3 ELSE 0.55 END
                   AS won
        FROM walked
    ),
    closed AS (
        SELECT *, [t1, t2, t3, t4][k] + dc AS tc FROM timed
    )
    SELECT *,
           -- a deal whose close would fall after the end of the data is still open
           tc < {SPAN_SECONDS} AS is_closed,
           CASE WHEN k >= 4 AND t4 < {SPAN_SECONDS} THEN 4 WHEN k >= 3 AND t3 < {SPAN_SECONDS} THEN 3
                WHEN k >= 2 AND NOT skip2 AND t2 < {SPAN_SECONDS} THEN 2 ELSE 1 END AS current_stage
    FROM closed
    """
    table = f"""
    CREATE TABLE opportunities AS
    SELECT opportunity_id::INTEGER AS opportunity_id, customer_id::INTEGER AS customer_id,
           owner_rep_id::INTEGER AS owner_rep_id, {_ts("t1")} AS created_at,
           CASE WHEN is_closed THEN {_ts("tc")} END AS closed_at,
           CASE WHEN NOT is_closed THEN {stage_list}[current_stage]
                WHEN won THEN 'closed_won' ELSE 'closed_lost' END::VARCHAR AS stage,
           CASE WHEN is_closed AND NOT won THEN {stage_list}[k] END::VARCHAR AS last_stage_reached,
           (round(1000 * exp(3.5 * _u(opportunity_id, 'opp_amount'))
                  * CASE segment WHEN 'enterprise' THEN 4 ELSE 1 END, -2))::DECIMAL(12, 2) AS amount,
           (1 + floor(_u(opportunity_id, 'opp_product') * {N_PRODUCTS}))::INTEGER AS product_id
    FROM _opps
    ORDER BY opportunity_id
    """
    return [helper, table]


def _stage_history() -> str:
    end = SPAN_SECONDS
    return f"""
    CREATE TABLE opportunity_stage_history AS
    WITH rows AS (
        SELECT opportunity_id, 1 AS stage_idx, 'prospecting' AS stage, t1 AS s FROM _opps
        UNION ALL
        SELECT opportunity_id, 2, 'qualification', t2 FROM _opps WHERE k >= 2 AND NOT skip2 AND t2 < {end}
        UNION ALL
        SELECT opportunity_id, 3, 'proposal', t3 FROM _opps WHERE k >= 3 AND t3 < {end}
        UNION ALL
        SELECT opportunity_id, 4, 'negotiation', t4 FROM _opps WHERE k >= 4 AND t4 < {end}
        UNION ALL
        SELECT opportunity_id, 5, CASE WHEN won THEN 'closed_won' ELSE 'closed_lost' END, tc
        FROM _opps WHERE is_closed
    )
    SELECT opportunity_id::INTEGER AS opportunity_id, stage::VARCHAR AS stage, {_ts("s")} AS entered_at
    FROM rows
    ORDER BY opportunity_id, stage_idx
    """


def _tickets(s: _Sizes) -> str:
    # log-normal resolution times around a typical time per priority
    z = "_z(i, 'resolution')"
    return f"""
    CREATE TABLE tickets AS
    WITH t AS (
        SELECT i AS ticket_id, c.customer_id,
               c.signup_s + floor(({SPAN_SECONDS} - c.signup_s) * _u(i, 'opened'))::BIGINT AS opened_s,
               {_choice("_u(i, 'priority')", [("'low'", 35), ("'medium'", 40), ("'high'", 20), ("'urgent'", 5)])}
                   AS priority,
               {z} AS z, i
        FROM range(1, {s.tickets} + 1) AS r(i)
        JOIN _cust AS c ON c.customer_id = 1 + floor(_u(i, 'ticket_customer') * {s.customers})::BIGINT
    ),
    resolved AS (
        SELECT *,
               opened_s + (3600 * CASE priority WHEN 'urgent' THEN 4 WHEN 'high' THEN 12 WHEN 'medium' THEN 36
                                                ELSE 72 END * exp(0.8 * z))::BIGINT AS closed_s,
               _u(i, 'never_closed') < 0.01 AS abandoned
        FROM t
    )
    SELECT ticket_id::INTEGER AS ticket_id, customer_id::INTEGER AS customer_id, {_ts("opened_s")} AS opened_at,
           CASE WHEN closed_s < {SPAN_SECONDS} AND NOT abandoned THEN {_ts("closed_s")} END AS closed_at,
           {_choice("_u(i, 'ticket_channel')", [("'email'", 35), ("'phone'", 25), ("'chat'", 25), ("'web'", 15)])}
               ::VARCHAR AS channel,
           priority::VARCHAR AS priority,
           -- about 40% of closed tickets get a survey answer; slow resolutions score lower
           CASE WHEN closed_s < {SPAN_SECONDS} AND NOT abandoned AND _u(i, 'csat_answered') < 0.4 THEN
               least(5, greatest(1, round(3.9 - 0.9 * z + 3.5 * (_u(i, 'csat') - 0.5))))
           END::INTEGER AS csat_score
    FROM resolved
    ORDER BY ticket_id
    """


def _nps(s: _Sizes) -> str:
    return f"""
    CREATE TABLE nps_responses AS
    SELECT i::INTEGER AS response_id, c.customer_id::INTEGER AS customer_id,
           {_ts(f"c.signup_s + floor(({SPAN_SECONDS} - c.signup_s) * _u(i, 'answered'))")} AS answered_at,
           -- a per-customer mood keeps repeated answers of one customer alike; a few answers are random
           CASE WHEN _u(i, 'nps_random') < 0.03 THEN floor(11 * _u(i, 'nps_any'))
                ELSE least(10, greatest(0, round(8.2 + 2.2 * (0.6 * _z(c.customer_id, 'mood') + 0.8 * _z(i, 'nps')))))
           END::INTEGER AS score
    FROM range(1, {s.nps} + 1) AS r(i)
    JOIN _cust AS c ON c.customer_id = 1 + floor(_u(i, 'nps_customer') * {s.customers})::BIGINT
    ORDER BY response_id
    """


def _targets(s: _Sizes) -> str:
    # Targets are set near each rep's actual monthly revenue, so attainment spreads around 100%.
    return f"""
    CREATE TABLE targets AS
    WITH months AS (
        SELECT m, (DATE '{START}' + to_months(m::INTEGER))::DATE AS month FROM range({MONTHS}) AS t(m)
    ),
    actual AS (
        SELECT c.owner_rep_id AS rep_id, date_trunc('month', o.ordered_at)::DATE AS month, sum(o.amount) AS revenue
        FROM orders AS o JOIN customers AS c USING (customer_id)
        WHERE o.amount IS NOT NULL AND o.status <> 'cancelled' AND c.owner_rep_id IS NOT NULL
        GROUP BY ALL
    )
    SELECT r.rep_id, r.region, m.month,
           (round(greatest(1000, coalesce(a.revenue, 0)::DOUBLE
                  * (0.85 + 0.4 * _u(r.rep_id * 100 + m.m, 'target'))) / 100) * 100)::DECIMAL(12, 2)
               AS revenue_target
    FROM sales_reps AS r CROSS JOIN months AS m
    LEFT JOIN actual AS a ON a.rep_id = r.rep_id AND a.month = m.month
    ORDER BY r.rep_id, m.month
    """


def _account_balances() -> str:
    # Month-end balances of business accounts from their sign-up month on: a semi-additive snapshot (sum it
    # across customers, never across months). A cumulative sum of drifting deltas makes a plausible balance path.
    return f"""
    CREATE TABLE account_balances AS
    WITH months AS (
        SELECT m, last_day((DATE '{START}' + to_months(m::INTEGER))::DATE) AS snapshot_date
        FROM range({MONTHS}) AS t(m)
    ),
    grid AS (
        SELECT c.customer_id, c.segment, m.m, m.snapshot_date,
               (round((_u(c.customer_id * 100 + m.m, 'balance') - 0.42)
                      * CASE c.segment WHEN 'enterprise' THEN 40000 ELSE 5000 END, 2))::DECIMAL(12, 2) AS delta
        FROM _cust AS c JOIN months AS m ON m.snapshot_date >= {_ts("c.signup_s")}::DATE
        WHERE c.segment <> 'consumer'
    )
    SELECT customer_id::INTEGER AS customer_id, snapshot_date,
           greatest(0, sum(delta) OVER (PARTITION BY customer_id ORDER BY snapshot_date))::DECIMAL(12, 2)
               AS balance
    FROM grid
    ORDER BY customer_id, snapshot_date
    """
