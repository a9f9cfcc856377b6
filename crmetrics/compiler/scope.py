"""The FROM clause of one fact entity: the entities it joins, and dimension references resolved inside it.

Every join follows the model's many-to-one paths and is a LEFT JOIN, so a fact row is never multiplied and never
lost (an order with an unknown customer still counts, under NULL). Row filters of joined entities go into the ON
clause, so another tenant's dimension row can never be joined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from crmetrics.errors import ContextError, QueryError
from crmetrics.model.references import Ref
from crmetrics.model.types import ADDITIVE, COUNTING, Dimension, Join, SemanticModel

GRAIN_UNITS = {"day": "DAY", "week": "WEEK", "month": "MONTH", "quarter": "QUARTER", "year": "YEAR"}


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def qualify(tree: exp.Expression, alias: str) -> exp.Expression:
    """Copy `tree` with its bare columns bound to the table alias `alias`."""

    def bind(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column):
            return exp.Column(this=node.this.copy(), table=ident(alias))
        return node

    return tree.transform(bind, copy=True)


def truncate(value: exp.Expression, grain: str) -> exp.Expression:
    """The start of the `grain` period that contains `value`, as a DATE."""
    if grain == "day":
        return exp.cast(value, exp.DataType.Type.DATE)
    trunc = exp.TimestampTrunc(this=value, unit=exp.Var(this=GRAIN_UNITS[grain]))
    return exp.cast(trunc, exp.DataType.Type.DATE)


def bind_context(tree: exp.Expression, context: Mapping[str, Any], where: str) -> exp.Expression:
    """Replace `:name` placeholders with typed literals from `context`; a missing name fails closed."""

    def bind(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Placeholder):
            return node
        name = str(node.this)
        if name not in context:
            raise ContextError(
                f"{where} needs the context variable '{name}' (pass --context {name}=VALUE or "
                f"context={{'{name}': ...}})"
            )
        return literal(context[name], name)

    return tree.transform(bind, copy=True)


def literal(value: Any, name: str = "value") -> exp.Expression:
    """A SQL literal of a Python value; only scalars are allowed."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise ContextError(
        f"context variable '{name}' must be a string, number, boolean or null, not {type(value).__name__}"
    )


class Scope:
    """One fact entity's FROM clause, growing the joins that the resolved references need."""

    def __init__(
        self,
        model: SemanticModel,
        fact: str,
        context: Mapping[str, Any],
        measure_dimension: Callable[[Dimension], str],
    ) -> None:
        self.model, self.fact, self.context = model, fact, context
        self.paths = model.paths[fact]
        self.joins: dict[str, Join] = {}
        self.measure_joins: dict[str, tuple[str, str]] = {}  # cte name -> (entity, dimension ref)
        self.measure_dimension = measure_dimension

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
            return self.measure_value(dim)
        value = qualify(dim.expr, dim.entity)  # type: ignore[arg-type]
        return truncate(value, grain) if grain else value

    def measure_value(self, dim: Dimension) -> exp.Expression:
        """A measure-based dimension: the value from its per-key CTE, 0 for a row without events."""
        cte = self.measure_dimension(dim)
        self.measure_joins[cte] = (dim.entity, dim.ref)
        value = exp.column("value", table=cte, quoted=True)
        measure = self.model.measure(dim.measure)  # type: ignore[arg-type]
        if measure is None or measure.agg not in ADDITIVE | COUNTING:
            return value
        entity = self.model.entities[dim.entity]
        present = exp.column(entity.key, table=dim.entity, quoted=True).is_(exp.null()).not_()  # type: ignore[arg-type]
        return exp.Case(ifs=[exp.If(this=present, true=exp.func("COALESCE", value, exp.Literal.number(0)))])

    def condition(self, tree: exp.Expression, what: str) -> exp.Expression:
        """A filter over references, rewritten into this scope's columns."""

        def resolve(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column):
                ref = Ref(node.table or None, node.name, None, node.sql())
                value = self.dimension(ref)
                return value if isinstance(value, exp.Column) else exp.Paren(this=value)
            return node

        return bind_context(tree.transform(resolve, copy=True), self.context, what)

    def row_filter(self, entity: str) -> exp.Expression | None:
        tree = self.model.row_filters.get(entity)
        if tree is None:
            return None
        return bind_context(qualify(_strip_tables(tree), entity), self.context, f"the row filter of {entity}")

    def from_clause(self, select: exp.Select) -> exp.Select:
        """Attach FROM, the joins in path order, the measure-dimension joins and the fact's row filter."""
        select = select.from_(self.table(self.fact), copy=False)
        for join in self.joins.values():
            on = exp.column(join.on, table=join.source, quoted=True).eq(
                exp.column(self.model.entities[join.target].key, table=join.target, quoted=True)
            )  # type: ignore
            guard = self.row_filter(join.target)
            select = select.join(
                self.table(join.target), on=exp.and_(on, guard) if guard else on, join_type="left", copy=False
            )
        for cte, (entity, _) in self.measure_joins.items():
            key = exp.column(self.model.entities[entity].key, table=entity, quoted=True)  # type: ignore[arg-type]
            on = exp.column("key", table=cte, quoted=True).eq(key)
            select = select.join(exp.Table(this=ident(cte)), on=on, join_type="left", copy=False)
        own = self.row_filter(self.fact)
        return select.where(own, copy=False) if own is not None else select

    def table(self, entity: str) -> exp.Expression:
        source = self.model.entities[entity].source.copy()
        return exp.alias_(source, ident(entity), table=True)

    def key_of(self, entity: str) -> exp.Expression:
        """The key of `entity` as seen from the fact rows, using the foreign key rather than a join."""
        if entity == self.fact:
            return exp.column(self.model.entities[entity].key, table=entity, quoted=True)  # type: ignore
        path = self.paths.reach[entity]
        for join in path[:-1]:
            self.joins.setdefault(join.target, join)
        return exp.column(path[-1].on, table=path[-1].source, quoted=True)


def _strip_tables(tree: exp.Expression) -> exp.Expression:
    """Row filters are written as entity.column; `qualify` re-binds them to the entity's alias."""

    def strip(node: exp.Expression) -> exp.Expression:
        return exp.Column(this=node.this.copy()) if isinstance(node, exp.Column) else node

    return tree.transform(strip, copy=True)
