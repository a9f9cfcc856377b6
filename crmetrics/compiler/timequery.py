"""The time options of a question: a date range, gap filling, a comparison, and the time axis they act on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from crmetrics.compiler.periods import Calendar
from crmetrics.compiler.ranges import check_order, current_date, parse_date, resolve_range
from crmetrics.errors import QueryError
from crmetrics.model.references import Ref
from crmetrics.model.types import SemanticModel

COMPARISONS = ("period", "year")
COMPARE_SUFFIXES = ("previous", "change", "growth")


@dataclass(frozen=True)
class TimeOptions:
    """Resolved time options; `start` and `end` are inclusive days of metric_time."""

    start: dt.date | None = None
    end: dt.date | None = None
    fill_gaps: bool = False
    compare: str | None = None
    axis: Ref | None = None  # the one time reference of `by` that windows, comparisons and gap filling follow
    grain: str | None = None  # the axis's grain


def compare_columns(metrics: Sequence[str], compare: object) -> list[str]:
    """The extra result columns of `compare`: metric:previous, metric:change, metric:growth for each metric."""
    if not compare:
        return []
    return [f"{m}:{suffix}" for m in metrics for suffix in COMPARE_SUFFIXES]


def time_axis(model: SemanticModel, by: Sequence[Ref]) -> tuple[Ref | None, str | None]:
    """The time reference of `by` (metric_time when several) and its grain; (None, None) without one."""
    times = [r for r in by if r.is_metric_time or (model.dimension(r.entity, r.name) or _NO_TIME).is_time]
    if not times:
        return None, None
    metric_times = [r for r in times if r.is_metric_time]
    chosen = metric_times if metric_times else times
    if len(chosen) > 1:
        return None, None
    ref = chosen[0]
    if ref.grain:
        return ref, ref.grain
    return ref, "day" if ref.is_metric_time else model.dimension(ref.entity, ref.name).grain  # type: ignore


class _NoTime:
    is_time = False


_NO_TIME = _NoTime()


def time_options(
    model: SemanticModel,
    by: Sequence[Ref],
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    time_range: str | None = None,
    today: str | dt.date | None = None,
    fill_gaps: bool = False,
    compare: str | None = None,
) -> TimeOptions:
    """Check and resolve the time options of a question."""
    calendar = Calendar.from_settings(model.settings)
    first, last = parse_date(start, "start"), parse_date(end, "end")
    if time_range is not None and str(time_range).strip():
        if first is not None or last is not None:
            raise QueryError("give either a time range or start/end dates, not both")
        day = parse_date(today, "today") or current_date(calendar)
        first, last = resolve_range(str(time_range), day, calendar)
    check_order(first, last)
    if compare is not None and compare not in COMPARISONS:
        raise QueryError(f"compare must be one of {', '.join(COMPARISONS)}, got {compare!r}")
    if not isinstance(fill_gaps, bool):
        raise QueryError(f"fill_gaps must be true or false, got {fill_gaps!r}")
    axis, grain = time_axis(model, by)
    if (fill_gaps or compare) and axis is None:
        wanted = "gap filling" if fill_gaps else "compare"
        raise QueryError(f"{wanted} needs one time dimension in by (for example metric_time:month)")
    return TimeOptions(first, last, fill_gaps, compare, axis, grain)
