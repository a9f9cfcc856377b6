"""Small constructors for SELECT parts, setting sqlglot nodes directly.

sqlglot's builder methods (`.where()`, `.join()`, `.with_()`, `exp.alias_`) copy and sometimes re-parse their
arguments; the compiler builds a fresh tree for every call, so it sets nodes in place and stays well under a
millisecond per query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlglot import exp


def ident(name: str) -> exp.Identifier:
    """A quoted identifier: names from YAML never reach SQL as bare text."""
    return exp.to_identifier(name, quoted=True)  # sqlglot's builder: compiled under sqlglotc, faster than the class


def alias(value: exp.Expression, name: str) -> exp.Alias:
    return exp.Alias(this=value, alias=ident(name))


def column(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table or None, quoted=True)


def coalesce_zero(value: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=value, expressions=[exp.Literal.number(0)])


def cast(value: exp.Expression, to: exp.DataType.Type) -> exp.Cast:
    return exp.Cast(this=value, to=exp.DataType(this=to))


def table(name: str) -> exp.Table:
    return exp.Table(this=ident(name))


def add_where(select: exp.Select, *conditions: exp.Expression) -> None:
    """AND `conditions` into the WHERE clause of `select`, in place."""
    where = select.args.get("where")
    parts = [where.this] if where is not None else []
    select.set("where", exp.Where(this=exp.and_(*parts, *conditions, copy=False)))


def group_by(select: exp.Select, values: Iterable[exp.Expression]) -> None:
    values = list(values)
    if values:
        select.set("group", exp.Group(expressions=values))


def with_ctes(select: exp.Select, ctes: Mapping[str, exp.Expression]) -> None:
    if ctes:
        select.set(
            "with_",
            exp.With(
                expressions=[
                    exp.CTE(this=query, alias=exp.TableAlias(this=ident(name))) for name, query in ctes.items()
                ]
            ),
        )


def order_by(select: exp.Select, keys: Iterable[tuple[exp.Expression, bool]]) -> None:
    """ORDER BY (value, descending) pairs, NULLs last in both directions."""
    ordered = [exp.Ordered(this=value, desc=desc, nulls_first=False) for value, desc in keys]
    if ordered:
        select.set("order", exp.Order(expressions=ordered))


def limit(select: exp.Select, count: int) -> None:
    select.set("limit", exp.Limit(expression=exp.Literal.number(count)))
