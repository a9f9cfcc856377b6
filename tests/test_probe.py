"""`crmetrics validate` checks the project against its database and points at the YAML that names a missing column."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import crmetrics
from crmetrics.cli import main


@pytest.fixture()
def copy(crm, tmp_path: Path) -> Path:
    shutil.copy(crm.root / "crm.duckdb", tmp_path / "crm.duckdb")
    shutil.copy(crm.root / "crmetrics.yml", tmp_path / "crmetrics.yml")
    return tmp_path


def edit(folder: Path, old: str, new: str) -> int:
    """Replace `old` once and return the 1-based line it was on."""
    text = (folder / "crmetrics.yml").read_text()
    line = text[: text.index(old)].count("\n") + 1
    (folder / "crmetrics.yml").write_text(text.replace(old, new, 1))
    return line


def test_a_valid_project_checks_clean_against_its_database(copy: Path, capsys) -> None:
    assert crmetrics.load(copy / "crmetrics.yml").check_database() == []
    assert main(["validate", "--project", str(copy / "crmetrics.yml")]) == 0
    assert "database checked" in capsys.readouterr().out


def test_a_missing_column_is_reported_at_its_measure(copy: Path, capsys) -> None:
    line = edit(copy, "revenue: {agg: sum, expr: amount}", "revenue: {agg: sum, expr: amout}")
    (issue,) = crmetrics.load(copy / "crmetrics.yml").check_database()
    assert issue.code == "CRM540" and issue.location.line == line and "amout" in issue.message
    assert "orders.revenue" in issue.message
    assert main(["validate", "--project", str(copy / "crmetrics.yml")]) == 2
    err = capsys.readouterr().err
    assert f"crmetrics.yml:{line}:" in err and "Traceback" not in err


def test_a_missing_table_is_reported_once_at_its_entity(copy: Path) -> None:
    edit(copy, "table: tickets", "table: tickts")
    (issue,) = crmetrics.load(copy / "crmetrics.yml").check_database()
    assert issue.code == "CRM540" and "tickets" in issue.message and "tickts" in issue.message


def test_a_key_held_by_two_rows_of_a_joined_entity_is_reported_at_the_entity(copy: Path, capsys) -> None:
    import duckdb

    con = duckdb.connect(str(copy / "crm.duckdb"))
    (customer, _), *_ = con.execute("SELECT customer_id, COUNT(*) FROM customers GROUP BY 1 ORDER BY 1").fetchall()
    con.execute(f"INSERT INTO customers SELECT * FROM customers WHERE customer_id = {customer}")
    con.close()
    text = (copy / "crmetrics.yml").read_text()
    line = text[: text.index("  customers:\n")].count("\n") + 1
    (issue,) = crmetrics.load(copy / "crmetrics.yml").check_database()
    assert issue.code == "CRM541" and (issue.location.line, issue.location.column) == (line, 3)
    assert f"1 value is held by more than one row (e.g. {customer})" in issue.message
    assert main(["validate", "--project", str(copy / "crmetrics.yml")]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize(("copy_segment", "reported"), [("'other'", False), ("segment", True)])
def test_under_a_row_filter_a_key_need_only_be_unique_among_the_rows_one_caller_sees(
    copy: Path, copy_segment: str, reported: bool
) -> None:
    """Tenants may reuse a key: the join carries the row filter (docs/security.md), so no row is joined twice."""
    import duckdb

    con = duckdb.connect(str(copy / "crm.duckdb"))
    (customer,) = con.execute("SELECT MIN(customer_id) FROM customers").fetchone()
    con.execute(
        f"INSERT INTO customers SELECT customer_id, region_id, {copy_segment}, age, signed_up_at FROM customers "
        f"WHERE customer_id = {customer}"
    )
    con.close()
    text = (copy / "crmetrics.yml").read_text()
    (copy / "crmetrics.yml").write_text(text + "security:\n  row_filters:\n    customers: customers.segment = :seg\n")
    issues = crmetrics.load(copy / "crmetrics.yml").check_database()
    assert [i.code for i in issues] == (["CRM541"] if reported else [])
