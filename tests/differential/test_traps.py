"""sqlglot's known traps, run on every engine and checked against numbers computed in Python from the rows.

Each test goes through the real path: the compiler (or a sqlglot tree, as analysis methods build them), `render`
with the per-dialect rewrites, the read-only guard, the engine and the type normalisation.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from sqlglot import exp

import crmetrics
from crmetrics.compiler import render
from tests.differential import traps
from tests.differential.compare import assert_rows

GRAINS = ("day", "week", "month", "quarter", "year")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> crmetrics.Project:
    folder = tmp_path_factory.mktemp("traps")
    (folder / "crmetrics.yml").write_text(traps.PROJECT)
    return crmetrics.load(folder / "crmetrics.yml")


def _by_group(key: Any) -> dict[Any, list[tuple]]:
    groups: dict[Any, list[tuple]] = defaultdict(list)
    for row in traps.EVENTS:
        groups[key(row)].append(row)
    return groups


def _sorted_nulls_last(keys: list[Any]) -> list[Any]:
    return sorted(keys, key=lambda k: (k is None, k if k is not None else 0))


def _run(project: crmetrics.Project, engine: Any, **question: Any) -> crmetrics.Result:
    return project.query(connection=engine, **question)


def test_aggregates_by_group_with_nulls_ties_and_unicode(project: crmetrics.Project, engine: Any) -> None:
    metrics = ["events", "total", "avg_amount", "median_amount", "p90_amount", "p25_qty", "amount_per_qty"]
    if engine.dialect == "sqlite":  # no exact percentile aggregate: refused at compile time, naming the dialect
        with pytest.raises(crmetrics.CompileError, match="sqlite"):
            _run(project, engine, metrics=metrics, by=["trap_events.grp"])
        return
    result = _run(project, engine, metrics=metrics, by=["trap_events.grp"])
    groups = _by_group(lambda r: r[1])
    expected = []
    for key in _sorted_nulls_last(list(groups)):
        rows = groups[key]
        amounts = [float(r[4]) for r in rows if r[4] is not None]
        qtys = [r[5] for r in rows if r[5] is not None]
        total = float(sum((r[4] for r in rows if r[4] is not None), Decimal(0)))
        qty_total = sum(qtys)
        expected.append(
            (
                key,
                len(rows),
                total,
                sum(amounts) / len(amounts) if amounts else None,
                traps.percentile_cont(amounts, 0.5),
                traps.percentile_cont(amounts, 0.9),
                traps.percentile_cont([float(q) for q in qtys], 0.25),
                total / qty_total if qty_total else None,
            )
        )
    assert_rows(result.rows, expected)


def test_sums_averages_and_ratios_on_every_engine(project: crmetrics.Project, engine: Any) -> None:
    """The same as above without percentiles, so SQLite is held to the same numbers."""
    result = _run(project, engine, metrics=["events", "total", "avg_amount", "amount_per_qty"], by=["trap_events.grp"])
    groups = _by_group(lambda r: r[1])
    expected = []
    for key in _sorted_nulls_last(list(groups)):
        rows = groups[key]
        amounts = [float(r[4]) for r in rows if r[4] is not None]
        total = float(sum((r[4] for r in rows if r[4] is not None), Decimal(0)))
        qty_total = sum(r[5] for r in rows if r[5] is not None)
        mean = sum(amounts) / len(amounts) if amounts else None
        expected.append((key, len(rows), total, mean, total / qty_total if qty_total else None))
    assert_rows(result.rows, expected)


@pytest.mark.parametrize("grain", GRAINS)
def test_time_truncation_at_every_grain(project: crmetrics.Project, engine: Any, grain: str) -> None:
    result = _run(project, engine, metrics=["events", "total"], by=[f"trap_events.happened_at:{grain}"])
    groups = _by_group(lambda r: traps.truncate(r[3], grain) if r[3] is not None else None)
    expected = [
        (key, len(groups[key]), float(sum((r[4] for r in groups[key] if r[4] is not None), Decimal(0))))
        for key in _sorted_nulls_last(list(groups))
    ]
    assert_rows(result.rows, expected)
    assert all(isinstance(row[0], dt.date) and not isinstance(row[0], dt.datetime) for row in result.rows[:-1])


@pytest.mark.parametrize(
    "dimension",
    ["dow", "isodow", "dow_part", "dow_extract", "days_between", "months_between", "quarters_between", "years_between"],
)
def test_day_of_week_and_date_differences(project: crmetrics.Project, engine: Any, dimension: str) -> None:
    result = _run(project, engine, metrics=["events"], by=[f"trap_events.{dimension}"])
    groups = _by_group(lambda r: traps.dimension_value(r, dimension))
    expected = [(key, len(groups[key])) for key in _sorted_nulls_last(list(groups))]
    assert_rows(result.rows, expected)


def test_null_padded_merge_of_two_facts(project: crmetrics.Project, engine: Any) -> None:
    """The merge CTE pads each fact's branch with bare NULLs; every engine must type and group them alike.

    Orphans (events of 'Zürich', which trap_groups lacks) count under the NULL group, together with NULL keys.
    """
    result = _run(project, engine, metrics=["events", "notes"], by=["trap_groups.grp"])
    known = set(traps.GROUPS)
    events = _by_group(lambda r: r[1] if r[1] in known else None)
    notes: dict[Any, int] = defaultdict(int)
    for _, grp in traps.NOTES:
        notes[grp if grp in known else None] += 1
    keys = _sorted_nulls_last(list(set(events) | set(notes)))
    expected = [(k, len(events.get(k, [])), notes.get(k, 0)) for k in keys]
    assert_rows(result.rows, expected)


def test_descending_order_puts_nulls_last(project: crmetrics.Project, engine: Any) -> None:
    result = _run(project, engine, metrics=["avg_amount"], by=["trap_events.label"], order_by=["-avg_amount"])
    values = [row[1] for row in result.rows]
    present = [v for v in values if v is not None]
    assert present == sorted(present, reverse=True)
    assert values[len(present) :] == [None] * (len(values) - len(present))


def test_min_of_a_timestamp_is_a_naive_datetime(project: crmetrics.Project, engine: Any) -> None:
    result = _run(project, engine, metrics=["first_at"])
    assert result.rows == [(min(r[3] for r in traps.EVENTS if r[3] is not None),)]
    assert type(result.rows[0][0]) is dt.datetime


# --- trees as analysis methods build them ----------------------------------------------------------------------------


def _events() -> exp.Table:
    return exp.Table(this=exp.to_identifier("trap_events", quoted=True))


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _execute(engine: Any, tree: exp.Expression, columns: list[str]) -> list[tuple]:
    return engine.execute(render(tree, engine.dialect), columns).rows


def test_lag_past_the_first_row_is_null(engine: Any) -> None:
    """ClickHouse's LAG gives 0 for a non-Nullable value; the rewrite makes it NULL like everywhere else."""
    order = exp.Order(expressions=[exp.Ordered(this=_col("event_id"))])
    prev_qty = exp.Window(this=exp.Lag(this=exp.func("COALESCE", _col("qty"), exp.Literal.number(0))), order=order)
    prev_one = exp.Window(this=exp.Lag(this=exp.Literal.number(1)), order=order.copy())
    tree = (
        exp.select(_col("event_id"), exp.alias_(prev_qty, "prev_qty"), exp.alias_(prev_one, "prev_one"))
        .from_(_events())
        .order_by(_col("event_id"))
    )
    qty = [r[5] or 0 for r in traps.EVENTS]
    expected = [(r[0], qty[i - 1] if i else None, 1 if i else None) for i, r in enumerate(traps.EVENTS)]
    assert_rows(_execute(engine, tree, ["event_id", "prev_qty", "prev_one"]), expected)


def test_group_by_all(engine: Any) -> None:
    tree = exp.select(_col("grp"), exp.alias_(exp.Count(this=exp.Star()), "n")).from_(_events())
    tree.set("group", exp.Group(all=True))
    tree = tree.order_by(exp.Ordered(this=_col("grp"), nulls_first=False))
    groups = _by_group(lambda r: r[1])
    expected = [(k, len(groups[k])) for k in _sorted_nulls_last(list(groups))]
    assert_rows(_execute(engine, tree, ["grp", "n"]), expected)


def test_string_aggregation_in_order(engine: Any) -> None:
    ordered = exp.Order(this=_col("label"), expressions=[exp.Ordered(this=_col("label"), nulls_first=False)])
    tree = (
        exp.select(_col("grp"), exp.alias_(exp.GroupConcat(this=ordered, separator=exp.Literal.string(",")), "labels"))
        .from_(_events())
        .group_by(_col("grp"))
        .order_by(exp.Ordered(this=_col("grp"), nulls_first=False))
    )
    if engine.dialect == "sqlite":  # ORDER BY inside GROUP_CONCAT needs SQLite 3.44: refused at compile time
        with pytest.raises(crmetrics.CompileError, match="sqlite"):
            render(tree, engine.dialect)
        return
    groups = _by_group(lambda r: r[1])
    expected = [
        (k, ",".join(sorted(r[6] for r in groups[k] if r[6] is not None)) or None)
        for k in _sorted_nulls_last(list(groups))
    ]
    assert_rows(_execute(engine, tree, ["grp", "labels"]), expected)
