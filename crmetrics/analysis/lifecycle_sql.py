"""SQL building blocks shared by the lifecycle analyses (cohort, time_to_event, funnel, pipeline, churn).

Everything here returns sqlglot expressions that render for every dialect crmetrics targets: period arithmetic uses
YEAR/MONTH extraction and day differences rather than engine-specific date functions, percentiles use
`PERCENTILE_CONT(q) WITHIN GROUP (ORDER BY ...)`, and every division is NULL-safe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext
from crmetrics.compiler.frames import Frame
from crmetrics.compiler.query import check_dimension, parse_filter
from crmetrics.compiler.scope import qualify, truncate
from crmetrics.errors import AnalysisError, CrmetricsError, QueryError, ReferenceNotFound
from crmetrics.model.references import RefSyntaxError, parse_ref
from crmetrics.model.types import SemanticModel

DOUBLE = exp.DataType.Type.DOUBLE
BIGINT = exp.DataType.Type.BIGINT
WEEK_EPOCH = dt.date(1970, 1, 5)  # a Monday: week indices count ISO weeks from it
PERIOD_GRAINS = ("week", "month", "quarter", "year")


def ident(name: str) -> exp.Identifier:
    """A quoted identifier."""
    return exp.to_identifier(name, quoted=True)


def col(name: str, table: str | None = None) -> exp.Column:
    """A quoted column reference, optionally qualified by a CTE or table alias."""
    return exp.column(name, table=table, quoted=True)


def num(value: float | int) -> exp.Literal:
    """A numeric literal."""
    return exp.Literal.number(value)


def cast(value: exp.Expression, to: exp.DataType.Type) -> exp.Cast:
    """CAST(value AS to)."""
    return exp.Cast(this=value, to=exp.DataType(this=to))


def select(columns: Mapping[str, exp.Expression], source: str | exp.Expression) -> exp.Select:
    """SELECT the aliased `columns` FROM a CTE name or a FROM expression."""
    table = table_as(source) if isinstance(source, str) else source
    return exp.Select(expressions=[exp.alias_(v, ident(k)) for k, v in columns.items()]).from_(table, copy=False)


def table_as(name: str, alias: str | None = None) -> exp.Table:
    """A CTE or table by name, optionally aliased."""
    return exp.Table(this=ident(name), alias=exp.TableAlias(this=ident(alias)) if alias else None)


def with_ctes(final: exp.Select, ctes: Mapping[str, exp.Expression]) -> exp.Select:
    """Attach `ctes` (in order) to `final`; CTEs carried by a frame's SELECT are hoisted first."""
    for name, query in ctes.items():
        inner = query.args.get("with_")
        if inner is not None:
            query.set("with_", None)
            for cte in inner.expressions:
                final = final.with_(cte.alias_or_name, as_=cte.this, copy=False)
        final = final.with_(ident(name), as_=query, copy=False)
    return final


def group_by(query: exp.Select, names: Iterable[str], table: str | None = None) -> exp.Select:
    """GROUP BY the named columns (no-op when there are none)."""
    columns = [col(n, table) for n in names]
    return query.group_by(*columns, copy=False) if columns else query


def order_by(query: exp.Select, names: Iterable[str], table: str | None = None) -> exp.Select:
    """ORDER BY the named columns ascending, NULLs last (a deterministic row order on every database)."""
    keys = [exp.Ordered(this=col(n, table), nulls_first=False) for n in names]
    return query.order_by(*keys, copy=False) if keys else query


def safe_div(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    """numerator / denominator as a DOUBLE; NULL when the denominator is 0 or NULL."""
    zero = exp.EQ(this=denominator.copy(), expression=num(0))
    ratio = exp.Div(this=cast(numerator, DOUBLE), expression=cast(denominator, DOUBLE))
    return exp.Case(ifs=[exp.If(this=zero, true=exp.Null())], default=ratio)


def flag(condition: exp.Expression) -> exp.Expression:
    """1 when `condition` holds, else 0 (so SUM counts rows and NULL conditions count as false)."""
    return exp.Case(ifs=[exp.If(this=condition, true=num(1))], default=num(0))


def null_number() -> exp.Expression:
    """A NULL typed as DOUBLE: an untyped NULL column is TEXT on PostgreSQL, and SUM(text) fails."""
    return cast(exp.Null(), DOUBLE)


def coalesce_zero(value: exp.Expression) -> exp.Expression:
    """COALESCE(value, 0): a sum over no rows (or only NULLs) is 0."""
    return exp.Coalesce(this=value, expressions=[num(0)])


def not_null(value: exp.Expression) -> exp.Expression:
    """value IS NOT NULL."""
    return exp.Not(this=exp.Is(this=value, expression=exp.Null()))


def when(condition: exp.Expression, value: exp.Expression) -> exp.Expression:
    """`value` when `condition` holds, else NULL."""
    return exp.Case(ifs=[exp.If(this=condition, true=value)])


def percentile(value: exp.Expression, q: float) -> exp.Expression:
    """The continuous percentile `q` of `value` (NULLs ignored)."""
    return exp.WithinGroup(
        this=exp.PercentileCont(this=num(q)), expression=exp.Order(expressions=[exp.Ordered(this=value)])
    )


def days_between(start: exp.Expression, end: exp.Expression) -> exp.Expression:
    """Fractional days from `start` to `end` (negative when `end` comes first)."""
    seconds = exp.DateDiff(this=end, expression=start, unit=exp.Var(this="SECOND"))
    return exp.Div(this=cast(seconds, DOUBLE), expression=num(86400))


def add_days(value: exp.Expression, days: int) -> exp.Expression:
    """value + `days` days."""
    return exp.DateAdd(this=value, expression=num(days), unit=exp.Var(this="DAY"))


def stage_index(value: exp.Expression, stages: Sequence[str]) -> exp.Expression:
    """The 1-based position of `value` in the declared stage order; NULL for any other value."""
    ifs = [
        exp.If(this=exp.EQ(this=value.copy(), expression=exp.Literal.string(s)), true=num(i))
        for i, s in enumerate(stages, 1)
    ]
    return exp.Case(ifs=ifs)


def is_in(value: exp.Expression, values: Sequence[str]) -> exp.Expression:
    """value IN (...); FALSE for an empty list."""
    if not values:
        return exp.false()
    return exp.In(this=value, expressions=[exp.Literal.string(v) for v in values])


def period_index(day: exp.Expression, grain: str) -> exp.Expression:
    """An integer that grows by one per `grain` period, for a DATE already truncated to the period's start.

    month: year*12 + month-1; quarter: year*4 + (month-1)/3; week: whole weeks since Monday 1970-01-05.
    """
    return exp.Paren(this=_period_index(day, grain))


def _period_index(day: exp.Expression, grain: str) -> exp.Expression:
    year = cast(exp.Year(this=day.copy()), BIGINT)
    month = cast(exp.Month(this=day.copy()), BIGINT)
    if grain == "year":
        return year
    if grain == "month":
        return exp.Sub(this=exp.Add(this=exp.Mul(this=year, expression=num(12)), expression=month), expression=num(1))
    if grain == "quarter":
        quarter = exp.IntDiv(this=exp.Paren(this=exp.Sub(this=month, expression=num(1))), expression=num(3))
        return exp.Add(this=exp.Mul(this=year, expression=num(4)), expression=quarter)
    if grain == "week":
        epoch = cast(exp.Literal.string(WEEK_EPOCH.isoformat()), exp.DataType.Type.DATE)
        days = exp.DateDiff(this=day.copy(), expression=epoch, unit=exp.Var(this="DAY"))
        return exp.IntDiv(this=cast(days, BIGINT), expression=num(7))
    raise AnalysisError(f"unknown period grain '{grain}': use one of {', '.join(PERIOD_GRAINS)}")


def period_start(index: int, grain: str) -> dt.date:
    """The first day of the period with the given `period_index` (the inverse, for small results in Python)."""
    if grain == "year":
        return dt.date(index, 1, 1)
    if grain == "month":
        return dt.date(index // 12, index % 12 + 1, 1)
    if grain == "quarter":
        return dt.date(index // 4, (index % 4) * 3 + 1, 1)
    return WEEK_EPOCH + dt.timedelta(weeks=index)


def period_number(day: dt.date, grain: str) -> int:
    """The `period_index` of a Python date (for parameters such as `as_of`)."""
    if grain == "year":
        return day.year
    if grain == "month":
        return day.year * 12 + day.month - 1
    if grain == "quarter":
        return day.year * 4 + (day.month - 1) // 3
    return (day - WEEK_EPOCH).days // 7


def period_of(day: exp.Expression, grain: str) -> exp.Expression:
    """The period index of any date or timestamp."""
    return period_index(truncate(day, grain), grain)


def raw_time(frame: Frame, reference: str | None) -> exp.Expression:
    """A time dimension (`entity.dim`, default: the frame entity's `time`) as stored, not truncated to a day."""
    if reference is None:
        entity = frame.model.entities[frame.entity]
        if entity.time is None:
            raise QueryError(f"entity {frame.entity} declares no `time`; name the time dimension to use")
        reference = f"{frame.entity}.{entity.time}"
    try:
        ref = parse_ref(reference)
    except RefSyntaxError as error:
        raise QueryError(str(error)) from None
    check_dimension(frame.model, ref)
    if ref.grain is not None or ref.is_metric_time:
        return frame.dimension(reference)
    dim = frame.model.entities[ref.entity].dimensions[ref.name]  # type: ignore[index]
    if dim.expr is None or not dim.is_time:
        return frame.dimension(reference)
    frame.scope.need(dim.entity, f"'{reference}'")
    return qualify(dim.expr, dim.entity)


def condition(frame: Frame, text: str, what: str) -> exp.Expression:
    """A boolean parameter written like --where (dimension references only), resolved in `frame`."""
    tree = parse_filter(frame.model, text)
    if tree is None:
        raise AnalysisError(f"{what} is empty")
    return frame.scope.condition(tree, what)


def entity_param(ctx: AnalysisContext, key: str) -> str:
    """The entity named by the required parameter `key`, checked to exist."""
    name = ctx.params.get(key)
    if name is None:
        raise AnalysisError(f"analysis '{ctx.name}' needs `{key}`")
    if name not in ctx.model.entities:
        raise ReferenceNotFound("entity", name, ctx.model.entities)
    return name


def member_key(frame: Frame, entity: str) -> exp.Expression:
    """The key of `entity` on each row of `frame` (its foreign key), or a QueryError naming the missing join."""
    problem = join_problem(frame.model, frame.entity, entity)
    if problem:
        raise QueryError(problem)
    return frame.key(entity)


def join_problem(model: SemanticModel, source: str, target: str) -> str | None:
    """Why rows of `source` cannot name a `target` (no key, no join path, two paths), or None."""
    if source not in model.entities or target not in model.entities:
        return None  # reported as an unknown entity
    if model.entities[target].key is None:
        return f"entity {target} declares no `key`"
    if source == target:
        return None
    paths = model.paths[source]
    if target in paths.ambiguous:
        return f"{source} reaches {target} by two join paths; remove one of the joins"
    if target not in paths.reach:
        return f"there is no join path from {source} to {target}: declare `joins: {{{target}: ...}}` on {source}"
    return None


def as_list(value: Any) -> list[str]:
    """A parameter that may be one string or a list of strings."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def breakdown(frame: Frame, references: Sequence[str]) -> dict[str, exp.Expression]:
    """The `by` references of an analysis as columns named exactly as written."""
    return {ref: frame.dimension(ref) for ref in references}


def window_key(value: exp.Expression, desc: bool = False) -> exp.Ordered:
    """A sort key inside OVER (...), for a column that is never NULL.

    NULL placement is left implicit (nulls_first = not desc is every dialect's default pairing that sqlglot can
    render without a translation; BigQuery cannot translate NULLS LAST inside a window).
    """
    return exp.Ordered(this=value, desc=desc, nulls_first=not desc)


def running_sum(value: exp.Expression, partition: Sequence[str], order: str) -> exp.Expression:
    """SUM(value) over the rows so far, ordered by a column unique within the partition (deterministic)."""
    spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW")
    return exp.Window(
        this=exp.Sum(this=value),
        partition_by=[col(p) for p in partition] or None,
        order=exp.Order(expressions=[window_key(col(order))]),
        spec=spec,
    )


def reference_checker(
    kinds: Mapping[str, str], joins: Sequence[tuple[str, str]] = ()
) -> Callable[[SemanticModel, Mapping[str, Any]], Iterable[tuple[str, str]]]:
    """A load-time `check` for AnalysisMethod: each parameter named in `kinds` must name an existing
    `entity`, `dimension` (one or a list) or `measure`, and for each (source, target) pair of entity parameters in
    `joins` the source's rows must reach the target's key; problems come back as (parameter, message) pairs."""

    def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
        for source, target in joins:
            if isinstance(params.get(source), str) and isinstance(params.get(target), str):
                problem = join_problem(model, params[source], params[target])
                if problem:
                    yield source, problem
        for name, kind in kinds.items():
            value = params.get(name)
            if value is None:
                continue
            for item in as_list(value) if kind == "dimension" else [value]:
                problem = _problem(model, kind, item)
                if problem:
                    yield name, problem

    return check


def _problem(model: SemanticModel, kind: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return None  # the schema already reported the wrong type
    if kind == "entity":
        return None if value in model.entities else str(ReferenceNotFound("entity", value, model.entities).message)
    if kind == "condition":
        try:
            parse_filter(model, value)
        except CrmetricsError as error:
            return error.message
        return None
    if kind == "measure":
        if model.measure(value) is None:
            return str(ReferenceNotFound("measure", value, model.measure_refs()).message)
        return None
    try:
        check_dimension(model, parse_ref(value))
    except RefSyntaxError as error:
        return str(error)
    except CrmetricsError as error:
        return error.message
    return None
