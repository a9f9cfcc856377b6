"""Loading projects: includes, environment variables, SQL and file entities, join paths; the CLI's listings."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

import crmetrics
from crmetrics.cli import main


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def shop(tmp_path: Path) -> Path:
    with open(tmp_path / "orders.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["order_id", "customer_id", "amount", "ordered_at"])
        writer.writerows(
            [[1, 1, 10.5, "2024-01-01"], [2, 1, 20, "2024-02-01"], [3, 2, 5, "2024-02-03"], [4, 9, 1, "2024-03-01"]]
        )
    con = duckdb.connect(str(tmp_path / "shop.duckdb"))
    con.execute("CREATE TABLE customers AS SELECT * FROM (VALUES (1, 'EU', 1), (2, 'US', 2)) t(id, region, team)")
    con.execute("CREATE TABLE teams AS SELECT * FROM (VALUES (1, 'Alpha'), (2, 'Beta')) t(team_id, name)")
    con.close()
    write(
        tmp_path,
        "crmetrics.yml",
        """\
version: 1
name: shop
connection: ${SHOP_DB:-duckdb:///shop.duckdb}
include: [kpis/*.yml]
entities:
  teams: {table: teams, key: team_id, dimensions: {name: {}}}
  customers:
    sql: SELECT id AS customer_id, upper(region) AS region, team FROM customers
    key: customer_id
    joins: {teams: team}
    dimensions: {region: {}}
  orders:
    file: orders.csv
    key: order_id
    time: ordered_at
    joins: {customers: customer_id}
    dimensions: {ordered_at: {type: time}}
    measures: {revenue: {agg: sum, expr: amount}, orders: {agg: count}}
""",
    )
    write(tmp_path, "kpis/sales.yml", "metrics:\n  revenue: {measure: orders.revenue}\n")
    write(
        tmp_path,
        "kpis/more.yml",
        "metrics:\n  order_count: {measure: orders.orders}\n  aov: {ratio: [revenue, order_count]}\n",
    )
    return tmp_path


def test_includes_sql_and_file_entities_and_a_two_hop_join(shop: Path) -> None:
    project = crmetrics.load(shop / "crmetrics.yml")
    assert set(project.model.metrics) == {"revenue", "order_count", "aov"}
    result = project.query(["revenue", "aov"], by=["teams.name"])
    assert result.rows == [("Alpha", 30.5, 15.25), ("Beta", 5.0, 5.0), (None, 1.0, 1.0)]
    assert project.query(["order_count"], by=["metric_time:month"]).rows[0][0].isoformat() == "2024-01-01"


def test_environment_variable_overrides_the_connection(shop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_DB", "duckdb:///missing.duckdb")
    with pytest.raises(crmetrics.CrmetricsError) as caught:
        crmetrics.load(shop / "crmetrics.yml").query(["revenue"])
    assert "missing.duckdb" in str(caught.value)


def test_a_name_declared_in_two_files_names_both_places(shop: Path) -> None:
    write(shop, "kpis/dupe.yml", "metrics:\n  revenue: {measure: orders.revenue}\n")
    with pytest.raises(crmetrics.ConfigError) as caught:
        crmetrics.load(shop / "crmetrics.yml")
    (issue,) = caught.value.issues
    assert issue.code == "CRM124" and "kpis/" in str(issue) and "first at" in issue.message


def test_ambiguous_join_paths_are_refused_with_both_paths_named(tmp_path: Path) -> None:
    write(
        tmp_path,
        "crmetrics.yml",
        """\
version: 1
name: diamond
entities:
  regions: {table: regions, key: region_id, dimensions: {name: {}}}
  customers: {table: customers, key: customer_id, joins: {regions: region_id}}
  stores: {table: stores, key: store_id, joins: {regions: region_id}}
  orders:
    table: orders
    joins: {customers: customer_id, stores: store_id}
    measures: {n: {agg: count}}
metrics:
  n: {measure: orders.n}
""",
    )
    project = crmetrics.load(tmp_path / "crmetrics.yml")
    with pytest.raises(crmetrics.QueryError) as caught:
        project.compile(["n"], by=["regions.name"])
    message = str(caught.value)
    assert "orders -> customers -> regions" in message and "orders -> stores -> regions" in message


def test_query_json_keys_are_exactly_what_was_asked(shop: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(shop)
    assert (
        main(
            [
                "query",
                "-m",
                "revenue",
                "-m",
                "aov",
                "--by",
                "customers.region",
                "--by",
                "metric_time:month",
                "--format",
                "json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"customers.region": "EU", "metric_time:month": "2024-01-01", "revenue": 10.5, "aov": 10.5}
    assert rows[-1]["customers.region"] is None
    assert main(["query", "-m", "revenue", "--by", "customers.region", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["customers.region,revenue", "EU,30.5", "US,5.0", ",1.0"]


def test_compile_and_list_commands(shop: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(shop)
    assert main(["compile", "-m", "revenue", "--by", "teams.name", "--dialect", "postgres"]) == 0
    sql = capsys.readouterr().out
    assert 'LEFT JOIN teams AS "teams"' in sql and '"teams.name"' in sql
    assert main(["list", "metrics"]) == 0
    assert "aov" in capsys.readouterr().out
    assert main(["list", "dimensions"]) == 0
    out = capsys.readouterr().out
    assert "teams.name" in out and "metric_time" in out
    assert main(["validate"]) == 0
    assert "ok: shop" in capsys.readouterr().out


def test_compiled_sql_is_cached_per_question_dialect_and_context(shop: Path) -> None:
    project = crmetrics.load(shop / "crmetrics.yml")
    first = project.compile(["revenue"], by=["teams.name"])
    assert project.compile(["revenue"], by=("teams.name",)) is first  # the same question: the cached text
    assert project.compile(["revenue"], by=["teams.name"], dialect="tsql") != first
    assert project.compile(["revenue"], by=["teams.name"], limit=1) != first
    assert project.compile(["revenue"], by=["teams.name"], context={"tenant_id": 1}) is not first
    assert len(project._sql_cache) == 4


def test_table_output_shows_each_metric_in_its_format(shop: Path, capsys, monkeypatch) -> None:
    text = (shop / "crmetrics.yml").read_text()
    (shop / "crmetrics.yml").write_text(
        text.replace(
            "include: [kpis/*.yml]",
            "include: [kpis/*.yml]\nmetrics:\n"
            "  share: {expr: 'revenue / (revenue + 100)', format: percent}\n"
            "  money: {measure: orders.revenue, format: currency}\n"
            "  points: {expr: 'revenue - 50', format: score}",
        )
    )
    monkeypatch.chdir(shop)
    assert main(["query", "-m", "share", "-m", "money", "-m", "revenue", "-m", "points"]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row == [f"{36.5 / 136.5:.1%}", "36.50", "36.5", "-13.5"]


@pytest.mark.parametrize(
    "question",
    [
        {"metrics": 5},
        {"metrics": [None]},
        {"metrics": ["revenue"], "by": {"a": 1}},
        {"metrics": ["revenue"], "context": "tenant_id=7"},
        {"metrics": ["revenue"], "where": 1},
        {"metrics": ["revenue"], "segments": [3]},
        {"metrics": ["revenue"], "order_by": 2},
    ],
)
def test_wrongly_typed_questions_are_query_errors(shop: Path, question: dict) -> None:
    project = crmetrics.load(shop / "crmetrics.yml")
    with pytest.raises(crmetrics.QueryError):
        project.compile(**question)


def test_a_projects_folder_stands_for_its_crmetrics_yml(shop: Path, capsys) -> None:
    assert crmetrics.load(shop).model.name == "shop"
    assert main(["query", "-m", "revenue", "--format", "csv", "--project", str(shop)]) == 0
    assert capsys.readouterr().out.startswith("revenue\n")
    assert main(["validate", "--project", str(shop / "kpis")]) == 2  # a folder without one
    assert "no such project file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "names", "hint"),
    [
        ("orders.chanel", ["orders.channel", "orders.amount"], "did you mean 'orders.channel'?"),
        ("custmers.region", ["customers.region", "orders.channel"], "did you mean 'customers.region'?"),
        ("customers.channel", ["customers.region", "orders.channel"], "did you mean 'orders.channel'?"),
        # a shared entity prefix alone is no likeness: the names there are listed instead
        ("customers.zzzzz", ["customers.age", "customers.region"], "known: 'customers.age', 'customers.region'"),
        ("monthly_review", ["overview"], "known: 'overview'"),
        ("x", [f"metric_{i:02}" for i in range(10)], "'metric_07' and 2 more"),
        ("x", [], "no report is declared"),
    ],
)
def test_an_unknown_name_gets_its_likely_correction_or_the_names_there_are(name, names, hint) -> None:
    message = str(crmetrics.ReferenceNotFound("report", name, names))
    assert message.startswith(f"CRM200 unknown report '{name}'; ") and message.endswith(hint), message


def test_an_empty_relative_range_says_what_it_counted_back_from(shop: Path, capsys) -> None:
    project = str(shop / "crmetrics.yml")
    question = ["query", "-m", "revenue", "--by", "metric_time:month", "--range", "last 90 days", "--project", project]
    assert main([*question, "--format", "json"]) == 0  # the data is from 2024: nothing in the last 90 days
    out, err = capsys.readouterr()
    assert out == "[]\n" and "--today YYYY-MM-DD" in err
    assert main([*question, "--format", "json", "--today", "2024-03-15"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["metric_time:month"] == "2024-01-01" and err == ""  # widened to whole months
    absolute = [*question[:-4], "--range", "1990-01-01 to 1990-03-31", "--project", project]
    assert main(absolute) == 0 and "--today" not in capsys.readouterr().err  # nothing counted back from today


def test_every_command_closes_its_project(shop: Path, capsys, monkeypatch) -> None:
    closed = []
    monkeypatch.setattr(crmetrics.Project, "close", lambda self: closed.append(self.name))
    project = str(shop / "crmetrics.yml")
    assert main(["query", "-m", "revenue", "--project", project]) == 0
    assert main(["compile", "-m", "revenue", "--project", project]) == 0
    assert main(["query", "-m", "revenu", "--project", project]) == 2  # closed on an error too
    assert closed == ["shop", "shop", "shop"]


def test_table_output_prints_only_digits_that_are_in_the_data() -> None:
    """1000000000123.43 is ...123.4300537 in binary: the table shows what JSON shows, not the binary's digits."""
    from crmetrics.cli.common import format_table

    values = [1000000000123.43, 0.1 + 0.2, 2.675, -1e-05]
    text = format_table(["number", "money"], [(v, v) for v in values], formats={"money": "currency"})
    rows = [line.split() for line in text.splitlines()[2:-1]]
    assert [r[0] for r in rows] == ["1,000,000,000,123.43", "0.3", "2.675", "0"]
    # two places of the shortest decimal: 2.675 is 2.67499999999999982236431605997495353221893310546875 in binary
    assert [r[1] for r in rows] == ["1,000,000,000,123.43", "0.30", "2.68", "0.00"]


def test_order_by_a_descending_name_needs_no_equals_sign(shop: Path, capsys, monkeypatch) -> None:
    """`--order-by -revenue` reads as a descending order, not as an unknown option `-revenue`."""
    import json

    monkeypatch.chdir(shop)
    assert main(["query", "-m", "revenue", "--by", "teams.name", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert main(["query", "-m", "revenue", "--by", "teams.name", "--order-by", "-revenue", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == sorted(rows, key=lambda r: -r["revenue"])
    assert len({r["revenue"] for r in rows}) == len(rows) > 1  # distinct values: the order is the only one
