"""RFM: recency, frequency and monetary value per entity, quantile (or threshold) scores and named segments.

Scores: score = 1 + floor(bins * (r - 1) / n), r the 1-based minimum rank (SQL RANK()) of the value in ascending
order and n the number of scored entities, so tied values always get the same score. Recency ranks by the date of
the last event ascending, so the most recent entities score highest. Entities without events are not scored.
Everything is one chain of CTEs that runs inside the database; see docs/analyses-customer.md for the exact rules.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.sqlkit import (
    alias,
    case,
    check_events,
    check_measure,
    col,
    date_literal,
    floor_div,
    ident,
    measure_aggregate,
    num,
    ordered,
    parse_date,
    running_total,
    safe_div,
    select,
    tbl,
    text,
    union_all,
    visible_keys,
    window,
    with_ctes,
)
from crmetrics.dsl.schema import NAME_PATTERN, Field, ListOf, Num, Obj, Str
from crmetrics.engines import normalise
from crmetrics.model.types import SemanticModel
from crmetrics.result import Result, arrow_rows

LETTERS = ("r", "f", "m")
OUTPUTS = ("recency_days", "frequency", "monetary", "r_score", "f_score", "m_score", "segment")

# The widely used RFM segment map for 5 bins, on the R score and FM = (F + M) / 2; the first rule that matches wins.
DEFAULT_SEGMENTS: dict[str, dict[str, list[float]]] = {
    "Champions": {"r": [4, 5], "fm": [4, 5]},
    "Loyal Customers": {"r": [3, 5], "fm": [3, 5]},
    "Potential Loyalist": {"r": [4, 5], "fm": [2, 5]},
    "New Customers": {"r": [5, 5]},
    "Promising": {"r": [4, 4]},
    "Need Attention": {"r": [3, 3], "fm": [2, 5]},
    "About To Sleep": {"r": [3, 3]},
    "Can't Lose Them": {"r": [1, 1], "fm": [4, 5]},
    "At Risk": {"r": [1, 2], "fm": [3, 5]},
    "Hibernating": {"r": [1, 2], "fm": [2, 5]},
    "Lost": {"r": [1, 2]},
}

_RANGE = ListOf(item=Num(), min_items=2, max_items=2, description="[lowest, highest] score, both included.")
RULE = Obj(
    description="Score ranges an entity must fall in; fm is the mean of the F and M scores. Omitted: any score.",
    fields={key: Field(_RANGE) for key in ("r", "f", "m", "fm")},
    empty_ok=True,
)
PARAMETERS = Obj(
    fields={
        "entity": Field(Str(pattern=NAME_PATTERN, description="The entity scored, e.g. customers."), required=True),
        "events": Field(Str(pattern=NAME_PATTERN, description="Its events, e.g. orders (joined to entity)."), True),
        "monetary": Field(Str(description="A measure of the events, e.g. orders.revenue."), required=True),
        "bins": Field(Num(integer=True, minimum=2, maximum=100, description="Scores run from 1 to bins (5).")),
        "as_of": Field(Str(description="Date recency is measured to (default: the day after the latest event).")),
        "thresholds": Field(
            Obj(
                description="Explicit cut-offs per letter instead of quantiles (bins - 1 ascending numbers).",
                fields={letter: Field(ListOf(item=Num(), min_items=1)) for letter in LETTERS},
            )
        ),
        "segments": Field(
            Obj(description="Segment name -> score ranges, first match wins (default: the standard map).", extra=RULE)
        ),
    }
)


def _bins(params: Mapping[str, Any]) -> int:
    return int(params.get("bins", 5))


def segment_map(params: Mapping[str, Any]) -> dict[str, Mapping[str, Sequence[float]]]:
    """The segment rules in effect: the YAML's `segments`, else the default map."""
    rules = params.get("segments")
    return {name: dict(rule or {}) for name, rule in rules.items()} if rules else DEFAULT_SEGMENTS


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """Entities, measure, date, thresholds and segment ranges make sense together."""
    problems = check_events(model, params) + check_measure(model, params, "monetary", "events")
    entity = model.entities.get(params.get("entity", ""))
    if entity is not None and entity.key in OUTPUTS:
        problems.append(("entity", f"the key column '{entity.key}' clashes with an RFM output column"))
    if "as_of" in params and parse_date(params["as_of"]) is None:
        problems.append(("as_of", f"'{params['as_of']}' is not a date (write YYYY-MM-DD)"))
    bins = _bins(params)
    for letter, cuts in (params.get("thresholds") or {}).items():
        if not isinstance(cuts, list) or not all(isinstance(c, int | float) for c in cuts):
            continue
        if len(cuts) != bins - 1 or any(a >= b for a, b in itertools.pairwise(cuts)):
            problems.append(("thresholds", f"{letter}: give {bins - 1} strictly ascending numbers (bins - 1)"))
    if "segments" not in params and bins != 5:
        problems.append(("bins", "the default segment map is for 5 bins: give a `segments` map for other bins"))
    for name, rule in (params.get("segments") or {}).items():
        for key, bounds in (rule or {}).items():
            if isinstance(bounds, list) and len(bounds) == 2 and not 1 <= bounds[0] <= bounds[1] <= bins:
                problems.append(("segments", f"segment '{name}': {key} range must lie within 1..{bins}, low first"))
    return problems


def output_columns(params: Mapping[str, Any]) -> dict[str, str]:
    """Per-entity outputs usable as dimensions: `customer_rfm.segment`, `customer_rfm.r_score`, ..."""
    return {name: "categorical" if name == "segment" else "number" for name in OUTPUTS}


# --- SQL ---------------------------------------------------------------------------------------------------------


def _quantile_score(rank: exp.Expression, bins: int, n: exp.Expression) -> exp.Expression:
    """1 + floor(bins * (rank - 1) / n), `rank` the minimum rank: ties share it, hence the score."""
    step = exp.Mul(this=num(bins), expression=exp.Paren(this=exp.Sub(this=rank, expression=num(1))))
    return exp.Add(this=num(1), expression=floor_div(step, n))


def _threshold_score(value: exp.Expression, cuts: Sequence[float], higher_is_better: bool) -> exp.Expression:
    """1 + the number of cut-offs reached (recency: 1 + the number of cut-offs not exceeded)."""
    score: exp.Expression = num(1)
    for cut in cuts:
        reached = (
            exp.GTE(this=value.copy(), expression=num(cut))
            if higher_is_better
            else exp.LTE(this=value.copy(), expression=num(cut))
        )
        score = exp.Add(this=score, expression=case([(reached, num(1))], num(0)))
    return score


# the value each quantile score ranks by (recency: the last event's date ascending, so the most recent rank last)
RANKED = {"r": "last_day", "f": "frequency", "m": "monetary"}


def _score(params: Mapping[str, Any], letter: str, value: exp.Expression, joined: bool) -> exp.Expression:
    """The score of `letter`: thresholds on `value`, else quantiles of the rank by `RANKED[letter]`, from RANK() or,
    `joined`, from the `{letter}_rank` column that `_rank_ctes` joins in (M ranks NULL first, so a NULL, which
    joins nothing, ranks 1; the other values are never NULL)."""
    cuts = (params.get("thresholds") or {}).get(letter)
    if cuts:
        return _threshold_score(value, cuts, higher_is_better=letter != "r")
    if joined:
        rank: exp.Expression = col(f"{letter}_rank")
        rank = exp.func("COALESCE", rank, num(1)) if letter == "m" else rank
        return _quantile_score(rank, _bins(params), col("n", "population"))
    rank = window(exp.Anonymous(this="RANK"), [ordered(col(RANKED[letter]), nulls_first=letter == "m")])
    return _quantile_score(rank, _bins(params), window(exp.Count(this=exp.Star())))


def _rank_ctes(params: Mapping[str, Any]) -> dict[str, exp.Expression]:
    """Per quantile-scored letter, `{letter}_ranks`: each distinct value with its minimum rank, 1 + the number of
    entities ranked before it, as RANK() has it, from a GROUP BY and a running total over the distinct values
    instead of a sort of every entity (DuckDB: about a sixth less work for a million entities); and `population`,
    the number of scored entities, for a cross join rather than a COUNT(*) OVER () that holds every row."""
    ctes: dict[str, exp.Expression] = {"population": select({"n": exp.Count(this=exp.Star())}, "measured")}
    for letter, value in RANKED.items():
        if (params.get("thresholds") or {}).get(letter):
            continue
        counts = {"v": col(value), "c": exp.Count(this=exp.Star())}
        ctes[f"{letter}_counts"] = select(counts, "measured").group_by(col(value), copy=False)
        before = exp.Sub(
            this=running_total(col("c"), ordered(col("v"), nulls_first=letter == "m")), expression=col("c")
        )
        ranks = {f"{letter}_value": col("v"), f"{letter}_rank": exp.Add(this=num(1), expression=before)}
        ctes[f"{letter}_ranks"] = select(ranks, f"{letter}_counts")
    return ctes


def _within(value: exp.Expression, low: float, high: float) -> exp.Expression:
    return exp.and_(exp.GTE(this=value, expression=num(low)), exp.LTE(this=value.copy(), expression=num(high)))


def _segment_case(params: Mapping[str, Any]) -> exp.Expression:
    ifs = []
    for name, rule in segment_map(params).items():
        conditions = []
        for key, (low, high) in rule.items():
            if key == "fm":  # (f + m) / 2 in [low, high], in integers
                total = exp.Add(this=col("f_score"), expression=col("m_score"))
                conditions.append(_within(exp.Paren(this=total), 2 * low, 2 * high))
            else:
                conditions.append(_within(col(f"{key}_score"), low, high))
        ifs.append((exp.and_(*conditions) if conditions else exp.true(), text(name)))
    return case(ifs)


def _chain(ctx: AnalysisContext, joined_ranks: bool = False) -> dict[str, exp.Expression]:
    """CTEs: the event rows, one row per entity, its recency, its scores, and its segment.

    `joined_ranks`: quantile ranks from `_rank_ctes` rather than RANK() (the same numbers; `combined_query`).
    """
    params = ctx.params
    frame = ctx.frame(params["events"])
    key = frame.key(params["entity"])  # the foreign key: events are aggregated before any join to the entity
    day = frame.time()
    events = frame.select({"k": key, "d": day, "v": frame.measure_value(params["monetary"])})
    keep = [key.copy().is_(exp.null()).not_(), exp.Paren(this=day.copy()).is_(exp.null()).not_()]
    as_of = parse_date(params["as_of"]) if "as_of" in params else None
    if as_of is not None:  # events on or after as_of are not yet known on that day
        keep.append(exp.LT(this=day.copy(), expression=date_literal(as_of)))
    events = events.where(*keep, copy=False)
    per_key = select(
        {
            "k": col("k"),
            "last_day": exp.Max(this=col("d")),
            "frequency": exp.Count(this=exp.Star()),
            "monetary": measure_aggregate(ctx.model, params["monetary"], col("v")),
        },
        "events",
    ).group_by(col("k"), copy=False)
    # only entities that exist and that the caller may see are scored: an inner join on one row per entity, after
    # the aggregation (ten times fewer rows than a join per event)
    per_entity = select({c: col(c, "per_key") for c in ("k", "last_day", "frequency", "monetary")}, "per_key")
    on = exp.EQ(this=col("k", "visible"), expression=col("k", "per_key"))
    per_entity = per_entity.join(tbl("visible"), on=on, join_type="inner", copy=False)
    as_of_sql = (
        date_literal(as_of)
        if as_of is not None
        else exp.cast(
            exp.DateAdd(this=window(exp.Max(this=col("last_day"))), expression=num(1), unit=exp.Var(this="DAY")),
            exp.DataType.Type.DATE,
        )
    )
    recency = exp.DateDiff(this=as_of_sql.copy(), expression=col("last_day"), unit=exp.Var(this="DAY"))
    measured = select(
        {
            "k": col("k"),
            "last_day": col("last_day"),
            "as_of": as_of_sql,
            "recency_days": recency,
            "frequency": col("frequency"),
            "monetary": col("monetary"),
        },
        "per_entity",
    )
    scored = select(
        {
            "k": col("k"),
            "as_of": col("as_of"),
            "recency_days": col("recency_days"),
            "frequency": col("frequency"),
            "monetary": col("monetary"),
            "r_score": _score(params, "r", col("recency_days"), joined_ranks),
            "f_score": _score(params, "f", col("frequency"), joined_ranks),
            "m_score": _score(params, "m", col("monetary"), joined_ranks),
        },
        "measured",
    )
    ranks = _rank_ctes(params) if joined_ranks else {}
    if ranks:
        scored = scored.join(tbl("population"), join_type="cross", copy=False)
    for letter, value in RANKED.items():
        if f"{letter}_ranks" in ranks:  # letters scored by thresholds have no ranks
            on = exp.EQ(this=col(f"{letter}_value", f"{letter}_ranks"), expression=col(value, "measured"))
            scored = scored.join(tbl(f"{letter}_ranks"), on=on, join_type="left", copy=False)
    columns = {name: col(name) for name in ("k", "as_of", *OUTPUTS[:-1])}
    segmented = select({**columns, "segment": _segment_case(params)}, "scored")
    return {
        "events": events,
        "per_key": per_key,
        "visible": visible_keys(ctx, params["entity"]),
        "per_entity": per_entity,
        "measured": measured,
        **ranks,
        "scored": scored,
        "segmented": segmented,
    }


def _key_name(ctx: AnalysisContext) -> str:
    return ctx.model.entities[ctx.params["entity"]].key or ""


def scores_query(ctx: AnalysisContext, order: bool = True) -> exp.Select:
    """One row per scored entity: its key under its own name, R, F, M, the three scores and the segment."""
    columns = {_key_name(ctx): col("k"), **{name: col(name) for name in OUTPUTS}}
    query = with_ctes(select(columns, "segmented"), _chain(ctx))
    return query.order_by(ordered(col("k")), copy=False) if order else query


SEGMENT_COLUMNS = ["segment", "entities", "share", "monetary", "monetary_share", "mean_r", "mean_f", "mean_m"]
TOTALS = ["total_entities", "total_monetary", "as_of"]


def _segment_ctes(ctx: AnalysisContext) -> dict[str, exp.Expression]:
    """CTEs over `segmented`: the map's segments, the totals, the groups, and `rows`, one per segment (see below)."""
    names = list(segment_map(ctx.params))
    listed = union_all([exp.select(alias(text(n), "segment"), alias(num(i), "position")) for i, n in enumerate(names)])
    ctes: dict[str, exp.Expression] = {}
    ctes["listed"] = exp.select("*").from_(exp.Subquery(this=listed, alias=exp.TableAlias(this=exp.to_identifier("l"))))
    totals = {
        "n": exp.Count(this=exp.Star()),
        "total": exp.Sum(this=col("monetary")),
        "as_of": exp.Max(this=col("as_of")),
    }
    ctes["totals"] = select(totals, "segmented")
    per_segment = {
        "entities": exp.Count(this=exp.Star()),
        "monetary": exp.Sum(this=col("monetary")),
        "mean_r": exp.Avg(this=col("r_score")),
        "mean_f": exp.Avg(this=col("f_score")),
        "mean_m": exp.Avg(this=col("m_score")),
    }
    ctes["grouped"] = select({"segment": col("segment"), **per_segment}, "segmented").group_by(
        col("segment"), copy=False
    )

    def row(segment: exp.Expression, position: exp.Expression, source: str) -> dict[str, exp.Expression]:
        entities = exp.func("COALESCE", col("entities", source), num(0))
        monetary = exp.func("COALESCE", col("monetary", source), num(0))
        return {
            "segment": segment,
            "entities": entities,
            "share": safe_div(entities.copy(), col("n", "totals")),
            "monetary": monetary,
            "monetary_share": safe_div(monetary.copy(), col("total", "totals")),
            "mean_r": col("mean_r", source),
            "mean_f": col("mean_f", source),
            "mean_m": col("mean_m", source),
            "position": position,
            "total_entities": col("n", "totals"),
            "total_monetary": col("total", "totals"),
            "as_of": col("as_of", "totals"),
        }

    on = exp.EQ(this=col("segment", "grouped"), expression=col("segment", "listed"))
    known = select(row(col("segment", "listed"), col("position", "listed"), "grouped"), "listed")
    known = known.join(tbl("grouped"), on=on, join_type="left", copy=False).join(tbl("totals"), join_type="cross")
    unmatched = select(row(exp.null(), num(len(names)), "grouped"), "grouped").join(tbl("totals"), join_type="cross")
    unmatched = unmatched.where(col("segment", "grouped").is_(exp.null()), copy=False)
    ctes["rows"] = union_all([known, unmatched])
    return ctes


def segments_query(ctx: AnalysisContext) -> exp.Select:
    """One row per segment of the map, in map order (empty ones too), then unmatched entities if any.

    The totals (`TOTALS`: entities, monetary, as_of) ride along on every row, so that the headline figures need no
    third pass over the events; `run` splits them off the table.
    """
    query = with_ctes(
        select({c: col(c) for c in SEGMENT_COLUMNS + TOTALS}, "rows"), {**_chain(ctx), **_segment_ctes(ctx)}
    )
    return query.order_by(ordered(col("position")), copy=False)


# the columns of `combined_query`: which part a row belongs to, a scores row, and the segments rows packed in one
SCORE_PART = ["k", *OUTPUTS]
PACKED = "segment_rows"


def combined_query(ctx: AnalysisContext) -> exp.Select:
    """The scores and the segments in one statement, so the events are read and scored once (`scores_query` and
    `segments_query` each do it): `segmented` is materialised, and both tables are read from it.

    Rows: part 0, one per scored entity in key order, in the `SCORE_PART` columns; then part 1, one row whose
    `PACKED` column holds the segments rows (`SEGMENT_COLUMNS` + `TOTALS`) as a list of structs in map order.
    Packed, they add one mostly NULL column to the million-row sort instead of a dozen. DuckDB only (see `run`).
    """
    fields = [exp.PropertyEQ(this=ident(c), expression=col(c)) for c in SEGMENT_COLUMNS + TOTALS]
    packed = exp.ArrayAgg(this=exp.Order(this=exp.Struct(expressions=fields), expressions=[ordered(col("position"))]))
    scores = select({"part": num(0), **{c: col(c) for c in SCORE_PART}, PACKED: exp.null()}, "segmented")
    segments = select({"part": num(1), **{c: exp.null() for c in SCORE_PART}, PACKED: packed}, "rows")
    both = exp.Subquery(this=union_all([scores, segments]), alias=exp.TableAlias(this=ident("both")))
    query = select({c: col(c) for c in ("part", *SCORE_PART, PACKED)}, both)
    for name, cte in {**_chain(ctx, joined_ranks=True), **_segment_ctes(ctx)}.items():
        materialized = name in ("measured", "segmented") or None  # each is read several times
        query = query.with_(ident(name), as_=cte, materialized=materialized, copy=False)
    return query.order_by(ordered(col("part")), ordered(col("k")), copy=False)


def _two_passes(ctx: AnalysisContext) -> tuple[Result, Result]:
    """The scores table, and the segments with the `TOTALS` columns: two statements, for any database."""
    return ctx.run(scores_query(ctx)), ctx.run(segments_query(ctx))


def _one_pass(ctx: AnalysisContext) -> tuple[Result, Result]:
    """What `_two_passes` returns, from one run of `combined_query` (DuckDB)."""
    # the DuckDB engine fetches Arrow once pyarrow is imported, and the scores table keeps it, making Python rows
    # only when asked: with one row per entity that beats a million tuples (~1 s) by far; the import costs ~0.2 s
    with contextlib.suppress(ImportError):
        importlib.import_module("pyarrow")
    both = ctx.run(combined_query(ctx))
    n = len(both) - 1  # the last row is part 1
    scores = both.subset([_key_name(ctx), *OUTPUTS], list(range(1, 1 + len(SCORE_PART))), 0, n)
    packed = both.subset([PACKED], [1 + len(SCORE_PART)], n)
    return scores, Result(SEGMENT_COLUMNS + TOTALS, _unpack(packed), both.sql)


def _unpack(packed: Result) -> list[tuple]:
    """The rows packed in `packed` (one value: a list of structs), in the Python types the engine gives a query's
    own columns (an Arrow table is normalised as Arrow, driver rows as rows: both as `segments_query` would be)."""
    if packed.has_arrow:
        structs = packed.to_arrow().column(0).combine_chunks().flatten()
        table = importlib.import_module("pyarrow").Table.from_struct_array(structs)
        return arrow_rows(normalise.arrow_table(table, table.column_names))
    return normalise.rows([tuple(item.values()) for item in packed.rows[0][0]])


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Scores per entity, the segment table, headline figures and a bar chart of the segments."""
    scores, both = _one_pass(ctx) if ctx.engine.dialect == "duckdb" else _two_passes(ctx)
    width = len(SEGMENT_COLUMNS)
    segments = Result(SEGMENT_COLUMNS, [row[:width] for row in both.rows], both.sql)
    entities, monetary, as_of = both.rows[0][width:]  # the map has at least one segment, so one row at least
    result = AnalysisResult("rfm", ctx.name, f"RFM analysis of {ctx.params['entity']}")
    result.tables = {"scores": scores, "segments": segments}
    result.figures = [
        Figure("entities", f"Scored {ctx.params['entity']}", entities, "integer"),
        Figure("monetary", "Monetary value", monetary, "currency"),
        Figure("as_of", "Recency measured to", as_of, "date"),
    ]
    result.charts = [
        {
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": f"{ctx.params['entity'].capitalize()} per RFM segment",
            "data": {"name": "segments"},
            "mark": "bar",
            "encoding": {
                "y": {"field": "segment", "type": "nominal", "sort": None},
                "x": {"field": "entities", "type": "quantitative"},
                "tooltip": [{"field": "monetary_share", "type": "quantitative", "format": ".1%"}],
            },
        }
    ]
    result.notes = [
        f"Scores run from 1 to {_bins(ctx.params)}; tied values share a score. Entities without "
        f"{ctx.params['events']} are not scored."
    ]
    return result


def entity_outputs(ctx: AnalysisContext) -> tuple[str, exp.Select, Sequence[str]]:
    """The scores table as a per-entity SELECT, exposed as dimensions `analysis_name.segment` etc."""
    return ctx.params["entity"], scores_query(ctx, order=False), list(OUTPUTS)


METHOD = AnalysisMethod(
    name="rfm",
    description="Recency, frequency and monetary scores per entity, with named segments.",
    parameters=PARAMETERS,
    run=run,
    entity_outputs=entity_outputs,
    output_columns=output_columns,
    check=check,
)
