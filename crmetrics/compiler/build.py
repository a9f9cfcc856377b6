"""Build the SELECT of a query: one CTE per fact entity, merged on the requested dimensions, metrics on top.

    WITH agg_orders AS (SELECT dims, SUM(...) ... FROM orders LEFT JOIN customers ... GROUP BY dims),
         agg_tickets AS (...),
         merged AS (SELECT dims, MAX(m) ... FROM (agg_orders UNION ALL agg_tickets) GROUP BY dims)
    SELECT dims AS "entity.dimension", <metric expressions> AS metric FROM merged ORDER BY ...

Each measure is aggregated at the requested grain before anything from another fact entity meets it, so metrics
never fan out; the UNION ALL + GROUP BY merge lines up groups whose dimension values are NULL, which a join on
equality would drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from crmetrics.compiler.nodes import (
    add_where,
    alias,
    cast,
    coalesce_zero,
    column,
    group_by,
    ident,
    limit,
    order_by,
    table,
    with_ctes,
)
from crmetrics.compiler.query import Query
from crmetrics.compiler.scope import Scope, qualify
from crmetrics.compiler.snapshots import snapshot_select
from crmetrics.compiler.timeline import Timeline
from crmetrics.errors import QueryError
from crmetrics.model.references import Ref
from crmetrics.model.types import ADDITIVE, COUNTING, TIME_KINDS, Dimension, Measure, Metric, SemanticModel


@dataclass(frozen=True)
class MeasureUse:
    """One aggregated column: a measure, optionally under a metric's filter."""

    alias: str
    measure: Measure
    filter: exp.Expression | None
    metric: str


@dataclass
class Plan:
    """The measures each fact entity must aggregate, in first-use order."""

    uses: dict[str, MeasureUse] = field(default_factory=dict)
    by_entity: dict[str, list[MeasureUse]] = field(default_factory=dict)

    def add(self, measure: Measure, filter_: exp.Expression | None, metric: str) -> MeasureUse:
        alias = f"{measure.entity}__{measure.name}" + (f"__{metric}" if filter_ is not None else "")
        if alias not in self.uses:
            use = MeasureUse(alias, measure, filter_, metric)
            self.uses[alias] = use
            self.by_entity.setdefault(measure.entity, []).append(use)
        return self.uses[alias]


def column_alias(ref: Ref) -> str:
    return ref.text.replace(".", "__").replace(":", "__")


class SelectBuilder:
    """Compiles one `Query` against one model into a sqlglot SELECT."""

    def __init__(self, model: SemanticModel, query: Query) -> None:
        self.model, self.query = model, query
        self.plan = Plan()
        self.measure_ctes: dict[str, exp.Expression] = {}
        self.time = Timeline(self)

    # --- metrics -> measures ---------------------------------------------------------------------------------

    def metric_sql(self, name: str) -> exp.Expression:
        """The metric as an expression over the merged measure columns."""
        metric = self.model.metrics[name]
        if metric.kind == "simple":
            return self.measure_column(self.model.measure(metric.measure), metric.filter, name)  # type: ignore
        if metric.kind == "ratio":
            return safe_divide(self.metric_sql(metric.numerator), self.metric_sql(metric.denominator))  # type: ignore
        if metric.kind in TIME_KINDS or metric.kind == "attainment":
            return self.time.metric(metric)
        return self.derived_sql(metric)

    def measure_column(self, measure: Measure, filter_: exp.Expression | None, metric: str) -> exp.Expression:
        use = self.plan.add(measure, filter_, metric)
        value = column(use.alias)  # unique in the final FROM, so left unqualified
        if measure.agg in ADDITIVE | COUNTING:  # a sum or count over no rows is 0, not NULL
            return coalesce_zero(value)
        return value

    def derived_sql(self, metric: Metric) -> exp.Expression:
        def divide(node: exp.Expression) -> exp.Expression:
            return safe_divide(node.this, node.expression) if isinstance(node, exp.Div) else node

        def replace(node: exp.Expression) -> exp.Expression:
            if not isinstance(node, exp.Column):
                return node
            if not node.table and node.name in self.model.metrics:
                return exp.Paren(this=self.metric_sql(node.name))
            ref = f"{node.table}.{node.name}" if node.table else self.unique_measure(node.name)
            return self.measure_column(self.model.measure(ref), None, metric.name)  # type: ignore[arg-type]

        # divisions first: the metrics inlined afterwards carry their own safe divisions
        return metric.expr.transform(divide, copy=True).transform(replace, copy=False)  # type: ignore[union-attr]

    def unique_measure(self, name: str) -> str:
        return next(m for m in self.model.measure_refs() if m.split(".")[1] == name)

    # --- per-entity aggregation ------------------------------------------------------------------------------

    def aggregate(self, scope: Scope, use: MeasureUse) -> exp.Expression:
        measure = use.measure
        value = qualify(measure.expr, measure.entity) if measure.expr is not None else None
        conditions = [
            scope.condition(f, f"the filter of {use.metric}") for f in (measure.filter, use.filter) if f is not None
        ]
        if conditions:
            value = exp.Case(ifs=[exp.If(this=exp.and_(*conditions), true=value or exp.Literal.number(1))])
        return aggregate_function(measure, value)

    def measure_dimension(self, dim: Dimension) -> str:
        """Name of the CTE that aggregates a measure-based dimension per key of its entity (built once)."""
        name = f"dim_{dim.entity}__{dim.name}"
        if name not in self.measure_ctes:
            measure = self.model.measure(dim.measure)  # type: ignore[arg-type]
            scope = Scope(self.model, measure.entity, self.query.context, self.measure_dimension)  # type: ignore
            key = scope.key_of(dim.entity)
            value = aggregate_function(measure, qualify(measure.expr, measure.entity) if measure.expr else None)
            if measure.filter is not None:  # type: ignore[union-attr]
                value = self.aggregate(scope, MeasureUse("value", measure, None, dim.ref))  # type: ignore
            select = scope.from_clause(exp.Select(expressions=[alias(key, "key"), alias(value, "value")]))
            group_by(select, [key.copy()])
            self.measure_ctes[name] = select
        return name

    def fact_select(self, entity: str, uses: list[MeasureUse]) -> exp.Select:
        scope, dims, filters = self.fact_scope(entity)
        columns = [alias(d, column_alias(r)) for d, r in zip(dims, self.query.by, strict=True)]
        columns += [alias(self.aggregate(scope, u), u.alias) for u in uses]
        select = scope.from_clause(exp.Select(expressions=columns))
        if filters:
            add_where(select, *filters)
        group_by(select, (d.copy() for d in dims))
        return select

    def fact_scope(self, entity: str) -> tuple[Scope, list[exp.Expression], list[exp.Expression]]:
        """The FROM scope of a fact entity, its requested dimensions, and the filters of the question."""
        scope = Scope(self.model, entity, self.query.context, self.measure_dimension)
        dims = [scope.dimension(ref) for ref in self.query.by]
        filters = self.time.range_filters(scope)
        if self.query.where is not None:
            filters.append(scope.condition(self.query.where, "--where"))
        filters += [scope.segment(name, f"segment '{name}' for a measure of {entity}") for name in self.query.segments]
        return scope, dims, filters

    # --- assembly --------------------------------------------------------------------------------------------

    def build(self) -> exp.Select:
        outputs = [(name, self.metric_sql(name)) for name in self.query.metrics]
        outputs += self.time.compare_outputs(outputs)
        fact_uses = {}
        for entity, uses in self.plan.by_entity.items():
            # snapshots (semi-additive measures) keep one snapshot per period, so they need their own CTE
            for use in uses:
                snapshot = use.measure.semi_additive
                fact_uses.setdefault(f"agg_{entity}" + (f"__{snapshot}" if snapshot else ""), []).append(use)
        facts = {
            name: snapshot_select(self, uses)
            if uses[0].measure.semi_additive
            else self.fact_select(uses[0].measure.entity, uses)
            for name, uses in fact_uses.items()
        }
        ctes = {**self.measure_ctes, **facts}
        source = next(iter(facts)) if len(facts) == 1 else "merged"
        if source == "merged":
            ctes["merged"] = self.merged(fact_uses)
        condition = None
        if self.time.active:
            source, condition = self.time.assemble(source, ctes)
        dims = [alias(column(column_alias(r)), r.text) for r in self.query.by]
        select = exp.Select(expressions=[*dims, *(alias(t, n) for n, t in outputs)])
        select.set("from_", exp.From(this=table(source)))
        if condition is not None:
            add_where(select, condition)
        with_ctes(select, ctes)
        return self.finish(select)

    def merged(self, facts: dict[str, list[MeasureUse]]) -> exp.Select:
        """UNION ALL of the fact CTEs, each padded with NULL for the others' measures, grouped on the dimensions."""
        dims = [column_alias(r) for r in self.query.by]
        union: exp.Expression | None = None
        for fact, uses in facts.items():
            own = {u.alias for u in uses}
            columns = [column(d) for d in dims]
            columns += [column(a) if a in own else alias(exp.Null(), a) for a in self.plan.uses]
            branch = exp.Select(expressions=columns, from_=exp.From(this=table(fact)))
            union = branch if union is None else exp.Union(this=union, expression=branch, distinct=False)
        merged = exp.Select(
            expressions=[column(d) for d in dims] + [alias(exp.Max(this=column(a)), a) for a in self.plan.uses],
            from_=exp.From(this=exp.Subquery(this=union, alias=exp.TableAlias(this=ident("facts")))),
        )
        group_by(merged, (column(d) for d in dims))
        return merged

    def finish(self, select: exp.Select) -> exp.Select:
        """ORDER BY what was asked, then every dimension, so results are always in the same order."""
        keys = [(k.name, k.descending) for k in self.query.order_by]
        asked = {name for name, _ in keys}
        keys += [(r.text, False) for r in self.query.by if r.text not in asked]
        order_by(select, ((column(name), desc) for name, desc in keys))
        if self.query.limit is not None:
            limit(select, self.query.limit)
        return select


def aggregate_function(measure: Measure, value: exp.Expression | None) -> exp.Expression:
    """SUM/COUNT/... of `value` (None: every row) as the measure's `agg` says."""
    agg = measure.agg
    if agg == "count":
        return exp.Count(this=value if value is not None else exp.Star())
    if agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[value]))
    if agg == "percentile":
        return exp.WithinGroup(
            this=exp.PercentileCont(this=exp.Literal.number(measure.percentile)),
            expression=exp.Order(expressions=[exp.Ordered(this=value)]),
        )
    functions = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max, "median": exp.Median}
    if agg not in functions:
        raise QueryError(f"unknown aggregation '{agg}' in measure {measure.ref}")
    return functions[agg](this=value)


def safe_divide(numerator: exp.Expression, denominator: exp.Expression) -> exp.Expression:
    """numerator / denominator as a double, NULL when the denominator is 0 (never an error, never 0)."""
    return exp.Div(
        this=cast(exp.Paren(this=numerator), exp.DataType.Type.DOUBLE),
        expression=exp.Nullif(this=exp.Paren(this=denominator), expression=exp.Literal.number(0)),
    )
