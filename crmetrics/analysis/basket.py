"""Market basket (cross-sell): which items are bought together, as association rules computed in SQL.

Order lines are reduced to distinct (order, item) pairs first, so an item on several lines of one order counts once.
Items below `min_support` are pruned before the self-join (apriori), so the join only sees items that can take part in
a frequent pair; triples extend the frequent pairs by a third item of the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlglot import exp

from crmetrics.analysis.base import AnalysisContext, AnalysisMethod, AnalysisResult, Figure
from crmetrics.analysis.sqlkit import check_entity
from crmetrics.analysis.valuesql import (
    check_dimension,
    col,
    count_if,
    dbl,
    num,
    ordered,
    safe_div,
    select,
    table,
    with_ctes,
)
from crmetrics.compiler.frames import Frame
from crmetrics.dsl.schema import Bool, Field, Num, Obj, Str
from crmetrics.errors import AnalysisError
from crmetrics.model.types import SemanticModel
from crmetrics.result import Result

PARAMETERS = Obj(
    description="Association rules between items bought in the same order.",
    fields={
        "entity": Field(Str(description="The order-line entity (one row per item of an order)."), required=True),
        "order": Field(
            Str(description="Entity whose key identifies the order, or a dimension reference."), required=True
        ),
        "item": Field(
            Str(description="Entity whose key identifies the item (e.g. products), or a dimension."), required=True
        ),
        "min_support": Field(Num(minimum=0, maximum=1, description="Minimum share of orders (default 0.001).")),
        "min_confidence": Field(Num(minimum=0, maximum=1, description="Minimum confidence of a rule (default 0).")),
        "triples": Field(Bool(description="Also find rules {A, B} -> C (default false).")),
        "top_n": Field(Num(integer=True, minimum=1, description="Rules kept per antecedent in top_rules (default 5).")),
    },
)

METRICS = ("orders", "support", "confidence", "lift", "leverage", "conviction")


def check(model: SemanticModel, params: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    """At load time: the lines entity exists; order and item are entities it joins to, or dimensions it reaches."""
    problems = check_entity(model, params, "entity", keyed=False)
    lines = params.get("entity")
    if problems or not isinstance(lines, str):
        return problems
    for key in ("order", "item"):
        ref = params.get(key)
        if not isinstance(ref, str):
            continue
        if "." in ref or ":" in ref:
            problems += check_dimension(model, lines, key, ref)
        elif ref not in model.entities:
            problems.append((key, f"unknown entity '{ref}' (or write a dimension as entity.dimension)"))
        elif ref != lines and ref not in model.paths[lines].reach:
            problems.append((key, f"there is no join path from {lines} to {ref}"))
    return problems


def _reference(frame: Frame, text: str, what: str) -> exp.Expression:
    """An entity name means that entity's key (as the lines hold it); `entity.dim` means a dimension."""
    if "." in text or ":" in text:
        return frame.dimension(text)
    if text not in frame.model.entities:
        raise AnalysisError(f"basket: {what} '{text}' is neither an entity nor a dimension reference")
    return frame.key(text)


def _base_ctes(ctx: AnalysisContext) -> dict[str, exp.Expression]:
    """lines -> distinct (order, item) -> item counts -> frequent items -> their lines."""
    params = ctx.params
    frame = ctx.frame(params["entity"])
    order = _reference(frame, params["order"], "order")
    item = _reference(frame, params["item"], "item")
    lines = frame.select({"o": order, "i": item})
    lines = lines.where(order.copy().is_(exp.null()).not_(), item.copy().is_(exp.null()).not_(), copy=False)
    min_support = num(float(params.get("min_support", 0.001)))
    return {
        "basket_lines": lines.distinct(copy=False),
        "basket_totals": select({"n": exp.Count(this=exp.Distinct(expressions=[col("o")]))}, "basket_lines"),
        "basket_items": select({"i": col("i"), "c": exp.Count(this=exp.Star())}, "basket_lines").group_by(col("i")),
        "basket_frequent": select({"i": col("i"), "c": col("c")}, "basket_items")
        .join(table("basket_totals"), join_type="cross")
        .where(safe_div(col("c"), col("n")) >= min_support),
        "basket_flines": select({"o": col("o", "l"), "i": col("i", "l")}, exp.alias_(table("basket_lines"), "l")).join(
            exp.alias_(table("basket_frequent"), "f"), on=col("i", "l").eq(col("i", "f"))
        ),
        "basket_pairs": select(
            {"i1": col("i", "a"), "i2": col("i", "b"), "c": exp.Count(this=exp.Star())},
            exp.alias_(table("basket_flines"), "a"),
        )
        .join(
            exp.alias_(table("basket_flines"), "b"),
            on=exp.and_(col("o", "a").eq(col("o", "b")), col("i", "a") < col("i", "b")),
        )
        .group_by(col("i", "a"), col("i", "b")),
        "basket_fpairs": select({"i1": col("i1"), "i2": col("i2"), "c": col("c")}, "basket_pairs")
        .join(table("basket_totals"), join_type="cross")
        .where(safe_div(col("c"), col("n")) >= min_support),
    }


def _measures(
    c: exp.Expression, ca: exp.Expression, cc: exp.Expression, n: exp.Expression
) -> dict[str, exp.Expression]:
    """support, confidence, lift, leverage and conviction from the counts of the rule, antecedent and consequent."""
    confidence = safe_div(c, ca)
    consequent_support = safe_div(cc.copy(), n.copy())
    return {
        "orders": c.copy(),
        "support": safe_div(c.copy(), n.copy()),
        "confidence": confidence,
        "lift": safe_div(
            exp.Mul(this=dbl(c.copy()), expression=n.copy()), exp.Mul(this=dbl(ca.copy()), expression=cc.copy())
        ),
        "leverage": exp.Sub(
            this=safe_div(c.copy(), n.copy()),
            expression=exp.Mul(this=safe_div(ca.copy(), n.copy()), expression=consequent_support),
        ),
        # infinite when the rule always holds (confidence 1): NULL rather than a division by zero
        "conviction": safe_div(
            exp.Sub(this=num(1), expression=safe_div(cc.copy(), n.copy())),
            exp.Sub(this=num(1), expression=safe_div(c.copy(), ca.copy())),
        ),
    }


def _rules_query(ctx: AnalysisContext, ctes: dict[str, exp.Expression], triples: bool) -> exp.Select:
    """Rules both ways (or the three rules of each triple), filtered by confidence, ranked per antecedent."""
    if triples:
        ants = ["a1", "a2"]
        ctes = {**ctes, **_triple_ctes(float(ctx.params.get("min_support", 0.001)))}
        parts = [("i1", "i2", "i3"), ("i1", "i3", "i2"), ("i2", "i3", "i1")]
        arms = [
            select({"a1": col(x), "a2": col(y), "cons": col(z), "c": col("c")}, "basket_triples") for x, y, z in parts
        ]
        antecedents = table("basket_fpairs")
        on = exp.and_(col("i1", "p").eq(col("a1", "r")), col("i2", "p").eq(col("a2", "r")))
    else:
        ants = ["a1"]
        arms = [
            select({"a1": col(x), "cons": col(y), "c": col("c")}, "basket_fpairs")
            for x, y in (("i1", "i2"), ("i2", "i1"))
        ]
        antecedents, on = table("basket_items"), col("i", "p").eq(col("a1", "r"))
    union: exp.Expression = arms[0]
    for arm in arms[1:]:
        union = exp.union(union, arm, distinct=False)
    names = ["antecedent_1", "antecedent_2"] if triples else ["antecedent"]
    measures = _measures(col("c", "r"), col("c", "p"), col("c", "q"), col("n", "t"))
    body = (
        select(
            {
                **{nm: col(a, "r") for nm, a in zip(names, ants, strict=True)},
                "consequent": col("cons", "r"),
                **measures,
            },
            exp.alias_(exp.Subquery(this=union), "r"),
        )
        .join(exp.alias_(antecedents, "p"), on=on)
        .join(exp.alias_(table("basket_items"), "q"), on=col("i", "q").eq(col("cons", "r")))
        .join(exp.alias_(table("basket_totals"), "t"), join_type="cross")
    )
    min_confidence = float(ctx.params.get("min_confidence", 0.0))
    ranked = select(
        {
            **{c: col(c) for c in [*names, "consequent", *METRICS]},
            "rank": exp.Window(
                this=exp.Rank(),
                partition_by=[col(n) for n in names],
                order=exp.Order(expressions=ordered(["lift", "confidence"], ["lift", "confidence"])),
            ),
        },
        "basket_rules",
    ).where(col("confidence") >= num(min_confidence))
    query = select({c: col(c) for c in [*names, "consequent", *METRICS, "rank"]}, "basket_ranked")
    query = query.order_by(
        *ordered(["lift", "confidence", "support", *names, "consequent"], ["lift", "confidence", "support"])
    )
    return with_ctes(query, {**ctes, "basket_rules": body, "basket_ranked": ranked})


def _triple_ctes(min_support: float) -> dict[str, exp.Expression]:
    """Frequent pairs of an order extended by a greater third item of the same order; pruned by support."""
    pair_lines = (
        select({"o": col("o", "x"), "i1": col("i", "x"), "i2": col("i", "y")}, exp.alias_(table("basket_flines"), "x"))
        .join(
            exp.alias_(table("basket_flines"), "y"),
            on=exp.and_(col("o", "x").eq(col("o", "y")), col("i", "x") < col("i", "y")),
        )
        .join(
            exp.alias_(table("basket_fpairs"), "p"),
            on=exp.and_(col("i1", "p").eq(col("i", "x")), col("i2", "p").eq(col("i", "y"))),
        )
    )
    counts = (
        select(
            {"i1": col("i1", "a"), "i2": col("i2", "a"), "i3": col("i", "z"), "c": exp.Count(this=exp.Star())},
            exp.alias_(table("basket_plines"), "a"),
        )
        .join(
            exp.alias_(table("basket_flines"), "z"),
            on=exp.and_(col("o", "z").eq(col("o", "a")), col("i", "z") > col("i2", "a")),
        )
        .group_by(col("i1", "a"), col("i2", "a"), col("i", "z"))
    )
    frequent = (
        select({"i1": col("i1"), "i2": col("i2"), "i3": col("i3"), "c": col("c")}, "basket_tcounts")
        .join(table("basket_totals"), join_type="cross")
        .where(safe_div(col("c"), col("n")) >= num(min_support))
    )
    return {"basket_plines": pair_lines, "basket_tcounts": counts, "basket_triples": frequent}


def _items_query(ctes: Mapping[str, exp.Expression]) -> exp.Select:
    query = select(
        {"item": col("i", "s"), "orders": col("c", "s"), "support": safe_div(col("c", "s"), col("n", "t"))},
        exp.alias_(table("basket_items"), "s"),
    ).join(exp.alias_(table("basket_totals"), "t"), join_type="cross")
    query = query.order_by(*ordered(["orders"], ["orders"]), *ordered(["item"]))
    return with_ctes(query, {k: ctes[k] for k in ("basket_lines", "basket_totals", "basket_items")})


def _summary_query(ctx: AnalysisContext) -> exp.Select:
    frame = ctx.frame(ctx.params["entity"])
    order = _reference(frame, ctx.params["order"], "order")
    item = _reference(frame, ctx.params["item"], "item")
    raw = frame.select({"o": order, "i": item})
    known = exp.and_(col("o").is_(exp.null()).not_(), col("i").is_(exp.null()).not_())
    return select(
        {
            "lines": exp.Count(this=exp.Star()),
            "lines_without_item": count_if(exp.and_(col("o").is_(exp.null()).not_(), col("i").is_(exp.null()))),
            "lines_without_order": count_if(col("o").is_(exp.null())),
            "orders": exp.Count(this=exp.Distinct(expressions=[exp.Case(ifs=[exp.If(this=known, true=col("o"))])])),
            "items": exp.Count(
                this=exp.Distinct(expressions=[exp.Case(ifs=[exp.If(this=known.copy(), true=col("i"))])])
            ),
        },
        exp.alias_(exp.Subquery(this=raw), "b"),
    )


def run(ctx: AnalysisContext) -> AnalysisResult:
    """Pair rules (and triple rules on request), top rules per antecedent, item supports and a summary."""
    triples = bool(ctx.params.get("triples", False))
    top_n = int(ctx.params.get("top_n", 5))
    ctes = _base_ctes(ctx)
    tables: dict[str, Result] = {}
    summary = ctx.run(_summary_query(ctx))
    tables["items"] = ctx.run(_items_query(ctes))
    rules = ctx.run(_rules_query(ctx, ctes, False))
    tables["rules"] = rules
    tables["top_rules"] = _top(rules, top_n)
    if triples:
        tables["triple_rules"] = ctx.run(_rules_query(ctx, ctes, True))
    stats = dict(zip(summary.columns, summary.rows[0], strict=True))
    stats.update({"rules": len(rules), "triple_rules": len(tables["triple_rules"]) if triples else None})
    tables["summary"] = Result(list(stats), [tuple(stats.values())])
    result = AnalysisResult("basket", ctx.name, "Market basket", tables)
    result.figures = [
        Figure("orders", "Orders", stats["orders"], "integer"),
        Figure("rules", "Pair rules", stats["rules"], "integer"),
    ]
    if rules.rows:
        best = rules.rows[0]
        result.figures.append(Figure("top_lift", "Highest lift", best[rules.columns.index("lift")]))
    if stats["orders"] and stats["orders"] < 100:
        result.notes.append(f"only {stats['orders']} orders: supports and lifts are unreliable on so few baskets")
    result.charts.append(_chart())
    return result


def _top(rules: Result, top_n: int) -> Result:
    """Rules whose rank within their antecedent is at most top_n (ties share a rank, so a tie is kept whole)."""
    rank = rules.columns.index("rank")
    width = rank - len(METRICS) - 1  # the antecedent columns
    rows = [r for r in rules.rows if r[rank] <= top_n]
    rows.sort(key=lambda r: (*[(v is None, v) for v in r[:width]], r[rank], (r[width] is None, r[width])))
    return Result(list(rules.columns), rows)


def _chart() -> dict[str, Any]:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "Association rules: support and lift",
        "data": {"name": "rules"},
        "mark": {"type": "point", "tooltip": True},
        "encoding": {
            "x": {"field": "support", "type": "quantitative"},
            "y": {"field": "lift", "type": "quantitative"},
            "size": {"field": "confidence", "type": "quantitative"},
        },
    }


METHOD = AnalysisMethod(
    "basket", "Cross-sell: association rules of items bought together.", PARAMETERS, run, check=check
)
