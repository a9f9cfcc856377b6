"""Analysis outputs as dimensions: `customer_rfm.segment` in `--by`, `--where`, segments and metric filters.

Every analysis whose method declares per-entity outputs (`entity_outputs` and `output_columns`) becomes a virtual
entity named after the analysis: its source is the method's per-entity SELECT, its key is the base entity's key, its
dimensions are the output columns, and the base entity gets a many-to-one join onto it (base.key = analysis.key).
The compiler's ordinary join paths then do the rest, so "revenue by RFM segment by month" is one ordinary query.

Load happens in two steps. While the model is built, `OutputsBuilder` declares each virtual entity with its columns
(known from the parameters alone), so that segments and metric filters may name them. Once the model is complete,
`attach` builds the per-entity SELECT over it. That SELECT must honour row-level security, but the query context is
only known per query: it is built with the row filters' `:name` placeholders left in place, and the compiler binds
them from each query's context when it reads the entity (`Scope.table`), failing closed when one is missing. The
query's own `--where` and segments filter the rows the analysis outputs are joined to, never the population the
analysis scores: an entity's RFM segment does not change with the question asked about it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod
from crmetrics.dsl.build import ModelBuilder
from crmetrics.dsl.loader import RawProject
from crmetrics.errors import AnalysisError, CrmetricsError, Issue
from crmetrics.model.types import Analysis, Dimension, Entity, Join, SemanticModel
from crmetrics.result import Result

_MARK = "\x00crmetrics-deferred-context\x00"
DIMENSION_TYPES = ("categorical", "time", "number", "boolean")


class DeferredContext(Mapping[str, Any]):
    """A query context that has every variable, each bound to a marker that `restore_placeholders` turns back."""

    def __getitem__(self, name: str) -> str:
        return _MARK + name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:  # `context or {}` must keep it
        return True


def restore_placeholders(tree: exp.Expression) -> exp.Expression:
    """Marker literals left by `DeferredContext` become `:name` placeholders again."""

    def restore(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Literal) and node.is_string and node.this.startswith(_MARK):
            return exp.Placeholder(this=node.this[len(_MARK) :])
        return node

    return tree.transform(restore, copy=False)


class _NoEngine:
    """The engine of the load-time context: per-entity outputs are built, never run, while a project loads."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    def execute(self, sql: str, columns: list[str]) -> Result:
        raise AnalysisError("an analysis method ran a query while building its per-entity outputs")

    def close(self) -> None:
        return None


def outputs_of(method: AnalysisMethod | None) -> bool:
    return method is not None and method.entity_outputs is not None and method.output_columns is not None


class OutputsBuilder(ModelBuilder):
    """The model builder, plus one virtual entity per analysis with per-entity outputs."""

    def __init__(self, raw: RawProject, allow_outside: bool, methods: Mapping[str, AnalysisMethod]) -> None:
        super().__init__(raw, allow_outside)
        self.methods = methods
        self.virtual: set[str] = set()

    def virtual_entities(self, entities: dict[str, Entity], analyses: dict[str, Analysis]) -> dict[str, Entity]:
        """The analyses' output entities, and their base entities with a join onto each."""
        added: dict[str, Entity] = {}
        for analysis in analyses.values():
            method = self.methods.get(analysis.method)
            base = analysis.params.get("entity")
            if not outputs_of(method) or not isinstance(base, str) or base not in entities:
                continue  # unknown methods and entities are reported by check_analyses
            key = entities[base].key
            if key is None:
                continue
            if analysis.name in entities:
                self.issue(
                    "CRM702",
                    f"analysis '{analysis.name}' has the name of an entity, so its outputs cannot be dimensions"
                    f" '{analysis.name}.column': rename one of them",
                    analysis.location,
                    ("analyses", analysis.name),
                )
                continue
            try:
                columns = dict(method.output_columns(analysis.params))  # type: ignore[union-attr,misc]
            except Exception as error:  # a plugin's bug must not stop the load: report it where it is configured
                self.issue("CRM703", _broken(analysis, error), analysis.location, ("analyses", analysis.name))
                continue
            dims = {
                name: Dimension(
                    analysis.name,
                    name,
                    exp.column(name, quoted=True),
                    kind if kind in DIMENSION_TYPES else "categorical",
                    description=f"{name} from the {analysis.method} analysis '{analysis.name}'",
                )
                for name, kind in columns.items()
                if name != key
            }
            added[analysis.name] = Entity(
                analysis.name,
                exp.Table(this=exp.to_identifier(analysis.name, quoted=True)),  # replaced by `attach`
                key,
                None,
                {},
                dims,
                label=analysis.name,
                description=analysis.description,
                location=analysis.location,
            )
            owner = added.get(base, entities[base])
            joins = {**owner.joins, analysis.name: Join(base, analysis.name, key)}
            added[base] = dataclasses.replace(owner, joins=joins)
            self.virtual.add(analysis.name)
        return added


def attach(model: SemanticModel, virtual: set[str], methods: Mapping[str, AnalysisMethod]) -> list[Issue]:
    """Give each virtual entity its source: the method's per-entity SELECT, context placeholders left unbound."""
    issues = []
    for name in sorted(virtual, key=list(model.analyses).index):
        analysis = model.analyses[name]
        method = methods[analysis.method]
        ctx = AnalysisContext(name, dict(analysis.params), model, _NoEngine(model.dialect), context=DeferredContext())
        try:
            _, query, columns = method.entity_outputs(ctx)  # type: ignore[misc]
        except CrmetricsError as error:
            issues.append(
                Issue(error.code, f"analysis '{name}': {error.message}", analysis.location, ("analyses", name))
            )
            continue
        except Exception as error:
            issues.append(Issue("CRM703", _broken(analysis, error), analysis.location, ("analyses", name)))
            continue
        missing = set(model.entities[name].dimensions) - set(columns)
        if missing:
            message = (
                f"analysis '{name}': its per-entity SELECT lacks the declared outputs {', '.join(sorted(missing))}"
            )
            issues.append(Issue("CRM703", message, analysis.location, ("analyses", name)))
            continue
        source = exp.Subquery(this=restore_placeholders(query))
        model.entities[name] = dataclasses.replace(model.entities[name], source=source)
    return issues


def _broken(analysis: Analysis, error: Exception) -> str:
    return f"analysis method '{analysis.method}' failed to declare its outputs: {type(error).__name__}: {error}"
