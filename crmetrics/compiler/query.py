"""A question asked of the model, checked against it: which metrics, by what, filtered how."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from crmetrics.compiler.timequery import TimeOptions, compare_columns, time_options
from crmetrics.errors import QueryError, ReferenceNotFound, UnsafeExpressionError
from crmetrics.model.expressions import column_refs, parse_expression
from crmetrics.model.references import Ref, RefSyntaxError, parse_ref
from crmetrics.model.types import SemanticModel


@dataclass(frozen=True)
class OrderKey:
    name: str  # a metric name or a reference's text, as asked for
    descending: bool = False


@dataclass(frozen=True)
class Query:
    """A validated question; every name in it exists in the model."""

    metrics: tuple[str, ...]
    by: tuple[Ref, ...] = ()
    where: exp.Expression | None = None
    segments: tuple[str, ...] = ()
    order_by: tuple[OrderKey, ...] = ()
    limit: int | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    time: TimeOptions = field(default_factory=TimeOptions)

    @property
    def columns(self) -> list[str]:
        return [r.text for r in self.by] + list(self.metrics) + compare_columns(self.metrics, self.time.compare)


def _names(value: str | Iterable[str] | None, what: str = "name") -> list[str]:
    """A name or a list of names; anything else (numbers, None inside a list, a dict) is a QueryError."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else None
    if names is None or not all(isinstance(name, str) for name in names):
        raise QueryError(f"{what} must be a string or a list of strings, got {value!r}")
    return names


def check_dimension(model: SemanticModel, ref: Ref) -> None:
    """Raise ReferenceNotFound/QueryError unless `ref` names a declared dimension (at a valid grain)."""
    if ref.is_metric_time:
        return
    if ref.entity not in model.entities:
        raise ReferenceNotFound("entity", ref.entity or "", model.entities)
    dim = model.dimension(ref.entity, ref.name)
    if dim is None:
        raise ReferenceNotFound("dimension", f"{ref.entity}.{ref.name}", model.dimension_refs())
    if ref.grain and not dim.is_time:
        raise QueryError(f"'{ref.text}': {dim.ref} is not a time dimension, so it has no grain")


def parse_filter(model: SemanticModel, text: str | None) -> exp.Expression | None:
    """Parse a `where` given at query time; it may name declared dimensions and metric_time only."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    tree = parse_expression(text, model.dialect)
    for column in column_refs(tree):
        if not column.table and column.name == "metric_time":
            continue
        if not column.table:
            raise UnsafeExpressionError(
                f"'{column.sql()}' in --where must be written as entity.dimension{_entity_hint(model, column.name)}"
            )
        check_dimension(model, Ref(column.table, column.name, None, f"{column.table}.{column.name}"))
    return tree


def _entity_hint(model: SemanticModel, name: str) -> str:
    """For a dimension written without its entity, the references it may mean."""
    if "." in name:
        return ""
    refs = [ref for ref in model.dimension_refs() if ref.split(".", 1)[1] == name]
    return f" (declared: {', '.join(refs[:4])})" if refs else ""


def build_query(
    model: SemanticModel,
    metrics: str | Sequence[str],
    by: str | Sequence[str] | None = None,
    where: str | None = None,
    segments: str | Sequence[str] | None = None,
    order_by: str | Sequence[str] | None = None,
    limit: int | None = None,
    context: Mapping[str, Any] | None = None,
    **time: Any,
) -> Query:
    """Check a question against the model and return it as a `Query`.

    Keyword arguments of time intelligence (see `timequery.time_options`): start, end, time_range, today,
    fill_gaps, compare.
    """
    if context is not None and not isinstance(context, Mapping):
        raise QueryError(f"context must be a mapping of names to values, got {type(context).__name__}")
    if where is not None and not isinstance(where, str):
        raise QueryError(f"where must be a string, got {type(where).__name__}")
    names = _names(metrics, "metrics")
    if not names:
        raise QueryError("ask for at least one metric")
    for name in names:
        if name not in model.metrics:
            raise ReferenceNotFound("metric", name, model.metrics)
    refs = []
    for text in _names(by, "by"):
        try:
            ref = parse_ref(text)
        except RefSyntaxError as error:
            raise QueryError(f"{error.message}{_entity_hint(model, text.split(':')[0])}") from None
        check_dimension(model, ref)
        refs.append(ref)
    columns = {r.text for r in refs} | set(names)
    if len(columns) != len(refs) + len(names):
        raise QueryError("a metric or dimension is asked for twice")
    columns |= set(compare_columns(names, time.get("compare")))
    for segment in _names(segments, "segments"):
        if segment not in model.segments:
            raise ReferenceNotFound("segment", segment, model.segments)
    ordering = []
    for key in _names(order_by, "order_by"):
        name = key[1:] if key.startswith("-") else key
        if name not in columns:
            raise ReferenceNotFound("order_by column", name, columns)
        ordering.append(OrderKey(name, key.startswith("-")))
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise QueryError(f"limit must be a non-negative integer, got {limit!r}")
    return Query(
        tuple(names),
        tuple(refs),
        parse_filter(model, where),
        tuple(_names(segments)),
        tuple(ordering),
        limit,
        dict(context or {}),
        time_options(model, tuple(refs), **time),
    )
