"""Check a project against its database: every entity's source, key, join columns, dimensions and measures exist.

`crmetrics validate` runs this when the project (or `--connection`) names a database. Each entity is probed with
one `SELECT <every column it uses> FROM <source> LIMIT 0`, which costs nothing on any engine; only when that fails
is each column probed on its own, so the problem is reported at the dimension or measure that names the missing
column, with its file:line:column.

An entity that other entities join to must hold each key once: joins are many-to-one, so a key on two rows counts
every fact joined to it twice. For those entities alone, one GROUP BY over the key looks for such keys.
"""

from __future__ import annotations

from sqlglot import exp

from crmetrics.compiler import render
from crmetrics.compiler.nodes import alias, column, limit
from crmetrics.compiler.scope import qualify
from crmetrics.engines.base import Engine
from crmetrics.errors import CrmetricsError, Issue, Location
from crmetrics.model.expressions import column_refs
from crmetrics.model.types import Entity, SemanticModel

CODE = "CRM540"
DUPLICATE_KEYS = "CRM541"


def probe_database(model: SemanticModel, engine: Engine) -> list[Issue]:
    """Every problem the database reports for the project's entities, at the YAML that causes it."""
    issues: list[Issue] = []
    joined = {join.target for entity in model.entities.values() for join in entity.joins.values()}
    for entity in model.entities.values():
        if entity.name in model.analyses:  # an analysis's outputs: built from entities probed here already
            continue
        problems = _probe_entity(entity, engine)
        # a source with context placeholders reads no rows here (they become NULL): nothing to count
        if not problems and entity.name in joined and entity.key and not entity.source_has_placeholders:
            problems = _duplicate_keys(entity, engine, model.row_filters.get(entity.name))
        issues += problems
    return issues


def _duplicate_keys(entity: Entity, engine: Engine, row_filter: exp.Expression | None) -> list[Issue]:
    """A key held by more than one row of an entity that facts are joined to: how many, and the smallest.

    Under a row filter (`customers.tenant_id = :tenant_id`) a key need only be unique among the rows one caller
    sees: the join carries the filter (docs/security.md), so the key is grouped with the filter's columns."""
    key = column(entity.key, entity.name)  # type: ignore[arg-type]
    scope = [column(c.name, entity.name) for c in column_refs(row_filter)] if row_filter is not None else []
    keys = _select(entity, [key, *scope])
    keys.set("limit", None)
    keys.set("group", exp.Group(expressions=[key.copy(), *(c.copy() for c in scope)]))
    keys.set("having", exp.Having(this=exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))))
    found = exp.Select(expressions=[alias(exp.Count(this=exp.Star()), "keys"), alias(exp.Min(this=column("c0")), "e")])
    found.set("from_", exp.From(this=exp.Subquery(this=keys, alias=exp.TableAlias(this=exp.to_identifier("d")))))
    try:
        [(count, example)] = engine.execute(render(found, engine.dialect), ["keys", "e"]).rows
    except CrmetricsError:  # the columns were probed already; an engine that cannot run this says nothing new
        return []
    if not count:
        return []
    message = (
        f"key '{entity.key}' of {entity.name} is not unique: {count} value{'s are' if count > 1 else ' is'} held by "
        f"more than one row (e.g. {example!r}), and every fact joined to {entity.name} is counted once per row; "
        f"keep one row per key in the source (e.g. a `sql:` source that keeps the row with ROW_NUMBER() OVER "
        f"(PARTITION BY {entity.key} ORDER BY ...) = 1)"
    )
    return [Issue(DUPLICATE_KEYS, message, entity.location, ("entities", entity.name))]


def _uses(entity: Entity) -> list[tuple[str, exp.Expression, Location | None]]:
    """(what, expression, where it is written) for everything the entity reads from its source."""
    uses: list[tuple[str, exp.Expression, Location | None]] = []
    if entity.key:
        uses.append((f"key '{entity.key}' of {entity.name}", column(entity.key, entity.name), entity.location))
    for join in entity.joins.values():
        uses.append((f"join column '{join.on}' of {entity.name}", column(join.on, entity.name), entity.location))
    for dim in entity.dimensions.values():
        if dim.expr is not None:
            uses.append((f"dimension {dim.ref}", qualify(dim.expr, entity.name), dim.location))
    for measure in entity.measures.values():
        if measure.expr is not None:
            uses.append((f"measure {measure.ref}", qualify(measure.expr, entity.name), measure.location))
    return uses


def _select(entity: Entity, values: list[exp.Expression]) -> exp.Select:
    source = entity.source.copy()
    for placeholder in list(source.find_all(exp.Placeholder)):  # context variables: any value will do for LIMIT 0
        placeholder.replace(exp.Null())
    name = exp.TableAlias(this=exp.to_identifier(entity.name, quoted=True))
    if isinstance(source, exp.Table):
        source.set("alias", name)
    else:
        source = exp.Subquery(this=source.this, alias=name)
    select = exp.Select(expressions=[alias(v.copy(), f"c{i}") for i, v in enumerate(values or [exp.Literal.number(1)])])
    select.set("from_", exp.From(this=source))
    limit(select, 0)
    return select


def _run(engine: Engine, select: exp.Select) -> str | None:
    """The database's complaint about `select`, or None when it runs."""
    try:
        engine.execute(render(select, engine.dialect), [e.alias for e in select.expressions])
    except CrmetricsError as error:
        message = str(error.message).splitlines()[0]
        return message.split("could not run the query: ", 1)[-1]
    return None


def _probe_entity(entity: Entity, engine: Engine) -> list[Issue]:
    uses = _uses(entity)
    if _run(engine, _select(entity, [u[1] for u in uses])) is None:
        return []
    source_error = _run(engine, _select(entity, []))
    if source_error is not None:
        return [
            Issue(
                CODE,
                f"entity {entity.name}: its source cannot be read: {source_error}",
                entity.location,
                ("entities", entity.name),
            )
        ]
    issues = []
    for what, value, location in uses:
        error = _run(engine, _select(entity, [value]))
        if error is not None:
            issues.append(Issue(CODE, f"{what}: {error}", location, ("entities", entity.name)))
    return issues
