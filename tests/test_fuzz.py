"""Fuzzing the parsers and the CLI: whatever the input, only crmetrics' own errors come out, never a traceback.

hypothesis feeds the YAML reader, the project loader, the reference parser, the expression parser, the query API
and the command line with random and half-valid input.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crmetrics
from crmetrics.cli import main
from crmetrics.dsl.yamlfile import YList, YMap, load_yaml
from crmetrics.errors import ConfigError, CrmetricsError, Issue, UnsafeExpressionError
from crmetrics.model.expressions import parse_expression
from crmetrics.model.references import GRAINS, Ref, RefSyntaxError, parse_ref
from tests import tenancy_data as td

# CRMETRICS_FUZZ_EXAMPLES=5000 searches harder (a nightly run); the default keeps the file fast
FUZZ = settings(
    max_examples=int(os.environ.get("CRMETRICS_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# pieces the generated input is made of: the DSL's own words, SQL, YAML syntax and troublemakers
WORDS = [
    "version",
    "name",
    "entities",
    "metrics",
    "segments",
    "analyses",
    "security",
    "row_filters",
    "include",
    "settings",
    "table",
    "sql",
    "file",
    "key",
    "time",
    "joins",
    "on",
    "dimensions",
    "measures",
    "expr",
    "agg",
    "sum",
    "count",
    "count_distinct",
    "avg",
    "percentile",
    "measure",
    "ratio",
    "filter",
    "where",
    "entity",
    "type",
    "grain",
    "customers",
    "orders",
    "revenue",
    "region",
    "metric_time",
    "tenant_id",
    "method",
    "rfm",
    "reports",
    "connection",
    "row_limit",
    "threads",
    "memory_limit",
    "yes",
    "no",
    "on",
    "off",
    "null",
    "~",
    "1",
    "0",
    "-1",
    "1e309",
    ".nan",
    "0x1F",
    "true",
    "SELECT",
    "DROP",
    "--",
    "/*",
    ";",
    "'",
    '"',
    ":",
    "::",
    "${HOME}",
    "${X:-y}",
    "${",
    "<<",
    "*a",
    "&a",
    "!!python/object:os.system",
    "!!binary",
    "ü",
    "🚀",
    "\x00",
    "\t",
    "\ufeff",
    "%",
    "@",
    "`",
    "|",
    ">",
    "-",
    "?",
    "[",
    "]",
    "{",
    "}",
    ",",
    "#",
]
SQL_PIECES = [
    "customers.region",
    "orders.channel",
    "metric_time",
    "customers.lifetime_revenue",
    "'north'",
    "'O''Brien'",
    "1",
    "2.5",
    "NULL",
    "TRUE",
    "=",
    "<>",
    ">=",
    "AND",
    "OR",
    "NOT",
    "IN",
    "(",
    ")",
    ",",
    "IS",
    "LIKE",
    "+",
    "-",
    "*",
    "/",
    "||",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "AS",
    "INT",
    "lower",
    "coalesce",
    "SELECT",
    "FROM",
    ";",
    "--",
    "/*",
    "*/",
    ":tenant_id",
    "?",
    "$1",
    "'",
    '"',
    "sum",
    "OVER",
    "::",
    "[",
    "]",
    "{",
    "}",
    "read_csv",
    "getenv",
    "ü",
    "\x00",
    "\\",
]
sql_text = st.lists(st.sampled_from(SQL_PIECES), max_size=12).map(" ".join) | st.text(max_size=60)


def _scalar() -> st.SearchStrategy[Any]:
    return st.none() | st.booleans() | st.integers() | st.floats() | st.sampled_from(WORDS) | st.text(max_size=20)


yaml_values = st.recursive(
    _scalar(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@FUZZ
@given(text=st.text(max_size=300) | st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join))
def test_yaml_reader_reports_issues_and_never_raises(text: str) -> None:
    data, issues = load_yaml(text, "fuzz.yml", env={"X": "1"})
    assert all(isinstance(issue, Issue) and issue.location is not None for issue in issues)
    _check_locations(data)


def _check_locations(value: Any) -> None:
    if isinstance(value, YMap):
        assert value.loc.line >= 1
        for key, child in value.items():
            assert value.key_loc(key).line >= 1
            _check_locations(child)
    elif isinstance(value, YList):
        for index, child in enumerate(value):
            assert value.item_loc(index).line >= 1
            _check_locations(child)


@FUZZ
@given(lines=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(WORDS), st.sampled_from(WORDS)), max_size=25))
def test_yaml_reader_on_indented_structures(lines: list[tuple[int, str, str]]) -> None:
    text = "\n".join(f"{'  ' * depth}{key}: {value}" for depth, key, value in lines)
    load_yaml(text, "fuzz.yml", env={})


def _load_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "crmetrics.yml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            crmetrics.load(path, env={})
        except ConfigError as error:
            assert error.issues and error.code.startswith("CRM")
            assert all(isinstance(issue.code, str) and issue.code.startswith("CRM") for issue in error.issues)


@FUZZ
@given(tree=yaml_values)
def test_loader_on_random_trees(tree: Any) -> None:
    _load_text(yaml.safe_dump(tree, allow_unicode=True))


@FUZZ
@given(
    tree=st.fixed_dictionaries(
        {"version": st.sampled_from([1, "1", 2, None]), "name": st.sampled_from(["x", "", "a b", 3])},
        optional={
            "entities": st.dictionaries(st.sampled_from(["customers", "orders", "x y"]), yaml_values, max_size=3),
            "metrics": st.dictionaries(st.sampled_from(["revenue", "n"]), yaml_values, max_size=3),
            "segments": yaml_values,
            "security": st.fixed_dictionaries({"row_filters": yaml_values}),
            "include": yaml_values,
            "settings": yaml_values,
            "analyses": yaml_values,
        },
    )
)
def test_loader_on_half_valid_projects(tree: dict) -> None:
    _load_text(yaml.safe_dump(tree, allow_unicode=True))


VALID = td.PROJECT_YAML.splitlines()


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.sampled_from(["delete", "replace", "duplicate"]), sql_text),
        min_size=1,
        max_size=4,
    )
)
def test_loader_on_mutated_valid_project(edits: list[tuple[int, str, str]]) -> None:
    lines = list(VALID)
    for index, action, text in edits:
        index %= len(lines)
        if action == "delete":
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        else:
            indent = len(lines[index]) - len(lines[index].lstrip())
            key = lines[index].strip().split(":")[0]
            lines[index] = " " * indent + f"{key}: {text}"
        if not lines:
            lines = ["version: 1"]
    _load_text("\n".join(lines))


@FUZZ
@given(text=st.text(max_size=40) | st.from_regex(r"[a-z_]{1,8}(\.[a-z_]{1,8})?(:[a-z_]{1,8})?", fullmatch=True))
def test_reference_parser(text: str) -> None:
    try:
        ref = parse_ref(text)
    except RefSyntaxError as error:
        assert isinstance(error, CrmetricsError) and error.code == "CRM301"
        return
    assert isinstance(ref, Ref) and (ref.grain is None or ref.grain in GRAINS)
    assert ref.is_metric_time or ref.entity


@FUZZ
@given(text=sql_text)
def test_expression_parser(text: str) -> None:
    try:
        tree = parse_expression(text)
    except UnsafeExpressionError as error:
        assert error.code == "CRM310"
        return
    # what is accepted renders back to SQL that parses as the same single expression
    assert parse_expression(tree.sql("duckdb")).sql("duckdb") == tree.sql("duckdb")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> crmetrics.Project:
    return crmetrics.load(td.write_project(tmp_path_factory.mktemp("fuzz")))


@FUZZ
@given(
    metrics=st.lists(st.sampled_from(["revenue", "aov", "ticket_count", "nope"]) | st.text(max_size=10), max_size=3),
    by=st.lists(st.sampled_from(["customers.region", "metric_time:month", "orders.channel"]) | st.text(max_size=15)),
    where=st.none() | sql_text,
    segments=st.lists(st.sampled_from(["big_spenders", "x"]) | st.text(max_size=5), max_size=2),
    order_by=st.lists(st.sampled_from(["revenue", "-revenue", "customers.region"]) | st.text(max_size=5), max_size=2),
    limit=st.none() | st.integers(-2, 5),
    context=st.dictionaries(st.sampled_from(["tenant_id", "x"]), _scalar() | st.lists(st.integers(), max_size=2)),
    dialect=st.sampled_from(["duckdb", "postgres", "sqlite", "snowflake", "bigquery", "tsql"]),
)
def test_compile_api(project: crmetrics.Project, dialect: str, **question: Any) -> None:
    try:
        sql = project.compile(**question, dialect=dialect)
    except CrmetricsError as error:
        assert error.code.startswith("CRM") and str(error).strip()
        assert not re.match(r"CRM\d{3} CRM\d{3}", str(error)), "one code per message"
        return
    assert sql.lstrip().upper().startswith(("WITH", "SELECT"))


# --- the command line -------------------------------------------------------------------------------------------

OPTIONS = ["-m", "--by", "--where", "--segment", "--order-by", "--limit", "--context", "--format", "--dialect", "-p"]
VALUES = [
    "revenue",
    "aov",
    "customers.region",
    "metric_time:month",
    "tenant_id=1",
    "tenant_id",
    "=",
    "json",
    "csv",
    "table",
    "postgres",
    "nodialect",
    "1",
    "-1",
    "x",
    "",
    "big_spenders",
    "customers.region = 'north'",
    "--",
    "; DROP TABLE x",
    "ü",
    "metrics",
    "dimensions",
    "segments",
]


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import duckdb

    folder = tmp_path_factory.mktemp("fuzz_cli")
    path = td.write_project(folder)
    con = duckdb.connect(str(folder / "crm.duckdb"))
    td.load_duckdb(td.make_data(), con).close()
    text = path.read_text(encoding="utf-8").replace("name: tenants", "name: tenants\nconnection: duckdb:///crm.duckdb")
    path.write_text(text, encoding="utf-8")
    return path


@FUZZ
@given(
    command=st.sampled_from(["query", "compile", "validate", "list", "analyze", "report", "nope", "--version"]),
    pairs=st.lists(st.tuples(st.sampled_from(OPTIONS), st.sampled_from(VALUES) | st.text(max_size=12)), max_size=5),
    positional=st.lists(st.sampled_from(VALUES), max_size=1),
)
def test_cli_never_prints_a_traceback(
    cli_project: Path, command: str, pairs: list[tuple[str, str]], positional: list[str]
) -> None:
    argv = [command, *positional, "--project", str(cli_project)]
    for option, value in pairs:
        argv += [option, value]
    code, out, err = run_cli(argv)
    assert "Traceback" not in err + out
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.strip(), argv


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["query"],
        ["query", "--project", "/nonexistent/crmetrics.yml", "-m", "revenue"],
        ["validate", "--project", "/"],
        ["query", "-m", "revenue", "--connection", "nosuch://x"],
        ["query", "-m", "revenue", "--connection", "duckdb:///nonexistent/dir/x.duckdb"],
        ["query", "-m", "revenue", "--limit", "many"],
        ["demo", "--out"],
    ],
)
def test_cli_user_errors_exit_2(cli_project: Path, argv: list[str]) -> None:
    if argv[:1] == ["demo"]:
        argv = [*argv, str(cli_project)]  # a file where a folder is needed
    elif "--project" not in argv and argv:
        argv = [*argv, "--project", str(cli_project), "--context", "tenant_id=1"]
    code, out, err = run_cli(argv)
    assert code == 2 and "Traceback" not in err + out and (err or out).strip()
