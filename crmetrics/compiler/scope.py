"""The FROM clause of one fact entity: the entities it joins, and dimension references resolved inside it.

Every join follows the model's many-to-one paths and is a LEFT JOIN, so a fact row is never multiplied and never
lost (an order with an unknown customer still counts, under NULL). Row filters of joined entities go into the ON
clause, so another tenant's dimension row can never be joined.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from crmetrics.compiler.nodes import add_where, cast, coalesce_zero, column, ident
from crmetrics.compiler.periods import Calendar, periods_between
from crmetrics.errors import ContextError, QueryError
from crmetrics.model.references import Ref
from crmetrics.model.types import ADDITIVE, COUNTING, Dimension, Join, SemanticModel

GRAIN_UNITS = {"day": "DAY", "week": "WEEK", "month": "MONTH", "quarter": "QUARTER", "year": "YEAR"}


def qualify(tree: exp.Expression, alias: str) -> exp.Expression:
    """Copy `tree` with its bare columns bound to the table alias `alias`."""
    if type(tree) is exp.Column and type(tree.this) is exp.Identifier:  # the usual measure or dimension: no walk
        return exp.Column(this=exp.Identifier(this=tree.this.this, quoted=tree.this.quoted), table=ident(alias))

    def bind(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            return exp.Column(this=node.this.copy(), table=ident(alias))
        return node

    return tree.transform(bind, copy=True)


def truncate(value: exp.Expression, grain: str) -> exp.Expression:
    """The start of the `grain` period that contains `value`, as a DATE."""
    if grain == "day":
        return cast(value, exp.DataType.Type.DATE)
    trunc = exp.TimestampTrunc(this=value, unit=exp.Var(this=GRAIN_UNITS[grain]))
    return cast(trunc, exp.DataType.Type.DATE)


def bind_context(tree: exp.Expression, context: Mapping[str, Any], where: str, copy: bool = True) -> exp.Expression:
    """Replace `:name` placeholders with typed literals from `context`; a missing name fails closed.

    `copy=False` binds in place, for a tree the caller has just built."""
    if tree.find(exp.Placeholder) is None:  # most trees have none: skip the rewrite
        return tree.copy() if copy else tree

    def bind(node: exp.Expression) -> exp.Expression:
        return bound(node, context, where) if isinstance(node, exp.Placeholder) else node

    return tree.transform(bind, copy=copy)


def bound(node: exp.Placeholder, context: Mapping[str, Any], where: str) -> exp.Expression:
    """The typed literal a `:name` placeholder stands for; a name missing from `context` fails closed."""
    name = str(node.this)
    if name not in context:
        raise ContextError(
            f"{where} needs the context variable '{name}' (pass --context {name}=VALUE or context={{'{name}': ...}})"
        )
    return literal(context[name], name)


def literal(value: Any, name: str = "value") -> exp.Expression:
    """A SQL literal of a Python value; only scalars are allowed.

    Values go through the exact built-in type's own conversion, so a subclass overriding `__str__` cannot change the
    text that reaches the SQL, and NaN/infinity (which would render as the bare words `nan`/`inf`) are refused.
    """
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=bool(value))
    if isinstance(value, int):
        return exp.Literal.number(int.__repr__(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ContextError(f"context variable '{name}' must be a finite number, not {float.__repr__(value)}")
        return exp.Literal.number(float.__repr__(value))
    if isinstance(value, str):
        return exp.Literal.string(str.__str__(value))
    raise ContextError(
        f"context variable '{name}' must be a string, number, boolean or null, not {type(value).__name__}"
    )


def check_context(context: Mapping[str, Any]) -> None:
    """Refuse a context that is not a mapping of names to scalars, whether or not a row filter uses the value."""
    if not isinstance(context, Mapping):
        raise ContextError(f"the context must be a mapping of names to values, not {type(context).__name__}")
    for name, value in context.items():
        if not isinstance(name, str):
            raise ContextError(f"context variable names must be strings, not {type(name).__name__}")
        literal(value, name)


class Scope:
    """One fact entity's FROM clause, growing the joins that the resolved references need."""

    def __init__(
        self,
        model: SemanticModel,
        fact: str,
        context: Mapping[str, Any],
        measure_dimension: Callable[[Dimension], str],
    ) -> None:
        check_context(context)
        self.model, self.fact, self.context = model, fact, context
        self.paths = model.paths[fact]
        self.joins: dict[str, Join] = {}
        self.measure_joins: dict[str, tuple[str, str]] = {}  # cte name -> (entity, dimension ref)
        self.measure_dimension = measure_dimension
        self.calendar = Calendar.from_settings(model.settings)

    def need(self, entity: str, what: str) -> None:
        """Add the joins from the fact entity to `entity`, or explain why it cannot be reached."""
        if entity == self.fact:
            return
        if entity in self.paths.ambiguous:
            first, second = self.paths.ambiguous[entity]
            raise QueryError(
                f"{what}: {entity} is reached from {self.fact} by two join paths ({first}; {second});"
                f" remove one of the joins"
            )
        if entity not in self.paths.reach:
            raise QueryError(f"{what}: there is no join path from {self.fact} to {entity}")
        for join in self.paths.reach[entity]:
            self.joins.setdefault(join.target, join)

    def time_dimension(self) -> Dimension:
        entity = self.model.entities[self.fact]
        if entity.time is None:
            raise QueryError(f"metric_time: entity {self.fact} declares no `time`")
        return entity.dimensions[entity.time]

    def dimension(self, ref: Ref) -> exp.Expression:
        """The SQL of a dimension reference inside this scope."""
        if ref.is_metric_time:
            dim = self.time_dimension()
            grain = ref.grain or dim.grain
        else:
            dim = self.model.entities[ref.entity].dimensions[ref.name]  # type: ignore[index]
            grain = ref.grain or dim.grain if dim.is_time else None
            self.need(dim.entity, f"'{ref.text}' for a measure of {self.fact}")
        if dim.measure is not None:
            value = self.measure_value(dim)
            if not dim.is_time:
                return value
            return self.calendar.truncate(self.measured_time(value, dim), grain)  # type: ignore[arg-type]
        if dim.tenure is not None:
            return self.tenure(dim)
        value = self.present(qualify(dim.expr, dim.entity), dim.entity)  # type: ignore[arg-type]
        return self.calendar.truncate(self.calendar.localize(value, dim), grain) if grain else value

    def present(self, value: exp.Expression, entity: str) -> exp.Expression:
        """`value` where the fact has a row of the joined `entity`, else NULL: an orphan order has no age band,
        though `CASE WHEN age < 35 ... ELSE '35+' END` of its NULL columns would give one. A bare column is NULL
        there already."""
        if entity == self.fact or type(value) is exp.Column:
            return value
        return exp.Case(ifs=[exp.If(this=self.has_row(entity), true=value)])

    def has_row(self, entity: str) -> exp.Expression:
        """The joined `entity` has a row for the fact row: its key is not NULL (a LEFT JOIN that found nothing)."""
        key = column(self.model.entities[entity].key, entity)  # type: ignore[arg-type]
        return exp.Not(this=exp.Is(this=key, expression=exp.Null()))

    def tenure(self, dim: Dimension) -> exp.Expression:
        """Whole periods from the start the tenure dimension names to the time of its own entity's row."""
        entity, _, name = dim.tenure.partition(".")  # type: ignore[union-attr]
        start = self.dimension(Ref(entity, name, None, dim.tenure))  # type: ignore[arg-type]
        start_dim = self.model.entities[entity].dimensions[name]
        if start_dim.measure is not None and not start_dim.is_time:  # a time-typed one is converted already
            start = self.measured_time(start, start_dim)
        time = self.model.entities[dim.entity].time
        event = self.dimension(Ref(dim.entity, time, "day", f"{dim.entity}.{time}"))  # type: ignore[arg-type]
        return periods_between(self.calendar, start, event, dim.grain)

    def measured_time(self, value: exp.Expression, dim: Dimension) -> exp.Expression:
        """MIN(ordered_at) per customer, converted to the project's zone as ordered_at itself is converted."""
        measure = self.model.measure(dim.measure)  # type: ignore[arg-type]
        source = self.model.entities[measure.entity].dimensions.values() if measure else ()
        for candidate in source:
            if candidate.is_time and measure is not None and _same_column(candidate.expr, measure.expr):
                return self.calendar.localize(value, candidate)
        return value

    def measure_value(self, dim: Dimension) -> exp.Expression:
        """A measure-based dimension: the value from its per-key CTE, 0 for a row without events."""
        cte = self.measure_dimension(dim)
        self.measure_joins[cte] = (dim.entity, dim.ref)
        value = column("value", cte)
        measure = self.model.measure(dim.measure)  # type: ignore[arg-type]
        if measure is None or measure.agg not in ADDITIVE | COUNTING:
            return value
        return exp.Case(ifs=[exp.If(this=self.has_row(dim.entity), true=coalesce_zero(value))])

    def condition(self, tree: exp.Expression, what: str) -> exp.Expression:
        """A filter over references, rewritten into this scope's columns."""

        def resolve(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column):
                text = f"{node.table}.{node.name}" if node.table else node.name
                ref = Ref(node.table or None, node.name, None, text)
                value = self.dimension(ref)
                return value if isinstance(value, exp.Column) else exp.Paren(this=value)
            return node

        return bind_context(tree.transform(resolve, copy=True), self.context, what, copy=False)

    def segment(self, name: str, what: str) -> exp.Expression:
        """The condition of segment `name` on this scope's rows. A row whose segment entity is unknown (an orphan or a
        NULL key) is in no segment, even one whose condition holds for NULL values (`region IS NULL`)."""
        segment = self.model.segments[name]
        self.need(segment.entity, what)
        condition = self.condition(segment.where, f"segment '{name}'")
        if segment.entity == self.fact:
            return condition
        return exp.and_(self.has_row(segment.entity), condition, copy=False)

    def row_filter(self, entity: str) -> exp.Expression | None:
        tree = self.model.row_filters.get(entity)
        if tree is None:
            return None
        where = f"the row filter of {entity}"

        # one pass: row filters are written as entity.column, re-bound here to the entity's alias
        def rewrite(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column):
                return exp.Column(this=node.this.copy(), table=ident(entity))
            return bound(node, self.context, where) if isinstance(node, exp.Placeholder) else node

        return tree.transform(rewrite, copy=True)

    def from_clause(self, select: exp.Select) -> exp.Select:
        """Attach FROM, the joins in path order, the measure-dimension joins and the fact's row filter.

        Nodes are set directly rather than through sqlglot's builder methods, which copy and re-parse their
        arguments: compiling is on the hot path of every embedded query.
        """
        select.set("from_", exp.From(this=self.table(self.fact)))
        joins = [self.join_clause(join) for join in self.joins.values()]
        for cte, (entity, _) in self.measure_joins.items():
            key = column(self.model.entities[entity].key, entity)  # type: ignore[arg-type]
            on = exp.EQ(this=column("key", cte), expression=key)
            joins.append(exp.Join(this=exp.Table(this=ident(cte)), on=on, side="LEFT"))
        if joins:
            select.set("joins", joins)
        own = self.row_filter(self.fact)
        if own is not None:
            add_where(select, own)
        return select

    def join_clause(self, join: Join) -> exp.Join:
        """LEFT JOIN the target ON its key, guarded by its row filter."""
        on = exp.EQ(
            this=column(join.on, join.source),
            expression=column(self.model.entities[join.target].key, join.target),  # type: ignore[arg-type]
        )
        guard = self.row_filter(join.target)
        on = exp.and_(on, guard, copy=False) if guard is not None else on
        return exp.Join(this=self.table(join.target), on=on, side="LEFT")

    def table(self, entity: str) -> exp.Expression:
        ent = self.model.entities[entity]
        alias = exp.TableAlias(this=ident(entity))
        name = ent.table_name
        if name is not None:  # the usual source: rebuilt directly, cheaper than sqlglot's deep copy
            return exp.Table(
                **{part: exp.Identifier(this=text, quoted=quoted) for part, text, quoted in name}, alias=alias
            )
        if ent.source_has_placeholders:  # analysis outputs honour row filters: bind them like row filters
            source = bind_context(ent.source, self.context, f"the source of {entity}")
        else:
            source = ent.source.copy()
        if isinstance(source, exp.Table):
            source.set("alias", alias)
            return source
        return exp.Subquery(this=source.this, alias=alias)

    def key_of(self, entity: str) -> exp.Expression:
        """The key of `entity` as seen from the fact rows, using the foreign key rather than a join."""
        if entity == self.fact:
            return column(self.model.entities[entity].key, entity)  # type: ignore
        path = self.paths.reach[entity]
        for join in path[:-1]:
            self.joins.setdefault(join.target, join)
        return column(path[-1].on, path[-1].source)


def _same_column(first: exp.Expression | None, second: exp.Expression | None) -> bool:
    """Whether two expressions name the same column (quoted or not)."""
    return isinstance(first, exp.Column) and isinstance(second, exp.Column) and first.name == second.name
