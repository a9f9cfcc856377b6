"""Reader-facing names for analysis titles, chart axes and legends: declared labels first, else humanised names.

An analysis is configured with references (`customers.region`, `leads.created_at`, `average_order_value`); a report
reader should see "Region", "Created at" or "Average order value", not the identifiers.
"""

from __future__ import annotations

from crmetrics.model.references import RefSyntaxError, parse_ref
from crmetrics.model.types import SemanticModel

__all__ = ["humanized", "join_labels", "metric_label", "ref_label"]

ACRONYMS = {"aov": "AOV", "clv": "CLV", "csat": "CSAT", "nps": "NPS", "rfm": "RFM", "roi": "ROI", "id": "ID"}


def humanized(name: str) -> str:
    """`created_at` → `Created at`, `customers.age_band` → `Age band`, `clv` → `CLV`."""
    base = name.rpartition(".")[2].partition(":")[0]
    words = [ACRONYMS.get(w, w) for w in base.replace("_", " ").split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def metric_label(model: SemanticModel, name: str) -> str:
    """The metric's declared label, else its humanised name."""
    metric = model.metrics.get(name)
    return (metric.label if metric is not None and metric.label else "") or humanized(name)


def ref_label(model: SemanticModel, ref: str) -> str:
    """A dimension reference's declared label (with its grain), a metric's label, else the humanised name."""
    if ref in model.metrics:
        return metric_label(model, ref)
    try:
        parsed = parse_ref(ref)
    except RefSyntaxError:
        return humanized(ref)
    if parsed.is_metric_time:
        return (parsed.grain or "time").capitalize()
    dim = model.dimension(parsed.entity or "", parsed.name)
    label = (dim.label if dim is not None and dim.label else "") or humanized(parsed.name)
    return f"{label} ({parsed.grain})" if parsed.grain else label


def join_labels(labels: list[str]) -> str:
    """`Region`, `Region and Age band`, `Region, Country and City`."""
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"
