"""Semi-additive measures: balances, open pipeline, MRR — tables of snapshots, read at the last snapshot of a period.

Summing daily balances over a month counts every balance about thirty times, so a `semi_additive: last` measure is
aggregated over the other dimensions at one snapshot only: the latest snapshot time within each period of the time
axis (the latest overall when the question has no time axis). `first` takes the earliest instead.

    inner:  SELECT dims, snapshot, AGG(value) FROM entity ... GROUP BY dims, snapshot
    ranked: SELECT inner.*, MAX(snapshot) OVER (PARTITION BY <time dims>) AS chosen FROM inner
    outer:  SELECT dims, MAX(value) FROM ranked WHERE snapshot = chosen GROUP BY dims

The latest snapshot is chosen per period across all groups (as MetricFlow does), so a group with no row on that
day — a closed account — contributes nothing rather than an older balance. Each (dims, snapshot) group of `inner`
is one row, so MAX in `outer` only picks that row's value and works for every aggregation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from crmetrics.compiler.nodes import add_where, alias, column, group_by, ident
from crmetrics.errors import QueryError
from crmetrics.model.references import Ref

if TYPE_CHECKING:
    from crmetrics.compiler.build import MeasureUse, SelectBuilder

SNAPSHOT, CHOSEN = "__snapshot", "__chosen"


def snapshot_select(builder: SelectBuilder, uses: list[MeasureUse]) -> exp.Select:
    """The aggregate CTE of one entity's semi-additive measures (all `last` or all `first`) at the requested
    dimensions."""
    from crmetrics.compiler.build import column_alias  # build imports this module

    entity = uses[0].measure.entity
    if builder.model.entities[entity].time is None:
        raise QueryError(f"semi-additive measure {uses[0].measure.ref} needs `time` on {entity} (the snapshot time)")
    scope, dims, filters = builder.fact_scope(entity)
    snapshot = scope.dimension(Ref(None, "metric_time", None, "metric_time"))
    names = [column_alias(r) for r in builder.query.by]
    inner = exp.Select(
        expressions=[alias(d, n) for d, n in zip(dims, names, strict=True)]
        + [alias(snapshot, SNAPSHOT)]
        + [alias(builder.aggregate(scope, u), u.alias) for u in uses]
    )
    inner = scope.from_clause(inner)
    if filters:
        add_where(inner, *filters)
    group_by(inner, [*(d.copy() for d in dims), snapshot.copy()])

    times = [column(n) for r, n in zip(builder.query.by, names, strict=True) if _is_time(builder, r)]
    pick = exp.Max if uses[0].measure.semi_additive == "last" else exp.Min
    chosen = exp.Window(this=pick(this=column(SNAPSHOT)), partition_by=times or None)
    ranked = exp.Select(expressions=[exp.Star(), alias(chosen, CHOSEN)]).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=ident("snapshots"))), copy=False
    )
    outer = exp.Select(
        expressions=[column(n) for n in names] + [alias(exp.Max(this=column(u.alias)), u.alias) for u in uses]
    ).from_(exp.Subquery(this=ranked, alias=exp.TableAlias(this=ident("ranked"))), copy=False)
    add_where(outer, exp.EQ(this=column(SNAPSHOT), expression=column(CHOSEN)))
    group_by(outer, (column(n) for n in names))
    return outer


def _is_time(builder: SelectBuilder, ref: Ref) -> bool:
    if ref.is_metric_time:
        return True
    dim = builder.model.dimension(ref.entity, ref.name)  # type: ignore[arg-type]
    return dim is not None and dim.is_time
