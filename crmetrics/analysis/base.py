"""The analysis-method contract: what a method declares, what it is given, and what it returns.

A method builds its work as sqlglot expressions over the semantic model (through `AnalysisContext.frame`) so that it
runs inside the database, honours the query's `where`, segments and row-level security, and returns an
`AnalysisResult` that every report format can render: named tables, headline figures, chart specs and notes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from crmetrics.compiler import render
from crmetrics.compiler.frames import Frame
from crmetrics.dsl.schema import Obj
from crmetrics.engines.base import Engine
from crmetrics.errors import PluginError
from crmetrics.model.types import SemanticModel
from crmetrics.result import Result


@dataclass(frozen=True)
class Figure:
    """A headline number: `value` in `format` (number, integer, currency, percent, score, duration, date)."""

    name: str
    label: str
    value: Any
    format: str = "number"


@dataclass
class AnalysisResult:
    """What an analysis returns; plain data only, so any report format can render it."""

    method: str
    name: str
    title: str
    tables: dict[str, Result] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)  # Vega-Lite specs; data: {"name": table}
    notes: list[str] = field(default_factory=list)


@dataclass
class AnalysisContext:
    """Everything a method may use: its validated parameters, the model, the query's filters and the engine."""

    name: str
    params: dict[str, Any]
    model: SemanticModel
    engine: Engine
    where: str | None = None
    segments: Sequence[str] = ()
    context: Mapping[str, Any] = field(default_factory=dict)

    def frame(self, entity: str) -> Frame:
        """The rows of `entity` with the query's where, segments and row filters applied."""
        return Frame(self.model, entity, self.where, self.segments, self.context)

    def sql(self, tree: exp.Expression) -> str:
        """`tree` rendered for the engine's dialect."""
        return render(tree, self.engine.dialect)

    def run(self, tree: exp.Expression, columns: list[str] | None = None) -> Result:
        """Run a SELECT built by the method; `columns` defaults to the SELECT's own output names."""
        names = columns or [e.alias_or_name for e in tree.expressions]  # type: ignore[attr-defined]
        return self.engine.execute(self.sql(tree), names)


@dataclass(frozen=True)
class AnalysisMethod:
    """An analysis method: a name, a description, a parameter schema and the function that runs it.

    `entity_outputs`, when given, returns a SELECT with one row per entity key (first column, named as the entity's
    key) and output columns (e.g. RFM's `segment`); crmetrics exposes those columns as dimensions of the analysis,
    usable in `--by`, `--where` and segments as `analysis_name.column`.
    """

    name: str
    description: str
    parameters: Obj
    run: Callable[[AnalysisContext], AnalysisResult]
    entity_outputs: Callable[[AnalysisContext], tuple[str, exp.Select, Sequence[str]]] | None = None
    # the names and types (categorical, number, ...) of the `entity_outputs` columns, known from the parameters
    # alone, so that segments and metric filters in the YAML may name them before any SQL is built
    output_columns: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None
    # checks of the parameters against the model (does `entity` exist, ...): (parameter name, message) pairs,
    # reported at load time with the parameter's file:line:column
    check: Callable[[SemanticModel, Mapping[str, Any]], Iterable[tuple[str, str]]] | None = None

    def validate(self) -> None:
        """Called when the method is registered: a broken contract is reported as a plugin problem."""
        if not isinstance(self.parameters, Obj):
            raise PluginError(f"analysis method '{self.name}': parameters must be a crmetrics.dsl.schema.Obj")
        if not callable(self.run):
            raise PluginError(f"analysis method '{self.name}': run must be callable")
        if self.entity_outputs is not None and not callable(self.entity_outputs):
            raise PluginError(f"analysis method '{self.name}': entity_outputs must be callable")
        for name in ("output_columns", "check"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise PluginError(f"analysis method '{self.name}': {name} must be callable")
