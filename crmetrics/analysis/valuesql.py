"""Small sqlglot builders shared by the clv, satisfaction, basket and quality methods.

Every helper returns a fresh expression, so callers can reuse them in several places of one tree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from crmetrics.analysis import sqlkit
from crmetrics.errors import AnalysisError
from crmetrics.model.references import RefSyntaxError, parse_ref
from crmetrics.model.types import SemanticModel


def check_date(params: Mapping[str, Any], key: str) -> list[tuple[str, str]]:
    """A load-time problem when the parameter is given but is not a YYYY-MM-DD date."""
    if params.get(key) is None:
        return []
    try:
        parse_date(params[key], key)
    except AnalysisError as error:
        return [(key, error.message)]
    return []


def check_dimension(model: SemanticModel, source: str, key: str, ref: Any) -> list[tuple[str, str]]:
    """A load-time problem when `ref` is not a declared dimension (or metric_time) reachable from `source`."""
    if not isinstance(ref, str) or source not in model.entities:
        return []
    try:
        parsed = parse_ref(ref)
    except RefSyntaxError as error:
        return [(key, str(error))]
    if parsed.is_metric_time:
        return [] if model.entities[source].time else [(key, f"entity '{source}' declares no `time`")]
    if model.dimension(parsed.entity or "", parsed.name) is None:
        return [(key, f"unknown dimension '{parsed.entity}.{parsed.name}'")]
    if parsed.entity != source and parsed.entity not in model.paths[source].reach:
        return [(key, f"there is no join path from {source} to {parsed.entity}")]
    return []


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference, optionally qualified by a quoted table alias."""
    return exp.column(name, table=table, quoted=True)


def table(name: str) -> exp.Table:
    """A quoted reference to a CTE or table."""
    return exp.Table(this=exp.to_identifier(name, quoted=True))


def dbl(value: exp.Expression) -> exp.Expression:
    """`value` as DOUBLE, so that integer division never truncates."""
    return exp.cast(value, exp.DataType.Type.DOUBLE)


def num(value: float | int) -> exp.Expression:
    """A numeric literal; negative numbers as a negation, which every dialect parses."""
    return exp.Neg(this=exp.Literal.number(-value)) if value < 0 else exp.Literal.number(value)


def safe_div(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    """numerator / denominator as DOUBLE; a zero denominator gives NULL."""
    return exp.Div(this=dbl(numerator), expression=exp.Nullif(this=denominator, expression=exp.Literal.number(0)))


def count_if(condition: exp.Expression) -> exp.Expression:
    """COALESCE(SUM(CASE WHEN condition THEN 1 ELSE 0 END), 0): portable (unlike FILTER), and 0 over no rows."""
    case = exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))], default=exp.Literal.number(0))
    return exp.Coalesce(this=exp.Sum(this=case), expressions=[exp.Literal.number(0)])


def date_literal(day: dt.date) -> exp.Expression:
    """A DATE literal, rendered as CAST('YYYY-MM-DD' AS DATE) (or the dialect's equivalent)."""
    return exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.Type.DATE)


def parse_date(value: Any, name: str) -> dt.date:
    """An ISO 8601 date parameter (a YAML date or a 'YYYY-MM-DD' string); an AnalysisError naming it otherwise."""
    day = sqlkit.parse_date(value)
    if day is None:
        raise AnalysisError(f"{name} must be a date written YYYY-MM-DD, got {value!r}")
    return day


def literal(value: Any) -> exp.Expression:
    """A literal of a scalar parameter value (string, number, boolean)."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return num(value)
    if isinstance(value, dt.date):
        return date_literal(value)
    return exp.Literal.string(str(value))


def select(columns: Mapping[str, exp.Expression], source: str | exp.Expression) -> exp.Select:
    """SELECT columns (aliased by their keys, quoted) FROM a CTE name or an expression."""
    items = [exp.alias_(value, name, quoted=True) for name, value in columns.items()]
    return exp.select(*items).from_(table(source) if isinstance(source, str) else source)


def ordered(names: Sequence[str], descending: Sequence[str] = (), table_name: str | None = None) -> list[exp.Ordered]:
    """ORDER BY keys with NULLs last; names in `descending` sort high to low."""
    return [exp.Ordered(this=col(n, table_name), desc=n in descending, nulls_first=False) for n in names]


def with_ctes(query: exp.Select, ctes: Mapping[str, exp.Expression]) -> exp.Select:
    """Attach copies of the CTEs, in order, to `query` (rendering may rewrite a tree, so none is shared)."""
    for name, body in ctes.items():
        query = query.with_(exp.to_identifier(name, quoted=True), as_=body.copy(), copy=False)
    return query
