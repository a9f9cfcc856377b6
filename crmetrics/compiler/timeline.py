"""Time intelligence on top of the merged aggregates: gap filling, comparisons with earlier periods, running and
trailing windows, time ranges and target grains.

Measures are aggregated per period first (the fact CTEs of `build.py`); everything here works on those few rows
per period, never on the facts joined to a calendar. The stages, each a CTE, are:

    time_bounds, time_digits, time_spine, time_grid
                  every period, crossed with the other dimensions' combinations (see `spine.py`); only when
                  gaps are filled, periods are compared or trailing windows count periods
    filled        data UNION ALL grid (UNION ALL distinct-count deltas) grouped by the dimensions: one row per
                  cell, sums and counts 0 where there were no rows, `__has_data` marking cells with data
    windowed      running and trailing windows over the dense rows (ROWS frames are exact because no period
                  is missing), partitioned by the other dimensions and ordered by the axis, which is unique in
                  each partition, so the order is fully determined; NULL on the row of unknown time
    compared      filled/windowed UNION ALL copies moved forward by one shift each, grouped by the dimensions:
                  the previous value lands on the current row without a join on possibly NULL dimension values;
                  a comparison of a comparison is one shift of the base columns by both moves

The final SELECT keeps the rows in the requested range, and only cells with data unless gaps are to be filled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from crmetrics.compiler import spine
from crmetrics.compiler.distinct_windows import distinct_deltas
from crmetrics.compiler.nodes import alias, cast, coalesce_zero, column, group_by, ident, table
from crmetrics.compiler.periods import STEPS, Calendar, add_units, date_literal
from crmetrics.errors import QueryError
from crmetrics.model.references import Ref
from crmetrics.model.types import ADDITIVE, COUNTING, Metric

if TYPE_CHECKING:
    from crmetrics.compiler.build import SelectBuilder

HAS_DATA, CURRENT = "__has_data", "__current"
# the moved axis of a later UNION branch gets its own name: ClickHouse resolves a name to a SELECT alias before a
# column, so aliasing it as the axis would make the WHERE of that branch read the moved value
MOVED = "__moved"
COUNTED = ADDITIVE | COUNTING  # 0 in a filled cell without rows
WINDOWED_AGGS = frozenset({"sum", "count", "count_distinct", "min", "max"})


@dataclass(frozen=True)
class Window:
    """A running (rows=None) or trailing (rows periods, the current one included) window, optionally restarting
    at each period of `to_date`."""

    rows: int | None
    to_date: str | None


@dataclass(frozen=True)
class Shift:
    """A move back along the axis, made of steps of `count` periods of the axis ('period') or `count` years
    ('year'), innermost comparison first.

    A comparison of a comparison is one shift of the base columns, never a shift of a shifted column: a shifted
    column is made in the same SELECT that would read it, where DuckDB takes its name for that SELECT's alias and
    SQLite for a string. At the day grain a year and a day do not commute around 29 February, so steps keep their
    order; adjacent steps of one kind add up, as `periods: 2` does.
    """

    steps: tuple[tuple[int, str], ...]

    @classmethod
    def of(cls, periods: int, compare: str) -> Shift:
        """`periods` periods of the axis back (compare='period') or `periods` years back (compare='year')."""
        return cls(((periods, compare),))

    def then(self, outer: Shift) -> Shift:
        """This shift followed by `outer`: the shift of a comparison (`outer`) of a comparison (`self`)."""
        steps = list(self.steps)
        for count, compare in outer.steps:
            if steps and steps[-1][1] == compare:
                count += steps.pop()[0]
            steps.append((count, compare))
        return Shift(tuple(steps))


class Timeline:
    """Collects what the time metrics of one query need, then adds the CTEs that compute it."""

    def __init__(self, builder: SelectBuilder) -> None:
        self.builder = builder
        self.model = builder.model
        self.options = builder.query.time
        self.calendar = Calendar.from_settings(self.model.settings)
        self.windows: dict[str, tuple[str, Window]] = {}  # column -> (measure column, window)
        self.shifts: dict[str, tuple[str, Shift]] = {}  # column -> (source column, shift)
        self.used = False

    @property
    def active(self) -> bool:
        """Whether the query needs the time stages at all."""
        return self.used or self.options.fill_gaps or self.options.compare is not None

    @property
    def grain(self) -> str:
        return self.options.grain or "day"

    # --- metrics ---------------------------------------------------------------------------------------------

    def metric(self, metric: Metric) -> exp.Expression:
        """A time metric as an expression over the columns of the last stage."""
        from crmetrics.compiler.build import safe_divide  # build imports this module

        builder = self.builder
        if metric.kind == "attainment":
            self.check_targets(metric)
            return safe_divide(builder.metric_sql(metric.numerator), builder.metric_sql(metric.denominator))  # type: ignore
        if self.options.axis is None:
            raise QueryError(f"metric {metric.name} needs one time dimension in by (for example metric_time:month)")
        self.used = True
        current = builder.metric_sql(metric.base)  # type: ignore[arg-type]
        if metric.kind == "cumulative":
            window = self.window_of(metric)
            return self.remap(current, lambda name: self.window_column(name, window, metric.name))
        return self.compared(current, Shift.of(metric.periods, metric.compare), metric.kind)

    def compared(self, current: exp.Expression, shift: Shift, kind: str) -> exp.Expression:
        """The earlier value (offset), current - earlier (change) or (current - earlier) / earlier (growth)."""
        from crmetrics.compiler.build import safe_divide

        previous = self.remap(current.copy(), lambda name: self.shift_column(name, shift))
        if kind == "offset":
            return previous
        change = exp.Sub(this=exp.Paren(this=current), expression=exp.Paren(this=previous))
        return change if kind == "change" else safe_divide(change, previous.copy())

    def compare_outputs(self, outputs: list[tuple[str, exp.Expression]]) -> list[tuple[str, exp.Expression]]:
        """metric:previous, metric:change and metric:growth for every metric when the query compares."""
        if self.options.compare is None:
            return []
        shift = Shift.of(1, self.options.compare)
        extra = []
        for name, tree in outputs:
            for kind, suffix in (("offset", "previous"), ("change", "change"), ("growth", "growth")):
                extra.append((f"{name}:{suffix}", self.compared(tree.copy(), shift, kind)))
        return extra

    def remap(self, tree: exp.Expression, replace: Callable[[str], exp.Expression]) -> exp.Expression:
        """Replace each stage column (bare, or as COALESCE(column, 0)) with `replace(name)`."""
        known = set(self.builder.plan.uses) | set(self.windows) | set(self.shifts)

        def name_of(node: exp.Expression) -> str | None:
            if isinstance(node, exp.Column) and not node.table and node.name in known:
                return node.name
            return None

        def visit(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Coalesce) and name_of(node.this) and _is_zero(node.expressions):
                return replace(node.this.name)
            name = name_of(node)
            return replace(name) if name else node

        return tree.transform(visit, copy=False)

    def window_column(self, name: str, window: Window, metric: str) -> exp.Expression:
        if name in self.shifts or name in self.windows:
            raise QueryError(f"metric {metric}: a running or trailing window over a comparison or another window")
        use = self.builder.plan.uses[name]
        if use.measure.agg not in WINDOWED_AGGS or use.measure.semi_additive is not None:
            kind = "semi-additive" if use.measure.semi_additive else use.measure.agg
            raise QueryError(
                f"metric {metric}: a running or trailing window needs a sum, count, count_distinct, min or max"
                f" measure; {use.measure.ref} is {kind}"
            )
        variant = f"{name}__w{_index(window, [w for _, w in self.windows.values()])}"
        self.windows[variant] = (name, window)
        return column(variant)

    def shift_column(self, name: str, shift: Shift) -> exp.Expression:
        """The column of `name` moved back by `shift`; a shifted column is shifted again from its source."""
        if name in self.shifts:
            name, inner = self.shifts[name]
            shift = inner.then(shift)
        variant = f"{name}__s{_index(shift, [s for _, s in self.shifts.values()])}"
        self.shifts[variant] = (name, shift)
        return column(variant)

    def window_of(self, metric: Metric) -> Window:
        grain = self.grain
        if metric.to_date is not None and not self.calendar.nests(grain, metric.to_date):
            raise QueryError(f"metric {metric.name}: {grain} periods do not add up to {metric.to_date} periods")
        rows = None
        if metric.window is not None:
            count, unit = metric.window
            (size, kind), (step, step_kind) = STEPS[unit], STEPS[grain]
            if kind != step_kind or (count * size) % step:
                raise QueryError(
                    f"metric {metric.name}: a window of {count} {unit}s is not a whole number of {grain} periods;"
                    f" ask for a finer grain"
                )
            rows = count * size // step
        return Window(rows, metric.to_date)

    def check_targets(self, metric: Metric) -> None:
        """Targets declared per month add up to quarters and years, never down to days or weeks."""
        axis = self.options.axis
        if axis is None or not axis.is_metric_time:
            return
        declared = metric.target_grain
        target = self.model.metrics[metric.denominator]  # type: ignore[index]
        if declared is None and target.kind == "simple":
            entity = self.model.entities[self.model.measure(target.measure).entity]  # type: ignore
            declared = entity.dimensions[entity.time].grain if entity.time else None
        if declared is not None and not self.calendar.nests(declared, self.grain):
            raise QueryError(
                f"metric {metric.name}: the targets of {target.name} are declared per {declared} and do not add"
                f" up to {self.grain} periods; ask for a grain they add up to (a {declared} or coarser)"
            )

    # --- time ranges -----------------------------------------------------------------------------------------

    def display_start(self) -> dt.date | None:
        """The first period shown: the start of the range, moved to the start of its period on the axis."""
        start = self.options.start
        if start is None or not self.axis_is_metric_time():
            return start
        return self.calendar.start_of(start, self.grain)

    def earliest(self) -> dt.date | None:
        """The first day the facts must cover: windows and comparisons look back before the range."""
        first = self.display_start()
        if first is None or not self.axis_is_metric_time():
            return first
        earliest = first
        for _, shift in self.shifts.values():
            earliest = min(earliest, self.shift_date(first, shift))
        base = earliest
        for _, window in self.windows.values():
            if window.rows is None and window.to_date is None:
                return None  # a running total from the very first period
            if window.to_date is not None:
                earliest = min(earliest, self.calendar.start_of(base, window.to_date))
            if window.rows is not None:
                earliest = min(earliest, self.calendar.move(base, 1 - window.rows, self.grain))
        return earliest

    def range_filters(self, scope: object) -> list[exp.Expression]:
        """metric_time between the range's days (inclusive), the lookback of windows and comparisons included."""
        first, last = (self.earliest() if self.active else self.display_start()), self.options.end
        if first is None and last is None:
            return []
        day = scope.dimension(Ref(None, "metric_time", "day", "metric_time"))  # type: ignore[attr-defined]
        filters: list[exp.Expression] = []
        if first is not None:
            filters.append(exp.GTE(this=day, expression=date_literal(first)))
        if last is not None:
            filters.append(exp.LTE(this=day.copy(), expression=date_literal(last)))
        return filters

    def axis_is_metric_time(self) -> bool:
        """Whether the time axis is metric_time (ranges and their lookback apply to metric_time only)."""
        return self.options.axis is not None and self.options.axis.is_metric_time

    # --- SQL of shifts ---------------------------------------------------------------------------------------

    def shift_sql(self, value: exp.Expression, shift: Shift) -> tuple[exp.Expression, list[exp.Expression]]:
        """A period start moved forward by `shift`, so an earlier value lands on the row that compares with it,
        and the conditions for it to land at all.

        The steps move forward innermost first: the outer comparison reads the inner one a step back, which read
        the base series its own step further back. 29 February has no day a year later: at the day grain a value
        moved by a year must move back to the same day, else it would land on 28 February as well.
        """
        conditions: list[exp.Expression] = []
        for count, compare in shift.steps:
            there = self.step_sql(value, count, compare)
            if compare == "year" and self.grain == "day":
                back = add_units(there.copy(), -12 * count, "MONTH")
                conditions.append(exp.EQ(this=back, expression=value.copy()))
            value = there
        return value, conditions

    def step_sql(self, value: exp.Expression, count: int, compare: str) -> exp.Expression:
        """A period start moved forward by `count` periods of the axis, or `count` years."""
        if compare == "period":
            return self.calendar.shift(value, count, self.grain)
        if self.grain == "week":  # the same week a year earlier: 52 weeks, so weekdays line up
            return add_units(value, 364 * count, "DAY")
        return add_units(value, 12 * count, "MONTH")

    def shift_date(self, day: dt.date, shift: Shift) -> dt.date:
        """`day` moved back by `shift` (Python side of `shift_sql`), outermost step first."""
        for count, compare in reversed(shift.steps):
            if compare == "period":
                day = self.calendar.move(day, -count, self.grain)
            elif self.grain == "week":
                day = day - dt.timedelta(days=364 * count)
            else:
                day = self.calendar.move(day, -count, "year")
        return day

    # --- stages ----------------------------------------------------------------------------------------------

    def assemble(self, source: str, ctes: dict[str, exp.Expression]) -> tuple[str, exp.Expression | None]:
        """Add the time stages after `source`; return the last stage's name and the final row condition."""
        from crmetrics.compiler.build import column_alias

        by = self.builder.query.by
        self.names = [column_alias(r) for r in by]
        self.axis = column_alias(self.options.axis)  # type: ignore[arg-type]
        self.others = [n for n in self.names if n != self.axis]
        dense = self.dense()
        if dense:
            ctes["time_bounds"] = spine.bounds(self, source)
            ctes["time_digits"] = spine.digits()
            ctes["time_spine"] = spine.spine(self)
            ctes["time_grid"] = spine.grid(self, source)
        deltas = {}
        for variant, (name, window) in self.windows.items():
            use = self.builder.plan.uses[name]
            if use.measure.agg == "count_distinct":
                cte = f"win_{variant}"
                ctes.update(distinct_deltas(self, use, window, f"{variant}__delta", cte))
                deltas[cte] = f"{variant}__delta"
        stage, columns = source, list(self.builder.plan.uses)
        if dense or deltas:
            ctes["filled"] = self.filled(source, deltas, dense)
            stage, columns = "filled", [*columns, HAS_DATA]
        if self.windows:
            ctes["windowed"] = self.windowed(stage, columns, set(deltas.values()))
            stage, columns = "windowed", [*columns, *self.windows]
        if self.shifts:
            ctes["compared"] = self.compared_stage(stage, columns)
            stage = "compared"
        conditions = []
        if not self.options.fill_gaps:
            conditions.append(exp.EQ(this=column(HAS_DATA), expression=exp.Literal.number(1)))
        shown = self.display_start()
        if shown is not None and self.axis_is_metric_time():
            conditions.append(exp.GTE(this=column(self.axis), expression=date_literal(shown)))
        return stage, exp.and_(*conditions) if conditions else None

    def dense(self) -> bool:
        """Whether every period must have a row: to show gaps, for comparisons (the period before an empty one is
        0, not absent) and for trailing windows, whose ROWS frames count periods. Running sums and distinct
        counts (sums of +1/-1 deltas) are right over the sparse rows."""
        trailing = any(
            w.rows is not None and self.builder.plan.uses[name].measure.agg != "count_distinct"
            for name, w in self.windows.values()
        )
        return self.options.fill_gaps or bool(self.shifts) or trailing

    def filled(self, source: str, deltas: dict[str, str], dense: bool) -> exp.Select:
        uses = self.builder.plan.uses
        delta_columns = list(deltas.values())

        def branch(name: str, own: dict[str, exp.Expression]) -> exp.Select:
            values = [*uses, HAS_DATA, *delta_columns]
            columns = [column(n) for n in self.names]
            # a column NULL in every branch of a sub-union would be typed text on PostgreSQL: deltas are integers
            missing = {
                d: exp.Cast(this=exp.Null(), to=exp.DataType(this=exp.DataType.Type.BIGINT)) for d in delta_columns
            }
            columns += [alias(own[v], v) if v in own else alias(missing.get(v, exp.Null()), v) for v in values]
            return exp.Select(expressions=columns).from_(table(name), copy=False)

        union = branch(source, {**{a: column(a) for a in uses}, HAS_DATA: exp.Literal.number(1)})
        if dense:
            union = exp.union(union, branch("time_grid", {}), distinct=False)
        for cte, delta in deltas.items():
            # typed as the NULLs of the other branches: ClickHouse has no common type for the NULL BIGINT and the
            # unsigned SUM of openings only (a running distinct count), and refuses to add up what it makes of them
            value = cast(column(delta), exp.DataType.Type.BIGINT)
            union = exp.union(union, branch(cte, {delta: value}), distinct=False)
        values = [
            alias(coalesce_zero(exp.Max(this=column(a))) if u.measure.agg in COUNTED else exp.Max(this=column(a)), a)
            for a, u in uses.items()
        ]
        values.append(alias(exp.Max(this=column(HAS_DATA)), HAS_DATA))
        values += [alias(coalesce_zero(exp.Sum(this=column(d))), d) for d in delta_columns]
        filled = exp.Select(expressions=[*(column(n) for n in self.names), *values]).from_(
            exp.Subquery(this=union, alias=exp.TableAlias(this=ident("cells"))), copy=False
        )
        if dense:  # distinct-count closings past the last period are not cells of the result
            inside = exp.Between(this=column(self.axis), low=self._bound("lo"), high=self._bound("hi"))
            known = exp.Or(this=exp.Is(this=column(self.axis), expression=exp.Null()), expression=inside)
            filled.set("where", exp.Where(this=known))
        group_by(filled, (column(n) for n in self.names))
        return filled

    def _bound(self, name: str) -> exp.Expression:
        return exp.Subquery(this=exp.Select(expressions=[column(name)]).from_(table("time_bounds"), copy=False))

    def window_spec(self, window: Window, function: type[exp.Func], value: str, zero: bool = False) -> exp.Expression:
        """`function(value)` over the window: partitioned by the other dimensions (and the to-date period),
        ordered by the axis, which is unique within a partition; `zero`: 0 where the frame holds no value.

        A row of unknown time (NULL axis) sorts first on some databases and last on others; its value is hidden
        from the aggregate, so wherever it sorts it adds nothing to a frame. Its own result is NULL, 0 included:
        a running total or trailing window has no meaning outside the timeline, as a comparison has none there.
        """
        known = exp.Not(this=exp.Is(this=column(self.axis), expression=exp.Null()))
        argument = exp.Case(ifs=[exp.If(this=known.copy(), true=column(value))])
        partition: list[exp.Expression] = [column(n) for n in self.others]
        if window.to_date is not None:
            partition.append(self.calendar.truncate(column(self.axis), window.to_date))
        start = "UNBOUNDED" if window.rows is None else exp.Literal.number(window.rows - 1)
        over = exp.Window(
            this=function(this=argument),
            partition_by=partition or None,
            order=exp.Order(expressions=[exp.Ordered(this=column(self.axis), nulls_first=True)]),
            spec=exp.WindowSpec(kind="ROWS", start=start, start_side="PRECEDING", end="CURRENT ROW"),
        )
        return exp.Case(ifs=[exp.If(this=known, true=coalesce_zero(over) if zero else over)])

    def windowed(self, stage: str, columns: list[str], deltas: set[str]) -> exp.Select:
        select: list[exp.Expression] = [column(n) for n in self.names] + [column(c) for c in columns]
        if HAS_DATA not in columns:  # straight from the aggregates: every row has data
            select.append(alias(exp.Literal.number(1), HAS_DATA))
            columns.append(HAS_DATA)
        for variant, (name, window) in self.windows.items():
            agg = self.builder.plan.uses[name].measure.agg
            if f"{variant}__delta" in deltas:  # the running sum of +1/-1 at openings and closings
                running = Window(None, window.to_date)
                value = self.window_spec(running, exp.Sum, f"{variant}__delta", zero=True)
            elif agg in ADDITIVE:
                value = self.window_spec(window, exp.Sum, name, zero=True)
            else:
                value = self.window_spec(window, exp.Min if agg == "min" else exp.Max, name)
            select.append(alias(value, variant))
        return exp.Select(expressions=select).from_(table(stage), copy=False)

    def compared_stage(self, stage: str, columns: list[str]) -> exp.Select:
        variants = list(self.shifts)
        current = exp.Select(
            expressions=[column(n) for n in self.names]
            + [column(c) for c in columns]
            + [alias(exp.Literal.number(1), CURRENT)]
            # NULL of the source column's type (a bare NULL here would be typed text on PostgreSQL)
            + [alias(exp.Nullif(this=column(src), expression=column(src)), v) for v, (src, _) in self.shifts.items()]
        ).from_(table(stage), copy=False)
        union: exp.Expression = current
        for shift in dict.fromkeys(s for _, s in self.shifts.values()):
            there, landing = self.shift_sql(column(self.axis), shift)
            moved = [alias(there, MOVED) if n == self.axis else column(n) for n in self.names]
            # placeholders get names of their own: ClickHouse would read `src` below as a NULL aliased `src`
            moved += [alias(exp.Null(), f"__none{i}") for i, _ in enumerate([*columns, CURRENT])]
            moved += [
                alias(column(src), v) if s == shift else alias(exp.Null(), f"__none_{v}")
                for v, (src, s) in self.shifts.items()
            ]
            earlier = exp.Select(expressions=moved).from_(table(stage), copy=False)
            known = exp.Not(this=exp.Is(this=column(self.axis), expression=exp.Null()))
            earlier.set("where", exp.Where(this=exp.and_(known, *landing)))
            union = exp.union(union, earlier, distinct=False)
        values = [alias(exp.Max(this=column(c)), c) for c in [*columns, *variants]]
        compared = exp.Select(expressions=[*(column(n) for n in self.names), *values]).from_(
            exp.Subquery(this=union, alias=exp.TableAlias(this=ident("periods"))), copy=False
        )
        group_by(compared, (column(n) for n in self.names))
        compared.set(
            "having", exp.Having(this=exp.EQ(this=exp.Max(this=column(CURRENT)), expression=exp.Literal.number(1)))
        )
        return compared


def _is_zero(values: list[exp.Expression]) -> bool:
    return len(values) == 1 and isinstance(values[0], exp.Literal) and values[0].this == "0"


def _index(item: object, seen: list[object]) -> int:
    """A stable small number per distinct window or shift, for column names."""
    unique = list(dict.fromkeys(seen))
    return unique.index(item) + 1 if item in unique else len(unique) + 1
