"""Per-dialect rewrites of the compiled tree, applied just before sqlglot generates SQL.

sqlglot transpiles most of the tree correctly, but some of its output is wrong on the real engines (the
differential tests in tests/differential/ are the judge). Each pass below fixes one such trap by rewriting the tree
into constructs the target engine evaluates exactly as DuckDB does; where no exact equivalent exists, it raises a
`CompileError` naming the feature and the dialect, never SQL that would return different numbers.

Meaning of the nodes (the DuckDB reading, which is what a project's expressions are parsed as by default):
- `DayOfWeek`: 0 = Sunday .. 6 = Saturday; `DayOfWeekIso`: 1 = Monday .. 7 = Sunday;
- `DateDiff(unit)`: the number of unit boundaries crossed between the two dates (DuckDB `date_diff`);
- `Median` / `PERCENTILE_CONT`: exact, interpolated (never an approximation);
- `LAG` / `LEAD` past the edge of the partition: NULL.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from crmetrics.errors import CompileError

Pass = Callable[[exp.Expression, str], exp.Expression]

# dialects that accept GROUP BY ALL with DuckDB's meaning; the others get the grouping columns spelt out
GROUP_BY_ALL = frozenset({"duckdb", "clickhouse", "spark", "databricks", "snowflake", "bigquery"})
# dialects whose DATE_DIFF counts unit boundaries like DuckDB, as sqlglot writes it
BOUNDARY_DATE_DIFF = frozenset({"duckdb", "postgres", "clickhouse", "snowflake", "redshift"})
# dialects without an exact percentile aggregate (BigQuery and T-SQL have PERCENTILE_CONT as a window function only)
NO_EXACT_PERCENTILE = frozenset({"sqlite", "bigquery", "trino", "presto", "athena", "mysql", "tsql"})


def _int(value: exp.Expression) -> exp.Expression:
    return exp.cast(value, exp.DataType.Type.INT)


def _fn(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _unit(node: exp.Expression) -> str:
    unit = node.args.get("unit")
    return (unit.name if unit is not None else "DAY").upper()


# --- rewrites into canonical nodes, for every target --------------------------------------------------------------

_EXTRACT_DOW = {"DOW": exp.DayOfWeek, "DAYOFWEEK": exp.DayOfWeek, "ISODOW": exp.DayOfWeekIso}


def canonical_dates(node: exp.Expression, dialect: str) -> exp.Expression:
    """`date_part('dow', x)` and `EXTRACT(DOW FROM x)` become DayOfWeek nodes, whose meaning is fixed."""
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in ("date_part", "datepart"):
        args = node.expressions
        if len(args) == 2 and isinstance(args[0], exp.Literal) and args[0].is_string:
            node = exp.Extract(this=exp.var(args[0].name.upper()), expression=args[1])
    if isinstance(node, exp.Extract) and node.name.upper() in _EXTRACT_DOW:
        return _EXTRACT_DOW[node.name.upper()](this=node.expression)
    return node


def expand_group_by_all(node: exp.Expression, dialect: str) -> exp.Expression:
    """GROUP BY ALL -> GROUP BY every projection that holds no aggregate (PostgreSQL and SQLite lack it)."""
    if dialect in GROUP_BY_ALL or not isinstance(node, exp.Select):
        return node
    group = node.args.get("group")
    if group is None or not group.args.get("all"):
        return node
    keys = []
    for projection in node.expressions:
        value = projection.this if isinstance(projection, exp.Alias) else projection
        if value.find(exp.AggFunc, exp.Window) is None and not isinstance(value, exp.Literal):
            keys.append(value.copy())
    node.set("group", exp.Group(expressions=keys) if keys else None)
    return node


# --- day of week ------------------------------------------------------------------------------------------------


def day_of_week(node: exp.Expression, dialect: str) -> exp.Expression:
    """DAYOFWEEK (0 = Sunday) and ISODOW (1 = Monday .. 7 = Sunday) as each engine spells them exactly."""
    if not isinstance(node, exp.DayOfWeek | exp.DayOfWeekIso) or dialect == "duckdb":
        return node
    iso = isinstance(node, exp.DayOfWeekIso)
    value = node.this
    if dialect in ("postgres", "redshift"):
        return exp.cast(exp.Extract(this=exp.var("ISODOW" if iso else "DOW"), expression=value), "INT")
    if dialect == "clickhouse":  # mode 0: Monday = 1 .. Sunday = 7; mode 2: Sunday = 0 .. Saturday = 6
        return _fn("toDayOfWeek", value, exp.Literal.number(0 if iso else 2))
    if dialect in ("spark", "databricks", "hive"):  # DAYOFWEEK: Sunday = 1 .. Saturday = 7
        sunday_one = _fn("DAYOFWEEK", value)
        if iso:
            return exp.Paren(this=exp.Mod(this=exp.Paren(this=sunday_one + 5), expression=exp.Literal.number(7))) + 1
        return exp.Paren(this=sunday_one - 1)
    if dialect == "sqlite":  # strftime('%w'): '0' = Sunday
        sunday_zero = _int(_fn("STRFTIME", exp.Literal.string("%w"), value))
        if iso:
            return exp.Paren(this=exp.Mod(this=exp.Paren(this=sunday_zero + 6), expression=exp.Literal.number(7))) + 1
        return sunday_zero
    return node


# --- percentiles --------------------------------------------------------------------------------------------------


def _percentile(node: exp.Expression) -> tuple[exp.Expression, exp.Expression] | None:
    """(value, fraction) of MEDIAN(x) or PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY x); None for anything else."""
    if isinstance(node, exp.Median):
        return node.this, exp.Literal.number(0.5)
    if isinstance(node, exp.WithinGroup) and isinstance(node.this, exp.PercentileCont):
        order = node.expression
        keys = order.expressions if isinstance(order, exp.Order) else []
        if len(keys) != 1 or keys[0].args.get("desc"):
            raise CompileError("PERCENTILE_CONT is only compiled with one ascending ORDER BY key")
        return keys[0].this, node.this.this
    return None


def exact_percentiles(node: exp.Expression, dialect: str) -> exp.Expression:
    """Exact interpolated percentiles: Spark's PERCENTILE, ClickHouse's quantileExactInclusive; others refuse."""
    found = _percentile(node)
    if found is None or dialect in ("duckdb", "postgres"):
        return node
    value, fraction = found
    if dialect in ("spark", "databricks", "hive"):  # sqlglot writes PERCENTILE_APPROX, which is approximate
        return _fn("PERCENTILE", value, fraction)
    if dialect == "clickhouse":  # median() and quantile() sample; quantileExactInclusive interpolates like R-7
        return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[fraction], params=[value])
    if dialect in NO_EXACT_PERCENTILE:
        raise CompileError(
            f"cannot compile for {dialect}: median and percentile measures need an exact PERCENTILE_CONT "
            f"aggregate, which {dialect} lacks (only approximate ones); run this query on another engine"
        )
    return node


# --- date truncation and differences -------------------------------------------------------------------------------

_SQLITE_TRUNC = {
    "DAY": [],
    "WEEK": ["weekday 0", "-6 days"],  # the next Sunday (or today), back to its Monday: ISO weeks
    "MONTH": ["start of month"],
    "YEAR": ["start of year"],
}


def sqlite_truncation(node: exp.Expression, dialect: str) -> exp.Expression:
    """DATE_TRUNC / TIMESTAMP_TRUNC as SQLite date modifiers (sqlglot writes TIMESTAMP_TRUNC, which SQLite lacks)."""
    if dialect != "sqlite" or not isinstance(node, exp.TimestampTrunc | exp.DateTrunc | exp.DatetimeTrunc):
        return node
    unit, value = _unit(node), node.this
    if unit == "QUARTER":
        month = _int(_fn("STRFTIME", exp.Literal.string("%m"), value))
        back = _fn(
            "PRINTF",
            exp.Literal.string("-%d months"),
            exp.Paren(this=exp.Mod(this=exp.Paren(this=month - 1), expression=exp.Literal.number(3))),
        )
        modifiers: list[exp.Expression] = [exp.Literal.string("start of month"), back]
    elif unit in _SQLITE_TRUNC:
        modifiers = [exp.Literal.string(m) for m in _SQLITE_TRUNC[unit]]
    else:
        raise CompileError(f"cannot compile for sqlite: truncation to {unit.lower()} is not supported")
    return _fn("DATE" if isinstance(node, exp.DateTrunc) else "DATETIME", value, *modifiers)


def sqlite_date_parts(node: exp.Expression, dialect: str) -> exp.Expression:
    """YEAR(x) and MONTH(x) as integers from STRFTIME (SQLite has neither function)."""
    if dialect != "sqlite" or not isinstance(node, exp.Year | exp.Month):
        return node
    return _int(_fn("STRFTIME", exp.Literal.string("%Y" if isinstance(node, exp.Year) else "%m"), node.this))


def bigquery_iso_weeks(node: exp.Expression, dialect: str) -> exp.Expression:
    """BigQuery's WEEK starts on Sunday; the week grain starts on Monday (ISOWEEK)."""
    if isinstance(node, exp.TimestampTrunc | exp.DateTrunc | exp.DatetimeTrunc) and _unit(node) == "WEEK":
        node.set("unit", exp.var("ISOWEEK"))
    return node


def _months(value: exp.Expression, dialect: str) -> exp.Expression:
    """Months since year 0 of a date, for month and quarter differences."""
    if dialect == "sqlite":
        year = _int(_fn("STRFTIME", exp.Literal.string("%Y"), value))
        month = _int(_fn("STRFTIME", exp.Literal.string("%m"), value))
    else:
        year, month = exp.Year(this=value.copy()), exp.Month(this=value.copy())
    return exp.Paren(this=year * 12 + month)


def date_differences(node: exp.Expression, dialect: str) -> exp.Expression:
    """DATE_DIFF counted in unit boundaries on every engine (Spark counts whole units, sqlglot's SQLite divides)."""
    if dialect in BOUNDARY_DATE_DIFF or not isinstance(node, exp.DateDiff):
        return node
    end, start, unit = node.this, node.expression, _unit(node)
    if unit == "DAY":
        if dialect == "sqlite":
            return _int(_fn("JULIANDAY", _fn("DATE", end)) - _fn("JULIANDAY", _fn("DATE", start)))
        if dialect in ("spark", "databricks", "hive"):
            return _fn("DATEDIFF", exp.cast(end, "DATE"), exp.cast(start, "DATE"))
        return node
    if unit in ("MONTH", "QUARTER", "YEAR"):
        if dialect not in ("sqlite", "spark", "databricks", "hive"):
            return node
        months = exp.Paren(this=_months(end, dialect) - _months(start, dialect))
        if unit == "MONTH":
            return months
        divisor = 3 if unit == "QUARTER" else 12
        return exp.Paren(
            this=exp.IntDiv(this=exp.Paren(this=_months(end, dialect) - 1), expression=exp.Literal.number(divisor))
            - exp.IntDiv(this=exp.Paren(this=_months(start, dialect) - 1), expression=exp.Literal.number(divisor))
        )
    if unit == "SECOND" and dialect in ("spark", "databricks", "hive"):
        # second boundaries crossed, as DuckDB counts them: UNIX_TIMESTAMP drops the fraction (sessions run in UTC)
        return exp.Paren(this=_fn("UNIX_TIMESTAMP", end) - _fn("UNIX_TIMESTAMP", start))
    if dialect in ("sqlite", "spark", "databricks", "hive"):
        raise CompileError(f"cannot compile for {dialect}: DATE_DIFF in {unit.lower()}s is not supported")
    return node


# --- set operations -----------------------------------------------------------------------------------------------


def _branches(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Union) and not node.args.get("distinct"):
        return _branches(node.this) + _branches(node.expression)
    return [node]


def typed_union_nulls(node: exp.Expression, dialect: str) -> exp.Expression:
    """PostgreSQL types a column that is NULL in the first two UNION ALL branches as text, and then refuses the
    bigint of the third. Each padding NULL becomes `(SELECT col FROM source WHERE FALSE)`: NULL, typed like the
    branch that owns the column. (The compiler's merge CTE pads every fact's branch this way.)"""
    if not isinstance(node, exp.Union) or isinstance(node.parent, exp.Union):
        return node
    branches = _branches(node)
    if len(branches) < 3 or not all(isinstance(b, exp.Select) for b in branches):
        return node
    owners: dict[int, tuple[exp.Expression, exp.Expression]] = {}
    for branch in branches:
        source = branch.args.get("from_")
        for index, projection in enumerate(branch.expressions):
            if isinstance(projection, exp.Column) and source is not None and index not in owners:
                owners[index] = (projection, source.this)
    for branch in branches:
        for index, projection in enumerate(branch.expressions):
            if isinstance(projection, exp.Alias) and isinstance(projection.this, exp.Null) and index in owners:
                column, table = owners[index]
                typed = exp.select(column.copy()).from_(table.copy()).where(exp.false())
                projection.set("this", exp.Subquery(this=typed))
    return node


def _defines(query: exp.Expression, name: str) -> bool:
    with_ = query.args.get("with_")
    return with_ is not None and any(cte.alias == name for cte in with_.expressions)


def unique_cte_names(node: exp.Expression, dialect: str) -> exp.Expression:
    """Spark refuses a nested WITH that reuses an outer CTE's name (analyses nest compiled queries, each with its
    own `agg_orders`); the inner ones are renamed, with the tables that refer to them."""
    if node.parent is not None:
        return node
    seen: set[str] = set()
    for query in [n for n in node.walk() if isinstance(n, exp.Query) and n.args.get("with_") is not None]:
        for cte in query.args["with_"].expressions:
            name = cte.alias
            if name not in seen:
                seen.add(name)
                continue
            fresh = f"{name}__{len(seen)}"
            seen.add(fresh)
            for table in list(query.find_all(exp.Table)):
                if table.name == name and not table.args.get("db") and _scope_of(table, name) is query:
                    table.set("this", exp.to_identifier(fresh, quoted=True))
            cte.set("alias", exp.TableAlias(this=exp.to_identifier(fresh, quoted=True)))
    return node


def _scope_of(table: exp.Table, name: str) -> exp.Expression | None:
    """The nearest enclosing query whose WITH defines `name`."""
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.Query) and _defines(parent, name):
            return parent
        parent = parent.parent
    return None


# --- window functions ---------------------------------------------------------------------------------------------


def string_aggregation(node: exp.Expression, dialect: str) -> exp.Expression:
    """STRING_AGG(x, sep ORDER BY x): ClickHouse sorts a groupArray; SQLite (ORDER BY inside from 3.44) refuses."""
    if not isinstance(node, exp.GroupConcat):
        return node
    ordered = isinstance(node.this, exp.Order)
    if dialect == "sqlite" and ordered:
        raise CompileError(
            "cannot compile for sqlite: an ordered string aggregation (GROUP_CONCAT ... ORDER BY) needs SQLite 3.44 "
            "or later, which the SQL cannot check; run this query on another engine"
        )
    if dialect != "clickhouse":
        return node
    value = node.this.this if ordered else node.this
    values = _fn("groupArray", value)
    if ordered:
        keys = node.this.expressions
        if len(keys) != 1 or keys[0].this != value:
            raise CompileError("cannot compile for clickhouse: string aggregation ordered by another column")
        values = _fn("arrayReverseSort" if keys[0].args.get("desc") else "arraySort", values)
    separator = node.args.get("separator") or exp.Literal.string(",")
    joined = _fn("arrayStringConcat", values, separator)
    # groupArray skips NULLs; no value at all is NULL, as STRING_AGG gives elsewhere
    none = exp.EQ(this=exp.Count(this=value.copy()), expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=none, true=exp.null())], default=joined)


def spark_decimal_average(node: exp.Expression, dialect: str) -> exp.Expression:
    """Spark averages a DECIMAL(p, s) into DECIMAL(p + 4, s + 4), rounding 6.666666... to 6.666667: use DOUBLE."""
    if isinstance(node, exp.Avg) and not (isinstance(node.this, exp.Cast) and node.this.to.is_type("double")):
        node.set("this", exp.cast(node.this, exp.DataType.Type.DOUBLE))
    return node


def nullable_lag(node: exp.Expression, dialect: str) -> exp.Expression:
    """ClickHouse's LAG/LEAD give the type's default (0, '') past the partition's edge unless the value is Nullable."""
    if dialect != "clickhouse" or not isinstance(node, exp.Lag | exp.Lead):
        return node
    if node.args.get("default") is None:
        node.set("this", _fn("toNullable", node.this))
    return node


def double_percentiles(node: exp.Expression, dialect: str) -> exp.Expression:
    """The value of a median or percentile as DOUBLE: DuckDB keeps a DECIMAL's scale and rounds 30.522 to 30.52."""
    found = _percentile(node)
    if found is None or isinstance(found[0], exp.Cast):
        return node
    value = found[0]
    value.replace(exp.cast(value.copy(), exp.DataType.Type.DOUBLE))
    return node


def sqlite_time_zones(node: exp.Expression, dialect: str) -> exp.Expression:
    """SQLite knows no named time zones: sqlglot writes `AT TIME ZONE`, which SQLite refuses as a syntax error."""
    if isinstance(node, exp.ConvertTimezone | exp.AtTimeZone):
        raise CompileError(
            "cannot compile for sqlite: converting time zones (settings.timezone, a dimension's timezone) needs "
            "named time zones, which SQLite lacks; store local times, or run this project on another engine"
        )
    return node


# (pass, the node types that trigger it, the only dialects it concerns: None for every dialect)
PASSES: tuple[tuple[Pass, tuple[type, ...], frozenset[str] | None], ...] = (
    (canonical_dates, (exp.Anonymous, exp.Extract), None),
    (expand_group_by_all, (exp.Group,), None),
    (day_of_week, (exp.DayOfWeek, exp.DayOfWeekIso), None),
    (double_percentiles, (exp.Median, exp.WithinGroup), None),
    (exact_percentiles, (exp.Median, exp.WithinGroup), None),
    (sqlite_truncation, (exp.TimestampTrunc, exp.DateTrunc, exp.DatetimeTrunc), frozenset({"sqlite"})),
    (bigquery_iso_weeks, (exp.TimestampTrunc, exp.DateTrunc, exp.DatetimeTrunc), frozenset({"bigquery"})),
    (date_differences, (exp.DateDiff,), None),
    (sqlite_date_parts, (exp.Year, exp.Month), frozenset({"sqlite"})),
    (sqlite_time_zones, (exp.ConvertTimezone, exp.AtTimeZone), frozenset({"sqlite"})),
    (string_aggregation, (exp.GroupConcat,), frozenset({"sqlite", "clickhouse"})),
    (spark_decimal_average, (exp.Avg,), frozenset({"spark", "databricks"})),
    (nullable_lag, (exp.Lag, exp.Lead), frozenset({"clickhouse"})),
    (typed_union_nulls, (exp.Union,), frozenset({"postgres", "redshift"})),
    (unique_cte_names, (exp.With,), frozenset({"spark", "databricks"})),
)


def prepare(tree: exp.Expression, dialect: str) -> exp.Expression:
    """Apply the passes for `dialect` in order, in place (the compiler builds a fresh tree for each call).

    Only passes whose node types occur in the tree walk it, so a plain query costs one walk.
    """
    kinds = _kinds(tree, dialect)
    for rewrite, triggers, dialects in PASSES:
        if (dialects is None or dialect in dialects) and any(issubclass(kind, triggers) for kind in kinds):
            tree = tree.transform(rewrite, dialect, copy=False)
            kinds = _kinds(tree, dialect)
    return tree


def _kinds(tree: exp.Expression, dialect: str) -> set[type]:
    """The node types in `tree`; a GROUP BY counts only when it is a GROUP BY ALL that `dialect` lacks.

    The walk runs inside sqlglot (no Python callback per node): it is the one pass every compile pays for.
    """
    kinds = set(map(type, tree.walk(bfs=False)))
    if exp.Group in kinds and (dialect in GROUP_BY_ALL or not any(g.args.get("all") for g in tree.find_all(exp.Group))):
        kinds.discard(exp.Group)
    return kinds
