"""Injection attempts through every string a user supplies: each is refused with a clear error or proven harmless.

"Harmless" means: the compiled SQL is exactly one SELECT, running it leaves every table as it was, and the row
filter still applies. The database used here holds a canary table whose contents are checked after every attempt.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

import crmetrics
from crmetrics.cli import main
from crmetrics.engines.duckdb import DuckDBEngine
from crmetrics.errors import (
    ConfigError,
    CrmetricsError,
    QueryError,
    ReferenceNotFound,
    UnsafeExpressionError,
)
from tests import tenancy_data as td

# strings an attacker might put where crmetrics expects a filter over dimension references
WHERE_ATTACKS = [
    "1; DROP TABLE orders",
    "customers.region = 'a'; DROP TABLE orders",
    "customers.region = 'a' -- and the rest is a comment",
    "customers.region = 'a' /* comment */",
    "/**/customers.region = 'a'",
    "customers.region = 'a' UNION SELECT * FROM canary",
    "customers.region IN (SELECT secret FROM canary)",
    "EXISTS (SELECT 1 FROM canary)",
    "customers.region = (SELECT max(secret) FROM canary)",
    "customers.region || (SELECT 1) = 'a'",
    "CAST((SELECT 1) AS INT) = 1",
    "customers.region = read_text('/etc/passwd')",
    "customers.region = getenv('HOME')",
    "customers.region = current_setting('access_mode')",
    "customers.region = current_user",
    "pg_sleep(10) IS NULL",
    "customers.region = version()",
    "sum(orders.amount) > 0",
    "count(*) > 0",
    "row_number() OVER () = 1",
    "canary.secret = 'x'",
    "secret = 'x'",
    "orders.amount > 0",  # a raw column that is not a declared dimension
    "tenant_id = 2",
    "customers.region = $$a$$",
    "customers.region = E'\\x41'",
    "customers.region = ?",
    "customers.region = $1",
    "customers.region = 'a' \x00",
    "DROP TABLE orders",
    "COPY orders TO '/tmp/stolen.csv'",
    "ATTACH '/tmp/x.db' AS x",
    "PRAGMA database_list",
    "SET threads = 1",
    "customers.*",
    "*",
    "customers.region = {'a': 1}",
    "customers.region = [1, 2]",
    "lambda x: x",
    "customers.region = 'unterminated",
    "(" * 400 + "1" + ")" * 400,
    "NOT " * 3000 + "TRUE",
    "customers.region = 'a\\' OR 1=1 --'",  # MySQL would read \' as an escaped quote
    "customers.region = 'a' AND",
    "customers.region LIKE 'a' ESCAPE (SELECT '!')",
    "customers.region = 'a' OR 1 = (SELECT 1 FROM canary LIMIT 1)",
    "customers.region = query_table('canary')",
    "customers.region = (FROM canary)",
    "customers.region = chr(39) || (SELECT secret FROM canary)",
]

# odd but legitimate filters: accepted, and shown to do nothing but filter
WHERE_HARMLESS = [
    "customers.region = 'O''Brien; DROP TABLE orders --'",
    "customers.region = '; DROP TABLE canary; --'",
    "customers.region = '/* not a comment */'",
    "customers.region = '-- not a comment'",
    "customers.region = 'Zürich 🚀'",
    "customers.region = 'x' OR 1 = 1",
    "customers.\"region\" = 'north'",
    "other_db.customers.region = 'north'",
    "customers.tenant_id = :tenant_id",
    "",  # no filter at all
    "   ",
    "lower(customers.region) LIKE '%no%'",
]

NAME_ATTACKS = [
    "revenue; DROP TABLE orders",
    "revenue --",
    "revenue'",
    'revenue"',
    "revenue) UNION SELECT * FROM canary --",
    "canary",
    "__class__",
    "../../etc/passwd",
    "",
    "revenue\x00",
    "REVENUE",
]

REF_ATTACKS = [
    "customers.region; DROP TABLE orders",
    "customers.region --",
    'customers."region"',
    "customers.region)",
    "customers.region:month; DROP",
    "customers.region:day",
    "customers.secret",
    "canary.secret",
    "(SELECT 1)",
    "customers.*",
    "metric_time:fortnight",
    "metric_time:month:day",
    "region",
    "customers.region AS x",
    "customers.region, canary.secret",
    "",
]


def _table_state(con: duckdb.DuckDBPyConnection) -> list:
    tables = con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()
    counts = [con.execute(f'SELECT count(*) FROM "{name}"').fetchone() for (name,) in tables]
    return [tables, counts, con.execute("SELECT * FROM canary").fetchall()]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("inject")
    project = crmetrics.load(td.write_project(folder))
    con = td.load_duckdb(td.make_data())
    con.execute("CREATE TABLE canary (secret VARCHAR)")
    con.execute("INSERT INTO canary VALUES ('the secret')")
    return {"project": project, "con": con, "engine": DuckDBEngine(connection=con), "state": _table_state(con)}


def assert_single_select(sql: str) -> None:
    statements = sqlglot.parse(sql, read="duckdb")
    assert len(statements) == 1 and isinstance(statements[0], exp.Query), sql
    assert "canary" not in {table.name for table in statements[0].find_all(exp.Table)}


@pytest.mark.parametrize("where", WHERE_ATTACKS, ids=repr)
def test_where_attacks_are_refused(world: dict, where: str) -> None:
    with pytest.raises((UnsafeExpressionError, ReferenceNotFound, QueryError)) as error:
        world["project"].query(["revenue"], where=where, context={"tenant_id": 1}, connection=world["engine"])
    assert error.value.code.startswith(("CRM2", "CRM3"))
    assert _table_state(world["con"]) == world["state"]


@pytest.mark.parametrize("where", WHERE_HARMLESS, ids=repr)
def test_odd_but_legitimate_filters_only_filter(world: dict, where: str) -> None:
    project, engine = world["project"], world["engine"]
    context = {"tenant_id": 1}
    sql = project.compile(["order_count"], where=where, context=context)
    assert_single_select(sql)
    filtered = project.query(["order_count"], where=where, context=context, connection=engine).rows[0][0]
    everything = project.query(["order_count"], context=context, connection=engine).rows[0][0]
    assert 0 <= filtered <= everything == len(td.make_data().of(1).orders)
    assert _table_state(world["con"]) == world["state"]


@pytest.mark.parametrize("name", NAME_ATTACKS, ids=repr)
def test_metric_and_segment_names_are_looked_up_never_spliced(world: dict, name: str) -> None:
    project = world["project"]
    with pytest.raises(CrmetricsError):
        project.compile([name], context={"tenant_id": 1})
    with pytest.raises(CrmetricsError):
        project.compile(["revenue"], segments=[name], context={"tenant_id": 1})
    with pytest.raises(CrmetricsError):
        project.compile(["revenue"], order_by=[name], context={"tenant_id": 1})
    with pytest.raises(CrmetricsError):
        project.analyze(name, context={"tenant_id": 1})


@pytest.mark.parametrize("ref", REF_ATTACKS, ids=repr)
def test_references_are_parsed_strictly(world: dict, ref: str) -> None:
    with pytest.raises((QueryError, ReferenceNotFound)):
        world["project"].compile(["revenue"], by=[ref], context={"tenant_id": 1})


@pytest.mark.parametrize("limit", ["10; DROP TABLE orders", "10", -1, 1.5, True, [10]], ids=repr)
def test_limit_must_be_a_non_negative_integer(world: dict, limit: object) -> None:
    with pytest.raises(QueryError):
        world["project"].compile(["revenue"], limit=limit, context={"tenant_id": 1})  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["tenant_id; DROP TABLE orders", "x' OR '1'='1", "", "ü"], ids=repr)
def test_context_names_are_only_looked_up(world: dict, name: str) -> None:
    project, engine = world["project"], world["engine"]
    rows = project.query(["order_count"], context={"tenant_id": 1, name: 2}, connection=engine).rows
    assert rows == [(len(td.make_data().of(1).orders),)]


# --- the CLI ----------------------------------------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("inject_cli")
    path = td.write_project(folder)
    db = folder / "crm.duckdb"
    con = td.load_duckdb(td.make_data(), duckdb.connect(str(db)))
    con.execute("CREATE TABLE canary (secret VARCHAR)")
    con.close()
    return path, db


CLI_ATTACKS = [
    ["-m", "revenue; DROP TABLE orders"],
    ["-m", "revenue", "--by", "customers.region; DROP TABLE orders"],
    ["-m", "revenue", "--where", "1; DROP TABLE orders"],
    ["-m", "revenue", "--where", "customers.region IN (SELECT secret FROM canary)"],
    ["-m", "revenue", "--segment", "x' OR 1=1 --"],
    ["-m", "revenue", "--order-by", "-revenue; DROP"],
    ["-m", "revenue", "--limit", "1; DROP TABLE orders"],
    ["-m", "revenue", "--context", "tenant_id"],
    ["-m", "revenue", "--context", "=1"],
    ["-m", "revenue"],  # no tenant: fails closed
]


@pytest.mark.parametrize("argv", CLI_ATTACKS, ids=lambda a: " ".join(a))
@pytest.mark.parametrize("command", ["query", "compile"])
def test_cli_refuses_with_exit_2_and_no_traceback(cli_db: tuple[Path, Path], argv: list[str], command: str) -> None:
    path, db = cli_db
    context = [] if "--context" in argv or argv == ["-m", "revenue"] else ["--context", "tenant_id=1"]
    connection = ["--connection", f"duckdb:///{db}"] if command == "query" else []
    code, out, err = run_cli([command, "--project", str(path), *connection, *argv, *context])
    assert code == 2, (out, err)
    assert "Traceback" not in err and out == ""
    assert err.strip()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM information_schema.tables").fetchone() == (4,)
    con.close()


# --- YAML expressions and sources ---------------------------------------------------------------------------

BASE = """
version: 1
name: y
entities:
  customers:
    {customers_source}
    key: customer_id
    dimensions:
      region: {region}
    measures:
      n: {measure}
  orders:
    table: orders
    key: order_id
    joins: {{customers: {{on: customer_id}}}}
    measures:
      revenue: {{agg: sum, expr: amount}}
metrics:
  n: {metric}
  revenue: {{measure: orders.revenue}}
segments:
  s: {{entity: customers, where: "{segment}"}}
security:
  row_filters:
    customers: "{row_filter}"
"""

DEFAULTS = {
    "customers_source": "table: customers",
    "region": "{}",
    "measure": "{agg: count}",
    "metric": "{measure: customers.n}",
    "segment": "customers.region = 'north'",
    "row_filter": "customers.tenant_id = :tenant_id",
}

YAML_EXPRESSION_ATTACKS = [
    "1; DROP TABLE orders",
    "region = 'a' -- x",
    "(SELECT secret FROM canary)",
    "region IN (SELECT secret FROM canary)",
    "read_text('/etc/passwd')",
    "getenv('HOME')",
    "sum(amount)",
    "row_number() OVER ()",
    "region = ?",
    "canary.secret",
]


def _yaml(**overrides: str) -> str:
    return BASE.format(**{**DEFAULTS, **overrides})


def _load(tmp_path: Path, text: str, **kwargs: object) -> crmetrics.Project:
    path = tmp_path / "crmetrics.yml"
    path.write_text(text, encoding="utf-8")
    return crmetrics.load(path, **kwargs)  # type: ignore[arg-type]


def test_the_yaml_template_loads(tmp_path: Path) -> None:
    assert "customers" in _load(tmp_path, _yaml()).model.entities


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.mark.parametrize("attack", YAML_EXPRESSION_ATTACKS, ids=repr)
@pytest.mark.parametrize("position", ["dimension", "measure", "metric_filter", "derived", "segment", "row_filter"])
def test_yaml_expressions_are_refused_at_load(tmp_path: Path, attack: str, position: str) -> None:
    overrides = {
        "dimension": {"region": "{expr: " + _quote(attack) + "}"},
        "measure": {"measure": "{agg: sum, expr: " + _quote(attack) + "}"},
        "metric_filter": {"metric": "{measure: customers.n, filter: " + _quote(attack) + "}"},
        "derived": {"metric": "{expr: " + _quote(attack) + "}"},
        "segment": {"segment": attack.replace('"', '\\"')},
        "row_filter": {"row_filter": attack.replace('"', '\\"')},
    }[position]
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, _yaml(**overrides))
    assert all(issue.location is not None for issue in error.value.issues)


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("table: \"read_csv('/etc/passwd')\"", "CRM131"),
        ('table: "/etc/passwd.csv"', "CRM131"),
        ("table: '\"secret.csv\"'", "CRM131"),
        ('table: "secret.csv"', None),  # schema `secret`, table `csv`: a name, not a file
        ("table: \"glob('/*')\"", "CRM131"),
        ('table: "customers; DROP TABLE orders"', None),  # one quoted identifier
        ("sql: \"SELECT * FROM read_csv('/etc/passwd')\"", "CRM138"),
        ("sql: \"SELECT * FROM '/etc/x.csv'\"", "CRM138"),
        ("sql: \"SELECT * FROM customers JOIN glob('/*') g ON true\"", "CRM138"),
        ("sql: \"SELECT *, getenv('HOME') AS h FROM customers\"", "CRM138"),
        ('sql: "SELECT 1; DROP TABLE orders"', "CRM132"),
        ('sql: "DROP TABLE orders"', "CRM132"),
        ('sql: "SELECT 1 -- x"', None),  # a comment inside the author's own SELECT does no harm
        ("file: ../outside.csv", "CRM123"),
        ("file: /etc/passwd.csv", "CRM123"),
    ],
)
def test_entity_sources_stay_inside_the_project(tmp_path: Path, source: str, code: str | None) -> None:
    project_folder = tmp_path / "project"
    project_folder.mkdir()
    (tmp_path / "outside.csv").write_text("customer_id\n1\n", encoding="utf-8")
    text = _yaml(customers_source=source)
    if code is None:
        assert_single_select(_load(project_folder, text).compile(["n"], context={"tenant_id": 1}))
        return
    with pytest.raises(ConfigError) as error:
        _load(project_folder, text)
    assert code in {issue.code for issue in error.value.issues}, str(error.value)


def test_allow_outside_opens_files_and_sql_readers(tmp_path: Path) -> None:
    project_folder = tmp_path / "project"
    project_folder.mkdir()
    (tmp_path / "outside.csv").write_text("customer_id,region,tenant_id\n1,north,1\n", encoding="utf-8")
    _load(project_folder, _yaml(customers_source="file: ../outside.csv"), allow_outside=True)
    _load(
        project_folder, _yaml(customers_source="sql: \"SELECT * FROM read_csv('../outside.csv')\""), allow_outside=True
    )


def test_symlinks_and_includes_cannot_leave_the_project(tmp_path: Path) -> None:
    project_folder = tmp_path / "project"
    project_folder.mkdir()
    (tmp_path / "outside.csv").write_text("customer_id\n1\n", encoding="utf-8")
    (tmp_path / "kpis.yml").write_text("metrics: {x: {measure: customers.n}}\n", encoding="utf-8")
    os.symlink(tmp_path / "outside.csv", project_folder / "inside.csv")
    os.symlink(tmp_path / "kpis.yml", project_folder / "kpis.yml")
    with pytest.raises(ConfigError) as error:
        _load(project_folder, _yaml(customers_source="file: inside.csv"))
    assert "CRM123" in str(error.value)
    for pattern in ("../kpis.yml", "kpis.yml", "../*.yml", str(tmp_path / "kpis.yml"), "/**/*.yml", "sub/../../*.yml"):
        with pytest.raises(ConfigError) as error:
            _load(project_folder, f"include: [{_quote(pattern)}]\n" + _yaml())
        assert "CRM123" in {issue.code for issue in error.value.issues}


@pytest.mark.parametrize(
    "name", ["cust'omers", 'cust"omers', "customers; DROP TABLE x", "customers--", "a b", "1abc", "__class__.x"]
)
def test_declared_names_must_be_plain_names(tmp_path: Path, name: str) -> None:
    text = _yaml().replace("  customers:\n", f"  {_quote(name)}:\n", 1)
    with pytest.raises(ConfigError):
        _load(tmp_path, text)


@pytest.mark.parametrize("column", ['region"; DROP TABLE canary; --', "region' OR '1'='1", "reg\\ion", "région"])
def test_column_names_from_yaml_are_quoted_identifiers(tmp_path: Path, column: str) -> None:
    project = _load(tmp_path, _yaml(region="{column: " + _quote(column) + "}"))
    sql = project.compile(["n"], by=["customers.region"], context={"tenant_id": 1})
    assert_single_select(sql)
    names = {c.name for c in sqlglot.parse_one(sql, read="duckdb").find_all(exp.Column)}
    assert column in names
    con = duckdb.connect()
    con.execute("CREATE TABLE customers (customer_id INTEGER, tenant_id INTEGER)")
    con.execute("CREATE TABLE canary (secret VARCHAR)")
    with pytest.raises(CrmetricsError):  # the column does not exist: the database says so, nothing else happens
        project.query(["n"], by=["customers.region"], context={"tenant_id": 1}, connection=con)
    assert con.execute("SELECT count(*) FROM canary").fetchone() == (0,)


def test_placeholders_must_be_named_in_yaml(tmp_path: Path) -> None:
    for bad in ("customers.tenant_id = ?", "customers.tenant_id = $1"):
        with pytest.raises(ConfigError):
            _load(tmp_path, _yaml(row_filter=bad))


# --- report parameters ------------------------------------------------------------------------------------------

REPORT_PARAM_ATTACKS = [
    {"where": "customers.region = 'x') OR (TRUE"},  # would close the report's own `where` parenthesis
    {"where": "1; DROP TABLE orders"},
    {"where": "customers.region IN (SELECT secret FROM canary)"},
    {"period": "2023-01-01'; DROP TABLE orders; --..2023-12-31"},
    {"period": "2023-01-01"},
    {"period": ("2023-13-01", "2023-12-31")},
    {"segments": ["x' OR 1=1 --"]},
]


@pytest.mark.parametrize("params", REPORT_PARAM_ATTACKS, ids=repr)
def test_report_parameters_are_refused(world: dict, params: dict) -> None:
    from crmetrics.reports import build_document, resolve_params

    project = world["project"]
    raw = {"where": "customers.region = 'north'", "period": {"start": "2023-01-01", "end": "2023-12-31"}}
    with pytest.raises(CrmetricsError):
        resolved = resolve_params(raw, context={"tenant_id": 1}, **params)
        project.model.reports["r"] = {"title": "r", "sections": [{"type": "kpis", "metrics": ["revenue"]}]}
        try:
            build_document(project, "r", resolved)
        finally:
            del project.model.reports["r"]
    assert _table_state(world["con"]) == world["state"]


def test_report_names_are_looked_up(cli_db: tuple[Path, Path]) -> None:
    path, _ = cli_db
    for name in ("r; DROP TABLE orders", "../../etc/passwd", "__class__"):
        code, _, err = run_cli(["report", name, "--project", str(path), "--context", "tenant_id=1"])
        assert code == 2 and "CRM200" in err and "Traceback" not in err


# --- analyses: the query's where and parameter overrides ---------------------------------------------------------


@pytest.fixture(scope="module")
def analysis_project(tmp_path_factory: pytest.TempPathFactory) -> crmetrics.Project:
    folder = tmp_path_factory.mktemp("inject_analysis")
    project = crmetrics.load(td.write_project(folder, td.project_with_analysis("pareto")))
    if "pareto" not in project.plugins.of("analysis method"):
        pytest.skip("the pareto method is not installed")
    return project


@pytest.mark.parametrize("where", WHERE_ATTACKS[:30], ids=repr)
def test_analysis_where_attacks_are_refused(world: dict, analysis_project: crmetrics.Project, where: str) -> None:
    with pytest.raises(CrmetricsError):
        analysis_project.analyze("a", where=where, context={"tenant_id": 1}, connection=world["engine"])
    assert _table_state(world["con"]) == world["state"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"entity": "customers; DROP TABLE orders"},
        {"entity": "canary"},
        {"metric": "revenue) UNION SELECT * FROM canary --"},
        {"metric": "__class__"},
        {"by": "customers.region; DROP TABLE orders"},
        {"top": "10; DROP TABLE orders"},
    ],
    ids=repr,
)
def test_analysis_parameter_overrides_are_validated(
    world: dict, analysis_project: crmetrics.Project, overrides: dict
) -> None:
    with pytest.raises(CrmetricsError):
        analysis_project.analyze("a", context={"tenant_id": 1}, connection=world["engine"], **overrides)
    assert _table_state(world["con"]) == world["state"]
