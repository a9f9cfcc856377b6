"""The resolved semantic model: small frozen dataclasses, built once by the DSL loader and shared read-only.

Expressions are sqlglot trees parsed at load time; the compiler copies them before changing anything, so one model
can be compiled from many threads at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crmetrics.errors import Location
from crmetrics.model.quality import QualityRules

if TYPE_CHECKING:
    from crmetrics.model.graph import Paths

ADDITIVE = frozenset({"sum", "count"})
COUNTING = frozenset({"count", "count_distinct"})
TIME_KINDS = frozenset({"offset", "change", "growth", "cumulative"})


@dataclass(frozen=True)
class Dimension:
    entity: str
    name: str
    expr: exp.Expression | None  # over the entity's own columns; None for a measure-based dimension
    type: str = "categorical"
    grain: str = "day"
    measure: str | None = None  # "entity.measure" for a measure-based dimension
    label: str = ""
    description: str = ""
    location: Location | None = None
    timezone: str | None = None  # zone that naive timestamps of this column were recorded in
    with_time_zone: bool = False  # the column holds TIMESTAMP WITH TIME ZONE values
    tenure: str | None = None  # "entity.dimension" of the start: periods (at `grain`) since it

    @property
    def ref(self) -> str:
        return f"{self.entity}.{self.name}"

    @property
    def is_time(self) -> bool:
        return self.type == "time"


@dataclass(frozen=True)
class Measure:
    entity: str
    name: str
    agg: str
    expr: exp.Expression | None  # None: COUNT(*)
    percentile: float | None = None
    filter: exp.Expression | None = None  # over dimension references
    label: str = ""
    description: str = ""
    location: Location | None = None
    semi_additive: str | None = None  # "last" or "first": one snapshot per period, not the sum over time

    @property
    def ref(self) -> str:
        return f"{self.entity}.{self.name}"


@dataclass(frozen=True)
class Join:
    source: str
    target: str
    on: str  # column of `source` holding the key of `target`


@dataclass(frozen=True)
class Entity:
    name: str
    source: exp.Expression  # a Table, a Subquery or a table function, not yet aliased
    key: str | None
    time: str | None  # name of the default time dimension
    joins: dict[str, Join] = field(default_factory=dict)
    dimensions: dict[str, Dimension] = field(default_factory=dict)
    measures: dict[str, Measure] = field(default_factory=dict)
    label: str = ""
    description: str = ""
    location: Location | None = None
    quality: QualityRules | None = None  # `quality:` rules for the quality analysis

    @functools.cached_property
    def table_name(self) -> tuple[tuple[str, str, bool], ...] | None:
        """(part, name, quoted) of each part of a plain table source (catalog, db, table); None for other sources."""
        parts = {key: value for key, value in self.source.args.items() if value is not None}
        if type(self.source) is not exp.Table or any(type(value) is not exp.Identifier for value in parts.values()):
            return None
        return tuple((key, value.this, bool(value.args.get("quoted"))) for key, value in parts.items())

    @functools.cached_property
    def source_has_placeholders(self) -> bool:
        """Whether the source holds `:name` placeholders (analysis outputs that honour row filters)."""
        return self.source.find(exp.Placeholder) is not None


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "simple", "ratio", "derived", or a time kind (see TIME_KINDS)
    measure: str | None = None
    filter: exp.Expression | None = None
    numerator: str | None = None
    denominator: str | None = None
    expr: exp.Expression | None = None  # derived: Columns name metrics or measures
    format: str = "number"
    label: str = ""
    description: str = ""
    location: Location | None = None
    base: str | None = None  # time kinds: the metric they are computed from
    compare: str = "period"  # offset/change/growth: "period" (the previous one) or "year" (a year earlier)
    periods: int = 1  # offset/change/growth: how many periods (or years) back
    window: tuple[int, str] | None = None  # cumulative: trailing (count, grain); None = from the start
    to_date: str | None = None  # cumulative: restart at each period of this grain (year to date, ...)
    target_grain: str | None = None  # attainment: the grain the targets are declared at


@dataclass(frozen=True)
class Segment:
    name: str
    entity: str
    where: exp.Expression
    label: str = ""
    description: str = ""
    location: Location | None = None


@dataclass(frozen=True)
class Analysis:
    name: str
    method: str
    params: dict[str, Any]
    description: str = ""
    location: Location | None = None


@dataclass(frozen=True)
class SemanticModel:
    """Everything a project declares, resolved and checked."""

    name: str
    root: str  # folder of the project file; relative paths are resolved against it
    connection: str | None
    dialect: str
    entities: dict[str, Entity]
    metrics: dict[str, Metric]
    segments: dict[str, Segment]
    analyses: dict[str, Analysis]
    row_filters: dict[str, exp.Expression]
    reports: dict[str, Any]
    settings: dict[str, Any]
    files: tuple[str, ...]
    paths: dict[str, Paths]
    description: str = ""

    def dimension(self, entity: str, name: str) -> Dimension | None:
        ent = self.entities.get(entity)
        return ent.dimensions.get(name) if ent else None

    def measure(self, ref: str) -> Measure | None:
        entity, _, name = ref.partition(".")
        ent = self.entities.get(entity)
        return ent.measures.get(name) if ent else None

    def dimension_refs(self) -> list[str]:
        return [d.ref for e in self.entities.values() for d in e.dimensions.values()]

    def measure_refs(self) -> list[str]:
        return [m.ref for e in self.entities.values() for m in e.measures.values()]
