"""Row-level security: one tenant never sees, and is never affected by, another tenant's rows.

Three tenants share tables whose ids overlap. Every query is checked twice: against a pure-Python reference that
only reads the asking tenant's rows, and against a database in which every other tenant's rows were changed (and
rows colliding with the tenant's ids were added). A result that depends on another tenant's rows fails one of them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

import crmetrics
from crmetrics.cli import main
from crmetrics.compiler.frames import Frame
from crmetrics.engines.duckdb import DuckDBEngine
from crmetrics.errors import ContextError, CrmetricsError
from tests import tenancy_data as td

ORDER_ONLY = ["revenue", "order_count", "buyers", "biggest_order", "online_revenue", "aov"]
METRICS = [*ORDER_ONLY, "ticket_count", "customers", "revenue_per_ticket"]
BY_ANY = ["customers.region", "customers.tier", "metric_time:month", "customers.lifetime_revenue"]


@functools.cache
def world(tmp: str) -> dict[str, Any]:
    """The project, the base database and, per tenant, a database in which the other tenants' rows changed."""
    data = td.make_data()
    project = crmetrics.load(td.write_project(Path(tmp)))
    engines = {"base": DuckDBEngine(connection=td.load_duckdb(data))}
    for tenant in td.TENANTS:
        engines[tenant] = DuckDBEngine(connection=td.load_duckdb(td.scramble_others(data, tenant)))
    return {"data": data, "project": project, "engines": engines, "folder": Path(tmp)}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return world(str(tmp_path_factory.mktemp("tenants")))


@st.composite
def questions(draw: st.DrawFn) -> dict[str, Any]:
    metrics = draw(st.lists(st.sampled_from(METRICS), min_size=1, max_size=3, unique=True))
    choices = BY_ANY + (["orders.channel"] if set(metrics) <= set(ORDER_ONLY) else [])
    return {
        "metrics": metrics,
        "by": draw(st.lists(st.sampled_from(choices), max_size=2, unique=True)),
        "where": draw(st.none() | st.sampled_from(sorted(td.WHERES))),
        "segments": draw(st.lists(st.sampled_from(sorted(td.SEGMENTS)), max_size=2, unique=True)),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=questions(), tenant=st.sampled_from(td.TENANTS))
def test_query_results_depend_on_own_tenant_only(tenants: dict[str, Any], question: dict, tenant: int) -> None:
    project, engines = tenants["project"], tenants["engines"]
    context = {"tenant_id": tenant}
    got = project.query(**question, context=context, connection=engines["base"])
    assert got.columns == question["by"] + question["metrics"]
    scrambled = project.query(**question, context=context, connection=engines[tenant])
    assert td.normalise(got.rows) == td.normalise(scrambled.rows), "another tenant's rows changed the result"
    expected = td.reference_rows(tenants["data"].of(tenant), **question)
    assert td.normalise(got.rows) == td.normalise(expected)


@st.composite
def time_questions(draw: st.DrawFn) -> dict[str, Any]:
    question = {
        "metrics": draw(st.lists(st.sampled_from([*td.TIME_METRICS, "revenue"]), min_size=1, max_size=3, unique=True)),
        "by": [draw(st.sampled_from(["metric_time:month", "metric_time:quarter", "metric_time:week"]))],
        "where": draw(st.none() | st.sampled_from(sorted(td.WHERES))),
        "segments": draw(st.lists(st.sampled_from(sorted(td.SEGMENTS)), max_size=1)),
    }
    question["by"] += draw(st.lists(st.sampled_from(["customers.region", "customers.tier"]), max_size=1))
    window = draw(st.sampled_from([{}, {"start": "2023-03-01", "end": "2023-09-30"}, {"fill_gaps": True}]))
    return {**question, **window}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=time_questions(), tenant=st.sampled_from(td.TENANTS))
def test_time_metrics_depend_on_own_tenant_only(tenants: dict[str, Any], question: dict, tenant: int) -> None:
    """Offsets, growth and running totals read other periods through their own CTEs: each one is filtered too."""
    folder = tenants["folder"] / "time"
    folder.mkdir(exist_ok=True)
    project = _time_project(str(folder))
    engines, context = tenants["engines"], {"tenant_id": tenant}

    def outcome(engine: DuckDBEngine) -> Any:
        try:
            return td.normalise(project.query(**question, context=context, connection=engine).rows)
        except CrmetricsError as error:  # e.g. weeks do not add up to years: refused alike on both
            return error.code

    assert outcome(engines["base"]) == outcome(engines[tenant])


@functools.cache
def _time_project(folder: str) -> crmetrics.Project:
    return crmetrics.load(td.write_project(Path(folder), td.project_with_time_metrics()))


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "entity": draw(st.sampled_from(["orders", "tickets", "customers"])),
        "where": draw(st.none() | st.sampled_from(sorted(td.WHERES))),
        "segments": draw(st.lists(st.sampled_from(sorted(td.SEGMENTS)), max_size=2, unique=True)),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=frames(), tenant=st.sampled_from(td.TENANTS))
def test_analysis_frames_hold_own_tenant_rows_only(tenants: dict[str, Any], spec: dict, tenant: int) -> None:
    """The row-level frames analysis methods and drill-downs build on see exactly the tenant's filtered rows."""
    project, engines = tenants["project"], tenants["engines"]
    frame = Frame(project.model, spec["entity"], spec["where"], spec["segments"], {"tenant_id": tenant})
    select = frame.select(
        {
            "key": frame.key(),
            "region": frame.dimension("customers.region"),
            "lifetime": frame.dimension("customers.lifetime_revenue"),
            "month": frame.time("month"),
        }
    )
    columns = ["key", "region", "lifetime", "month"]
    got = engines["base"].execute(select.sql("duckdb"), columns).rows
    assert td.normalise(got) == td.normalise(engines[tenant].execute(select.sql("duckdb"), columns).rows)

    data = tenants["data"].of(tenant)
    ref = td.Reference(data)
    rows = {"orders": data.orders, "tickets": data.tickets, "customers": data.customers}[spec["entity"]]
    expected = []
    for row in rows:
        customer = ref.customer_of(row)
        if spec["where"] is not None and not td.WHERES[spec["where"]](customer):
            continue
        if not all(td.SEGMENTS[s](ref, customer) for s in spec["segments"]):
            continue
        key = getattr(row, {"orders": "order_id", "tickets": "ticket_id", "customers": "customer_id"}[spec["entity"]])
        expected.append(
            (
                key,
                customer.region if customer else None,
                ref.lifetime_revenue(customer),
                ref.dimension("metric_time:month", row),
            )
        )
    assert td.normalise(got) == td.normalise(expected)


@functools.cache
def analysis_project(name: str, tmp: str) -> crmetrics.Project | None:
    """The tenants' project with analysis `name` as `a`; None when its method is not installed."""
    folder = Path(tmp) / name
    folder.mkdir(exist_ok=True)
    method = td.ANALYSES[name].split("method: ")[1].split(",")[0]
    project = crmetrics.load(td.write_project(folder, td.PROJECT_YAML))
    if method not in project.plugins.of("analysis method"):
        return None
    return crmetrics.load(td.write_project(folder, td.project_with_analysis(name)))


def _outcome(project: crmetrics.Project, engine: DuckDBEngine, **kwargs: Any) -> Any:
    """An analysis's tables and figures as comparable data, or the code of the error it raised."""
    try:
        result = project.analyze("a", connection=engine, **kwargs)
    except CrmetricsError as error:
        return error.code
    tables = {name: (table.columns, td.normalise(table.rows)) for name, table in result.tables.items()}
    figures = [(f.name, td.normalise([(f.value,)])) for f in result.figures]
    return tables, figures


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(td.ANALYSES)),
    tenant=st.sampled_from(td.TENANTS),
    where=st.none() | st.sampled_from(sorted(td.WHERES)),
    segments=st.lists(st.sampled_from(sorted(td.SEGMENTS)), max_size=1),
)
def test_analyses_depend_on_own_tenant_only(
    tenants: dict[str, Any], name: str, tenant: int, where: Any, segments: list
) -> None:
    project = analysis_project(name, str(tenants["folder"]))
    if project is None:
        return  # the method is not installed in this environment
    engines = tenants["engines"]
    kwargs = {"where": where, "segments": segments, "context": {"tenant_id": tenant}}
    assert _outcome(project, engines["base"], **kwargs) == _outcome(project, engines[tenant], **kwargs)


@pytest.mark.parametrize("name", sorted(td.ANALYSES))
def test_analyses_fail_closed_and_differ_by_tenant(tenants: dict[str, Any], name: str) -> None:
    project = analysis_project(name, str(tenants["folder"]))
    if project is None:
        pytest.skip(f"analysis method of {name} not installed")
    engine = tenants["engines"]["base"]
    with pytest.raises(ContextError):
        project.analyze("a", connection=engine)
    outcomes = [_outcome(project, engine, context={"tenant_id": t}) for t in td.TENANTS]
    assert all(not isinstance(o, str) for o in outcomes), outcomes
    assert outcomes[0] != outcomes[2], "tenants 1 and 3 hold different data, so their analyses differ"


@pytest.fixture(scope="module")
def report_projects(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, crmetrics.Project]:
    """The same report project over the base database and, per tenant, over the scrambled one."""
    data = td.make_data()
    text = td.project_with_analysis("pareto").replace(
        "name: tenants", "name: tenants\nconnection: duckdb:///crm.duckdb"
    )
    projects = {}
    for key in ("base", *td.TENANTS):
        folder = tmp_path_factory.mktemp(f"report_{key}")
        td.write_project(folder, text + td.REPORT_YAML)
        rows = data if key == "base" else td.scramble_others(data, key)  # type: ignore[arg-type]
        td.load_duckdb(rows, duckdb.connect(str(folder / "crm.duckdb"))).close()
        projects[key] = crmetrics.load(folder / "crmetrics.yml")
    return projects


@pytest.mark.parametrize("tenant", td.TENANTS)
def test_reports_and_drilldowns_depend_on_own_tenant_only(report_projects: dict, tenant: int) -> None:
    from crmetrics.reports import build_document, resolve_params

    def sections(project: crmetrics.Project, **extra: Any) -> list:
        params = resolve_params(project.model.reports["r"]["parameters"], context={"tenant_id": tenant}, **extra)
        document = build_document(project, "r", params)
        assert not document["warnings"]
        return document["sections"]

    base = sections(report_projects["base"])
    assert base == sections(report_projects[tenant])
    filtered = {"where": "customers.region <> 'north'", "segments": ["northern"]}
    assert sections(report_projects["base"], **filtered) == sections(report_projects[tenant], **filtered)
    drill = next(s for s in base if s["type"] == "drilldown")
    orders = td.make_data().of(tenant).orders
    assert drill["total_rows"] == len(orders)


def test_reports_fail_closed(report_projects: dict) -> None:
    from crmetrics.reports import build_document

    with pytest.raises(ContextError):
        build_document(report_projects["base"], "r")


@pytest.mark.parametrize("tenant", td.TENANTS)
def test_analysis_outputs_as_dimensions_depend_on_own_tenant_only(tenants: dict[str, Any], tenant: int) -> None:
    """RFM's segment used in --by and --where is scored over the asking tenant's customers and orders only."""
    project = analysis_project("rfm", str(tenants["folder"]))
    if project is None or "a" not in project.model.entities:
        pytest.skip("rfm with entity outputs is not installed")
    engines, context = tenants["engines"], {"tenant_id": tenant}
    for question in (
        {"metrics": ["revenue", "customers"], "by": ["a.segment"]},
        {"metrics": ["order_count"], "by": ["a.r_score"], "where": "a.segment <> 'Lost'"},
    ):
        got = project.query(**question, context=context, connection=engines["base"]).rows
        assert got and td.normalise(got) == td.normalise(
            project.query(**question, context=context, connection=engines[tenant]).rows
        )
    # only the tenant's own customers are scored, so the segments hold at most that many
    counts = project.query(["customers"], by=["a.segment"], context=context, connection=engines["base"]).rows
    assert sum(n for segment, n in counts if segment is not None) <= len(tenants["data"].of(tenant).customers)


def test_orphans_keep_counting_under_null_and_never_borrow_another_tenants_customer(tenants: dict) -> None:
    project, engine = tenants["project"], tenants["engines"]["base"]
    data = tenants["data"].of(1)
    known = {c.customer_id for c in data.customers}
    orphans = [o for o in data.orders if o.customer_id not in known]
    assert orphans, "the data must hold orphan orders whose ids exist in another tenant"
    result = project.query(["order_count"], by=["customers.region"], context={"tenant_id": 1}, connection=engine)
    counts = {row[0]: row[1] for row in result.rows}
    assert sum(counts.values()) == len(data.orders)
    expected_null = sum(1 for o in data.orders if (c := td.Reference(data).customer_of(o)) is None or c.region is None)
    assert counts[None] == expected_null


def test_where_cannot_widen_the_row_filter(tenants: dict) -> None:
    """A user's OR is parenthesised under the row filter, so naming another tenant selects nothing of theirs."""
    project, engine = tenants["project"], tenants["engines"]["base"]
    mine = project.query(["order_count"], context={"tenant_id": 1}, connection=engine).rows
    widened = project.query(
        ["order_count"],
        where="orders.tenant_id = 2 OR orders.tenant_id <> 2",
        context={"tenant_id": 1},
        connection=engine,
    ).rows
    other = project.query(["order_count"], where="orders.tenant_id = 2", context={"tenant_id": 1}, connection=engine)
    assert widened == mine == [(len(tenants["data"].of(1).orders),)]
    assert other.rows == [(0,)]


def test_row_filters_everywhere_in_the_sql(tenants: dict) -> None:
    """The WHERE of every CTE over a filtered fact entity, and the ON of every join to a filtered entity."""
    sql = tenants["project"].compile(
        ["revenue_per_ticket", "customers"],
        by=["customers.lifetime_revenue"],
        segments=["big_spenders"],
        context={"tenant_id": 5},
    )
    tree = sqlglot.parse_one(sql, read="duckdb")
    reads = {}
    for table in tree.find_all(exp.Table):
        if table.name in ("customers", "orders", "tickets"):
            reads.setdefault(table.name, 0)
            reads[table.name] += 1
    guards = [
        node
        for node in tree.find_all(exp.EQ)
        if isinstance(node.this, exp.Column) and node.this.name == "tenant_id" and node.expression.sql() == "5"
    ]
    assert sum(reads.values()) == len(guards) > 0


# --- failing closed, and context values ---------------------------------------------------------------------


def test_missing_context_is_refused(tenants: dict) -> None:
    project = tenants["project"]
    with pytest.raises(ContextError) as error:
        project.compile(["revenue"])
    assert error.value.code == "CRM320" and "tenant_id" in str(error.value)
    with pytest.raises(ContextError):
        project.compile(["revenue"], context={"tenant": 1})
    with pytest.raises(ContextError):
        Frame(project.model, "orders").select({"k": exp.Literal.number(1)})


class _SneakyInt(int):
    def __str__(self) -> str:
        return "1 OR 1 = 1"

    __repr__ = __str__


class _SneakyStr(str):
    def __str__(self) -> str:
        return "x' OR '1' = '1"


@pytest.mark.parametrize(
    "value",
    [[1, 2], (1,), {"a": 1}, {1}, object(), b"1", float("nan"), float("inf"), -math.inf, 1j, Path("/etc")],
    ids=repr,
)
def test_context_values_must_be_scalars(tenants: dict, value: Any) -> None:
    with pytest.raises(ContextError):
        tenants["project"].compile(["revenue"], context={"tenant_id": value})
    with pytest.raises(ContextError):  # refused even where no row filter reads it
        tenants["project"].compile(["revenue"], context={"tenant_id": 1, "unused": value})


def test_subclassed_scalars_bind_as_their_value(tenants: dict) -> None:
    project, engine = tenants["project"], tenants["engines"]["base"]
    plain = project.query(["order_count"], context={"tenant_id": 1}, connection=engine).rows
    assert project.query(["order_count"], context={"tenant_id": _SneakyInt(1)}, connection=engine).rows == plain
    sql = project.compile(["order_count"], context={"tenant_id": _SneakyStr("abc")})
    assert "OR" not in sql.upper().replace("ORDER", "")


def test_compiled_sql_cache_never_mixes_tenants(tmp_path: Path) -> None:
    """Contexts that compare or hash alike (1, 1.0, True, "1", -0.0, 0.0, a subclass faking equality) each get
    their own SQL, the same SQL a project without any cache history compiles."""
    path = td.write_project(tmp_path)
    shared = crmetrics.load(path)
    liar = type("int", (int,), {"__eq__": lambda self, other: True, "__hash__": lambda self: hash(2)})
    values = [2, 1, 1.0, True, "1", -0.0, 0.0, liar(1), 2, 1, "2", 2.0]
    for value in values:
        fresh = crmetrics.load(path)
        question = {"metrics": ["revenue", "ticket_count"], "by": ["customers.region"], "context": {"tenant_id": value}}
        assert shared.compile(**question) == fresh.compile(**question), value


QUOTED = ["O'Brien", "x' OR '1'='1", "'; DROP TABLE orders; --", "a\\' OR 1=1 --", 'dq"dq', "Zürich 🚀", "\n\t", ""]


@pytest.mark.parametrize("value", QUOTED, ids=repr)
@pytest.mark.parametrize("dialect", ["duckdb", "postgres", "mysql", "sqlite", "bigquery", "snowflake", "tsql"])
def test_string_context_binds_as_one_literal(tenants: dict, value: str, dialect: str) -> None:
    sql = tenants["project"].compile(["revenue"], context={"tenant_id": value}, dialect=dialect)
    tree = sqlglot.parse_one(sql, read=dialect)
    literals = [
        node.expression
        for node in tree.find_all(exp.EQ)
        if isinstance(node.this, exp.Column) and node.this.name == "tenant_id"
    ]
    assert literals and all(isinstance(lit, exp.Literal) and lit.is_string and lit.this == value for lit in literals)


def test_string_tenant_keys_with_quotes_on_duckdb(tmp_path: Path) -> None:
    """Tenant keys that are strings full of quotes select exactly that tenant's rows."""
    yaml = """
version: 1
name: s
entities:
  orders:
    table: orders
    key: order_id
    measures: {n: {agg: count}}
metrics: {n: {measure: orders.n}}
security: {row_filters: {orders: "orders.tenant = :tenant"}}
"""
    (tmp_path / "crmetrics.yml").write_text(yaml, encoding="utf-8")
    project = crmetrics.load(tmp_path / "crmetrics.yml")
    con = duckdb.connect()
    con.execute("CREATE TABLE orders (order_id INTEGER, tenant VARCHAR)")
    tenants = {value: index + 1 for index, value in enumerate(QUOTED)}
    for value, count in tenants.items():
        con.executemany("INSERT INTO orders VALUES (?, ?)", [(i, value) for i in range(count)])
    for value, count in tenants.items():
        assert project.query(["n"], context={"tenant": value}, connection=con).rows == [(count,)]
    assert project.query(["n"], context={"tenant": "nobody' OR '1'='1"}, connection=con).rows == [(0,)]
    assert con.execute("SELECT count(*) FROM orders").fetchone() == (sum(tenants.values()),)


# --- the CLI ----------------------------------------------------------------------------------------------------


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cli")
    path = td.write_project(folder)
    db = folder / "crm.duckdb"
    td.load_duckdb(td.make_data(), duckdb.connect(str(db))).close()
    return path, db


def test_cli_context(cli_project: tuple[Path, Path]) -> None:
    path, db = cli_project
    base = ["query", "-m", "order_count", "--project", str(path), "--connection", f"duckdb:///{db}", "-f", "csv"]
    code, out, err = _cli([*base, "--context", "tenant_id=2"])
    assert code == 0, err
    assert out.splitlines()[1] == str(len(td.make_data().of(2).orders))
    code, out, err = _cli(base)
    assert code == 2 and "CRM320" in err and "tenant_id" in err and "Traceback" not in err and out == ""
    code, out, err = _cli([*base, "--context", "tenant_id"])
    assert code == 2 and "NAME=VALUE" in err and "Traceback" not in err
    code, out, err = _cli([*base, "--context", "tenant_id=2' OR '1'='1"])
    assert code == 2 and "Traceback" not in err  # a string against an INTEGER column: refused by the database


def test_every_error_here_is_a_crmetrics_error(tenants: dict) -> None:
    with pytest.raises(CrmetricsError):
        tenants["project"].query(["revenue"], context={"tenant_id": [1]})
