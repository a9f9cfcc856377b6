"""sqlglot helpers shared by the rfm, profile, quadrant, pareto and new_vs_returning methods.

Every helper returns a fresh expression, so a caller may use its results in several places of one tree. Names from
YAML always become quoted identifiers; values always become literals.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from crmetrics.compiler import build_query, compile_select
from crmetrics.compiler.frames import Frame
from crmetrics.model.references import RefSyntaxError, parse_ref
from crmetrics.model.types import ADDITIVE, COUNTING, Dimension, SemanticModel

GRAIN_CHOICES = ("day", "week", "month", "quarter", "year")


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column, optionally qualified by a quoted table alias."""
    return exp.column(name, table=table, quoted=True)


def tbl(name: str) -> exp.Table:
    return exp.Table(this=ident(name))


def alias(value: exp.Expression, name: str) -> exp.Alias:
    return exp.alias_(value, name, quoted=True)


def num(value: float | int) -> exp.Expression:
    """A numeric literal; negative numbers as a negation, which every dialect parses."""
    return exp.Neg(this=exp.Literal.number(-value)) if value < 0 else exp.Literal.number(value)


def text(value: str | None) -> exp.Expression:
    return exp.null() if value is None else exp.Literal.string(value)


def dbl(value: exp.Expression) -> exp.Expression:
    return exp.cast(value, exp.DataType.Type.DOUBLE)


def safe_div(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    """numerator / denominator as DOUBLE; a zero denominator gives NULL (never an error, never 0)."""
    return exp.Div(
        this=dbl(exp.Paren(this=numerator)),
        expression=exp.Nullif(this=exp.Paren(this=denominator), expression=exp.Literal.number(0)),
    )


def case(ifs: Iterable[tuple[exp.Expression, exp.Expression]], default: exp.Expression | None = None) -> exp.Case:
    return exp.Case(ifs=[exp.If(this=c, true=v) for c, v in ifs], default=default)


def count_if(condition: exp.Expression) -> exp.Expression:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END): portable where COUNT(*) FILTER is not."""
    return exp.Sum(this=case([(condition, exp.Literal.number(1))], exp.Literal.number(0)))


def coalesce(value: exp.Expression, default: exp.Expression) -> exp.Expression:
    return exp.func("COALESCE", value, default)


def date_literal(day: dt.date) -> exp.Expression:
    return exp.cast(exp.Literal.string(day.isoformat()), exp.DataType.Type.DATE)


def parse_date(value: Any) -> dt.date | None:
    """An ISO 8601 date parameter (a YAML date or 'YYYY-MM-DD'), or None when it is not one."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def window(
    func: exp.Expression, order: Sequence[exp.Ordered] = (), partition: Sequence[exp.Expression] = ()
) -> exp.Window:
    """`func` OVER (PARTITION BY ... ORDER BY ...)."""
    return exp.Window(
        this=func,
        partition_by=list(partition) or None,
        order=exp.Order(expressions=list(order)) if order else None,
    )


def ordered(value: exp.Expression, desc: bool = False, nulls_first: bool = False) -> exp.Ordered:
    """An ORDER BY key with the NULL position spelt out, so every dialect orders alike."""
    return exp.Ordered(this=value, desc=desc, nulls_first=nulls_first)


def running_total(value: exp.Expression, order: exp.Ordered) -> exp.Window:
    """SUM(value) over every row ordered before this one *and its ties*: equal values get equal totals."""
    spec = exp.WindowSpec(kind="RANGE", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
    return exp.Window(this=exp.Sum(this=value), order=exp.Order(expressions=[order]), spec=spec)


def select(columns: Mapping[str, exp.Expression], source: str | exp.Expression) -> exp.Select:
    """SELECT the aliased `columns` FROM a CTE name or a table expression."""
    query = exp.Select(expressions=[alias(v, k) for k, v in columns.items()])
    return query.from_(tbl(source) if isinstance(source, str) else source, copy=False)


def with_ctes(query: exp.Select, ctes: Mapping[str, exp.Expression]) -> exp.Select:
    """Attach `ctes` (name -> SELECT) as the WITH clause of `query`, in order."""
    for name, cte in ctes.items():
        query = query.with_(ident(name), as_=cte, copy=False)
    return query


def union_all(selects: Sequence[exp.Select]) -> exp.Expression:
    result: exp.Expression = selects[0]
    for part in selects[1:]:
        result = exp.union(result, part, distinct=False)
    return result


def visible_keys(ctx: Any, entity: str) -> exp.Select:
    """SELECT DISTINCT k: the keys of `entity`'s rows that the caller may see (row filters only, not where or
    segments), once each, so that a key held by two rows (a data defect, `crmetrics validate` reports it) does not
    double the events joined to it."""
    frame = Frame(ctx.model, entity, None, (), ctx.context)
    return frame.select({"k": frame.key()}).distinct(copy=False)


def is_visible(key: exp.Expression, visible: str = "visible") -> exp.Expression:
    """`key` IN (SELECT k FROM visible): a semi-join, which cannot multiply rows as a join to the entity's rows can;
    a NULL key (an event of no entity) is never visible."""
    return exp.In(this=key, query=exp.Subquery(this=exp.select(col("k")).from_(tbl(visible), copy=False)))


def measure_aggregate(model: SemanticModel, ref: str, value: exp.Expression) -> exp.Expression:
    """The measure's own aggregation of row-level `value`; sums and counts over no rows are 0, not NULL."""
    from crmetrics.compiler.build import aggregate_function

    measure = model.measure(ref)
    assert measure is not None  # checked at load time
    aggregated = aggregate_function(measure, value)
    return coalesce(aggregated, exp.Literal.number(0)) if measure.agg in ADDITIVE | COUNTING else aggregated


def metric_query(
    model: SemanticModel,
    metrics: Sequence[str],
    by: Sequence[str],
    where: str | None,
    segments: Sequence[str],
    context: Mapping[str, Any],
) -> exp.Select:
    """The compiled SELECT of an ordinary question: columns named by the references and metric names asked for."""
    query = build_query(model, list(metrics), list(by), where, list(segments))
    # the context goes in as given: a load-time DeferredContext must reach the compiler's binding unchanged
    tree = compile_select(model, dataclasses.replace(query, context=context))
    tree.set("order", None)  # used as a CTE: the caller orders its own output
    return tree


def with_key_dimension(model: SemanticModel, entity: str) -> tuple[SemanticModel, str]:
    """`model` with `entity`'s key also declared as a dimension, and that dimension's reference.

    Lets the per-entity methods (quadrant, pareto) ask the compiler for metrics grouped by entity.
    """
    ent = model.entities[entity]
    key = ent.key or ""
    if key in ent.dimensions:
        return model, f"{entity}.{key}"
    dims = {**ent.dimensions, key: Dimension(entity, key, exp.column(key))}
    entities = {**model.entities, entity: dataclasses.replace(ent, dimensions=dims)}
    return dataclasses.replace(model, entities=entities), f"{entity}.{key}"


# --- parameter checks at load time ---------------------------------------------------------------------------


def check_entity(model: SemanticModel, params: Mapping[str, Any], key: str, keyed: bool = True) -> list[tuple]:
    name = params.get(key)
    if not isinstance(name, str):
        return []
    if name not in model.entities:
        return [(key, f"unknown entity '{name}'")]
    if keyed and model.entities[name].key is None:
        return [(key, f"entity '{name}' declares no `key`")]
    return []


def check_events(model: SemanticModel, params: Mapping[str, Any]) -> list[tuple]:
    """`events` reaches `entity` through joins and has a default time dimension."""
    problems = check_entity(model, params, "entity") + check_entity(model, params, "events", keyed=False)
    entity, events = params.get("entity"), params.get("events")
    if problems or not isinstance(entity, str) or not isinstance(events, str):
        return problems
    paths = model.paths[events]
    if entity == events:
        return [("events", "events must be another entity than `entity` (the events of each entity)")]
    if entity not in paths.reach:
        return [("events", f"there is no join path from {events} to {entity}")]
    if model.entities[events].time is None:
        return [("events", f"entity '{events}' declares no `time` (the date of each event)")]
    return []


def check_measure(model: SemanticModel, params: Mapping[str, Any], key: str, entity_key: str) -> list[tuple]:
    ref, entity = params.get(key), params.get(entity_key)
    if not isinstance(ref, str):
        return []
    measure = model.measure(ref)
    if measure is None:
        return [(key, f"unknown measure '{ref}' (write entity.measure)")]
    if isinstance(entity, str) and measure.entity != entity:
        return [(key, f"measure {ref} belongs to {measure.entity}, not to the {entity_key} entity {entity}")]
    return []


def check_metrics(model: SemanticModel, params: Mapping[str, Any], *keys: str) -> list[tuple]:
    problems = []
    for key in keys:
        value = params.get(key)
        for name in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
            if isinstance(name, str) and name not in model.metrics:
                problems.append((key, f"unknown metric '{name}'"))
    return problems


def check_dimensions(model: SemanticModel, params: Mapping[str, Any], key: str) -> list[tuple]:
    value = params.get(key)
    problems = []
    for text_ in [value] if isinstance(value, str) else value if isinstance(value, list) else []:
        if not isinstance(text_, str):
            continue
        try:
            ref = parse_ref(text_)
        except RefSyntaxError as error:
            problems.append((key, str(error)))
            continue
        if ref.is_metric_time:
            continue
        if model.dimension(ref.entity or "", ref.name) is None:
            problems.append((key, f"unknown dimension '{text_}'"))
    return problems


def member_spec(model: SemanticModel, params: Mapping[str, Any]) -> tuple[SemanticModel, str, str, bool]:
    """Who the members are: per `entity` (its key) or per value of the dimension `by`.

    Returns the model to compile against, the reference to group by, the output column name (the key's own name, or
    the reference as queries name it) and whether a NULL member is dropped (an orphan fact row is not an entity; a
    NULL dimension value is a group like any other).
    """
    if params.get("entity"):
        model, ref = with_key_dimension(model, params["entity"])
        return model, ref, model.entities[params["entity"]].key or "", True
    return model, params["by"], params["by"], False


def member_checks(model: SemanticModel, params: Mapping[str, Any]) -> list[tuple]:
    return check_entity(model, params, "entity") + check_dimensions(model, params, "by")


def floor_div(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    """floor(numerator / denominator) as BIGINT, the same on every engine (PostgreSQL's DIV gives NUMERIC, DuckDB
    has no DIV, ClickHouse truncates): exact for the integers here, far below 2^53."""
    quotient = exp.Div(this=dbl(exp.Paren(this=numerator)), expression=exp.Paren(this=denominator))
    return exp.cast(exp.Floor(this=quotient), exp.DataType.Type.BIGINT)
