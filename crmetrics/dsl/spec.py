"""The shape of a crmetrics project file, written once in the schema language of `schema.py`.

Validation and the shipped JSON Schema (`crmetrics/schema/project-v1.json`) are both derived from `PROJECT`.
"""

from __future__ import annotations

from crmetrics.dsl.quality import QUALITY
from crmetrics.dsl.schema import NAME_PATTERN, AnyValue, Bool, Field, ListOf, MapOf, Num, Obj, Str
from crmetrics.model.references import GRAINS

SCHEMA_VERSION = 1
AGGREGATIONS = ("sum", "count", "count_distinct", "avg", "min", "max", "median", "percentile")
DIMENSION_TYPES = ("categorical", "time", "number", "boolean")
FORMATS = ("number", "integer", "currency", "percent", "score", "duration")
SEMI_ADDITIVE = ("last", "first")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_text = Str(description="Free text shown in listings and reports.")
_name = Str(pattern=NAME_PATTERN)

DIMENSION = Obj(
    description="A column (the dimension's own name), an expression over the entity's columns, "
    "or a measure aggregated at this entity's grain.",
    fields={
        "expr": Field(Str(description="SQL expression over this entity's columns.")),
        "column": Field(Str(description="The source column, when it differs from the dimension's name.")),
        "measure": Field(
            Str(description="entity.measure aggregated per row of this entity (type: time: a min or max of a time).")
        ),
        "type": Field(Str(enum=DIMENSION_TYPES, description="Defaults to categorical.")),
        "grain": Field(Str(enum=GRAINS, description="Default grain of a time dimension (day); the unit of a tenure.")),
        "timezone": Field(Str(description="Time zone in which this column's naive timestamps were recorded.")),
        "with_time_zone": Field(Bool(description="The column holds TIMESTAMP WITH TIME ZONE values.")),
        "tenure": Field(
            Str(description="entity.dimension of a start time: periods (at `grain`) from it to this entity's time.")
        ),
        "label": Field(_text),
        "description": Field(_text),
    },
    empty_ok=True,
)

MEASURE = Obj(
    description="An aggregation of this entity's rows.",
    fields={
        "agg": Field(Str(enum=AGGREGATIONS), required=True),
        "expr": Field(Str(description="SQL expression over this entity's columns; COUNT counts rows without it.")),
        "percentile": Field(Num(minimum=0, maximum=1, description="For agg: percentile, e.g. 0.9.")),
        "filter": Field(Str(description="Boolean expression over dimension references.")),
        "semi_additive": Field(
            Str(enum=SEMI_ADDITIVE, description="A snapshot: the last (or first) snapshot in each period, not a sum.")
        ),
        "label": Field(_text),
        "description": Field(_text),
    },
)

JOIN = Obj(
    description="A many-to-one join onto the named entity's key.",
    fields={"on": Field(Str(description="The column of this entity that holds the other entity's key."))},
    shorthand="on",
)

ENTITY = Obj(
    description="A logical CRM table.",
    fields={
        "table": Field(Str(description="A table name, optionally schema-qualified.")),
        "sql": Field(Str(description="A SELECT statement.")),
        "file": Field(Str(description="A CSV or Parquet file (DuckDB), relative to the project file.")),
        "key": Field(Str(description="The column that identifies a row.")),
        "time": Field(Str(description="The default time dimension of this entity's measures (metric_time).")),
        "joins": Field(MapOf(JOIN)),
        "dimensions": Field(MapOf(DIMENSION)),
        "measures": Field(MapOf(MEASURE)),
        "quality": Field(QUALITY),
        "label": Field(_text),
        "description": Field(_text),
    },
    one_of=("table", "sql", "file"),
)

METRIC = Obj(
    description="A KPI: a measure, a ratio of two metrics, or an expression over metrics and measures.",
    fields={
        "measure": Field(Str(description="entity.measure")),
        "ratio": Field(ListOf(item=Str(), min_items=2, max_items=2, description="[numerator, denominator] metrics.")),
        "expr": Field(Str(description="Arithmetic over metric and measure names.")),
        "offset": Field(Str(description="A metric's value in an earlier period (see `compare`, `periods`).")),
        "change": Field(Str(description="A metric's current value minus its value in an earlier period.")),
        "growth": Field(Str(description="(current - earlier) / earlier; NULL when earlier is 0 or absent.")),
        "cumulative": Field(Str(description="A running total of a metric (see `window`, `to_date`).")),
        "attainment": Field(Str(description="A metric divided by its `target` metric.")),
        "compare": Field(Str(enum=("period", "year"), description="The previous period (default) or a year earlier.")),
        "periods": Field(Num(integer=True, minimum=1, description="How many periods (or years) back; default 1.")),
        "window": Field(Str(description="A trailing window, e.g. '30 days', '3 months'; default: from the start.")),
        "to_date": Field(Str(enum=GRAINS, description="Restart the running total each period: year, quarter, ...")),
        "target": Field(Str(description="attainment: the metric holding the targets.")),
        "target_grain": Field(
            Str(enum=GRAINS, description="attainment: the grain targets are declared at (default: their time's grain).")
        ),
        "filter": Field(Str(description="Boolean expression over dimension references.")),
        "format": Field(Str(enum=FORMATS)),
        "label": Field(_text),
        "description": Field(_text),
    },
    one_of=("measure", "ratio", "expr", "offset", "change", "growth", "cumulative", "attainment"),
)

SEGMENT = Obj(
    description="A named subset of an entity's rows.",
    fields={
        "entity": Field(_name, required=True),
        "where": Field(Str(description="Boolean expression over dimension references."), required=True),
        "label": Field(_text),
        "description": Field(_text),
    },
)

ANALYSIS = Obj(
    description="A configured analysis method; the method declares the other keys.",
    fields={"method": Field(_name, required=True), "description": Field(_text), "label": Field(_text)},
    extra=AnyValue(),
)

SECURITY = Obj(
    fields={
        "row_filters": Field(
            MapOf(Str(description="Boolean expression; :name placeholders are bound from the query context."))
        )
    }
)

SETTINGS = Obj(
    description="Execution settings.",
    fields={
        "row_limit": Field(Num(integer=True, minimum=1, description="Rows printed by the CLI (default 1000).")),
        "threads": Field(Num(integer=True, minimum=1, description="DuckDB threads.")),
        "memory_limit": Field(Str(description="DuckDB memory limit, e.g. 4GB.")),
        "strict_plugins": Field(Bool(description="Fail when a plugin cannot be loaded.")),
        "query_timeout": Field(
            Num(minimum=0, description="Seconds a query may run before it is cancelled on the database (0: no limit).")
        ),
        "timezone": Field(Str(description="IANA time zone that time-zone-aware timestamps are converted to.")),
        "week_start": Field(Str(enum=WEEKDAYS, description="First day of the week grain (default monday, ISO).")),
        "fiscal_year_start": Field(
            Num(integer=True, minimum=1, maximum=12, description="Month the fiscal year starts in (default 1).")
        ),
    },
)

PROJECT = Obj(
    description="A crmetrics project.",
    fields={
        "version": Field(Num(integer=True, minimum=SCHEMA_VERSION, maximum=SCHEMA_VERSION), required=True),
        "name": Field(_name, required=True),
        "description": Field(_text),
        "connection": Field(Str(description="Database URL; default: in-memory DuckDB. ${ENV} allowed.")),
        "dialect": Field(Str(description="SQL dialect of `sql:` entities (default: the connection's).")),
        "include": Field(ListOf(item=Str(), single=True, description="Files or globs merged into this project.")),
        "settings": Field(SETTINGS),
        "entities": Field(MapOf(ENTITY)),
        "metrics": Field(MapOf(METRIC)),
        "segments": Field(MapOf(SEGMENT)),
        "analyses": Field(MapOf(ANALYSIS)),
        "security": Field(SECURITY),
        "reports": Field(MapOf(AnyValue())),
    },
)

INCLUDED_FILE = Obj(
    description="A file named by `include`: it may add entities, metrics, segments, analyses and reports.",
    fields={
        "version": Field(PROJECT.fields["version"].spec),  # optional in an included file
        **{k: PROJECT.fields[k] for k in ("entities", "metrics", "segments", "analyses", "reports")},
    },
)


def json_schema() -> dict:
    """The JSON Schema of a project file, for editors (YAML language server) and other tools."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"crmetrics-project-v{SCHEMA_VERSION}.json",
        "title": "crmetrics project",
        **PROJECT.json(),
    }
