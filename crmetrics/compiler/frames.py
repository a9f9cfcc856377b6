"""Row-level SELECTs over one entity, for analysis methods and drill-downs.

A `Frame` is the FROM clause of one entity with the query's `where`, segments and the project's row filters
already applied; an analysis method asks it for dimension values, row-level measure values and the key, and wraps
the SELECT it returns in its own aggregation. That keeps every analysis inside the database and every filter honoured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlglot import exp

from crmetrics.compiler.query import check_dimension, parse_filter
from crmetrics.compiler.scope import Scope, qualify
from crmetrics.errors import QueryError, ReferenceNotFound
from crmetrics.model.references import Ref, RefSyntaxError, parse_ref
from crmetrics.model.types import Dimension, SemanticModel


class Frame:
    """One entity's rows, filtered by `where`, `segments` and row-level security."""

    def __init__(
        self,
        model: SemanticModel,
        entity: str,
        where: str | exp.Expression | None = None,
        segments: Sequence[str] = (),
        context: Mapping[str, Any] | None = None,
    ) -> None:
        if entity not in model.entities:
            raise ReferenceNotFound("entity", entity, model.entities)
        self.model, self.entity = model, entity
        self._measure_ctes: dict[str, exp.Expression] = {}
        self.scope = Scope(model, entity, context or {}, self._measure_dimension)
        self.filters: list[exp.Expression] = []
        tree = parse_filter(model, where) if isinstance(where, str) else where
        if tree is not None:
            self.filters.append(self.scope.condition(tree, "--where"))
        for name in segments:
            if name not in model.segments:
                raise ReferenceNotFound("segment", name, model.segments)
            self.filters.append(self.scope.segment(name, f"segment '{name}' for {entity}"))

    def _measure_dimension(self, dim: Dimension) -> str:
        # measure-based dimensions reuse the compiler's per-key CTE builder
        from crmetrics.compiler.build import SelectBuilder
        from crmetrics.compiler.query import Query

        builder = SelectBuilder(self.model, Query(metrics=(), context=self.scope.context))
        name = builder.measure_dimension(dim)
        self._measure_ctes.update(builder.measure_ctes)
        return name

    def dimension(self, reference: str) -> exp.Expression:
        """A dimension reference (`entity.dim`, `entity.time:grain`, `metric_time:grain`) for each row."""
        try:
            ref = parse_ref(reference)
        except RefSyntaxError as error:
            raise QueryError(str(error)) from None
        check_dimension(self.model, ref)
        return self.scope.dimension(ref)

    def time(self, grain: str | None = None) -> exp.Expression:
        """The entity's default time dimension, truncated to `grain` when given."""
        return self.scope.dimension(Ref(None, "metric_time", grain, "metric_time"))

    def key(self, entity: str | None = None) -> exp.Expression:
        """The key of this entity, or of a joined entity as its foreign key holds it."""
        target = entity or self.entity
        if self.model.entities[target].key is None:
            raise QueryError(f"entity {target} declares no `key`")
        return self.scope.key_of(target)

    def column(self, name: str) -> exp.Expression:
        """A raw column of this entity."""
        return exp.column(name, table=self.entity, quoted=True)

    def measure_value(self, ref: str) -> exp.Expression:
        """A measure's row-level value (its expr, NULL where its filter fails; 1 for a row count)."""
        measure = self.model.measure(ref)
        if measure is None:
            raise ReferenceNotFound("measure", ref, self.model.measure_refs())
        if measure.entity != self.entity:
            raise QueryError(f"measure {ref} belongs to {measure.entity}, not {self.entity}")
        value = qualify(measure.expr, self.entity) if measure.expr is not None else exp.Literal.number(1)
        if measure.filter is not None:
            condition = self.scope.condition(measure.filter, f"the filter of {ref}")
            value = exp.Case(ifs=[exp.If(this=condition, true=value)])
        return value

    def select(self, columns: Mapping[str, exp.Expression]) -> exp.Select:
        """SELECT the given expressions (aliased by their keys) from the filtered rows, measure CTEs attached."""
        select = exp.Select(expressions=[exp.alias_(value, name, quoted=True) for name, value in columns.items()])
        select = self.scope.from_clause(select)
        if self.filters:
            select = select.where(*(f.copy() for f in self.filters), copy=False)
        for name, cte in self._measure_ctes.items():
            select = select.with_(exp.to_identifier(name, quoted=True), as_=cte, copy=False)
        return select
