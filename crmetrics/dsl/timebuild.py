"""The time parts of a project: calendar settings, tenure dimensions and time metrics (offset, change, growth,
cumulative, attainment), checked with file:line:column issues like the rest of the model."""

from __future__ import annotations

import re
import zoneinfo
from typing import TYPE_CHECKING, Any

from crmetrics.errors import Location, did_you_mean
from crmetrics.model.types import Metric, SemanticModel

if TYPE_CHECKING:
    from crmetrics.dsl.build import ModelBuilder

TIME_METRIC_KEYS = ("offset", "change", "growth", "cumulative", "attainment")
_WINDOW = re.compile(r"^\s*(?P<n>\d+)\s+(?P<grain>fiscal[ _]quarter|fiscal[ _]year|day|week|month|quarter|year)s?\s*$")


def _loc(raw: Any, key: str) -> Location | None:
    return raw.value_loc(key) if hasattr(raw, "value_loc") else None


def parse_window(text: str) -> tuple[int, str] | None:
    """'30 days' -> (30, 'day'); None when the text is not a count and a grain."""
    match = _WINDOW.match(text.lower()) if isinstance(text, str) else None
    if not match or int(match.group("n")) < 1:
        return None
    return int(match.group("n")), match.group("grain").replace(" ", "_")


def check_settings(builder: ModelBuilder) -> None:
    """The project time zone must be a known IANA zone, and so must every column's `timezone`."""
    settings = builder.data.get("settings")
    zone = settings.get("timezone") if isinstance(settings, dict) else None
    if isinstance(zone, str) and not _known_zone(zone):
        builder.issue("CRM136", f"unknown time zone '{zone}'", _loc(settings, "timezone"), ("settings", "timezone"))


def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_dimensions(builder: ModelBuilder, model: SemanticModel) -> None:
    """Tenure dimensions name a reachable time dimension and live on an entity with a `time`; zones exist."""
    for entity in model.entities.values():
        raw_dims = (builder.data["entities"].get(entity.name) or {}).get("dimensions") or {}  # analysis outputs: none
        for dim in entity.dimensions.values():
            raw = raw_dims.get(dim.name) if isinstance(raw_dims, dict) else None
            path = ("entities", entity.name, "dimensions", dim.name)
            if dim.timezone is not None and not _known_zone(dim.timezone):
                builder.issue("CRM136", f"unknown time zone '{dim.timezone}'", _loc(raw, "timezone"), path)
            if dim.tenure is None:
                continue
            start_entity, _, start_name = dim.tenure.partition(".")
            start = model.dimension(start_entity, start_name)
            if entity.time is None:
                builder.issue("CRM137", f"tenure '{dim.ref}' needs `time` on {entity.name}", _loc(raw, "tenure"), path)
            elif start is None:
                builder.issue(
                    "CRM137",
                    f"tenure '{dim.ref}': unknown dimension '{dim.tenure}'",
                    _loc(raw, "tenure"),
                    path,
                    did_you_mean(dim.tenure, model.dimension_refs()),
                )
            elif start_entity != entity.name and start_entity not in model.paths[entity.name].reach:
                builder.issue(
                    "CRM137",
                    f"tenure '{dim.ref}': no join path from {entity.name} to {start_entity}",
                    _loc(raw, "tenure"),
                    path,
                )


def time_metric(builder: ModelBuilder, model: SemanticModel, name: str, raw: dict, common: dict) -> Metric | None:
    """A metric declared with offset, change, growth, cumulative or attainment."""
    path = ("metrics", name)
    names = set(builder.data.get("metrics") or {})
    kind = next(k for k in TIME_METRIC_KEYS if k in raw)
    base = raw[kind]
    if not isinstance(base, str) or base not in names:
        hint = did_you_mean(str(base), names)
        builder.issue("CRM175", f"unknown metric '{base}' in {kind}", _loc(raw, kind), (*path, kind), hint)
        return None
    misplaced = _misplaced_keys(kind, raw)
    if misplaced:
        builder.issue("CRM176", f"`{misplaced}` does not apply to a {kind} metric", _loc(raw, misplaced), path)
        return None
    options: dict[str, Any] = {"base": base}
    if kind in ("offset", "change", "growth"):
        options["compare"] = raw.get("compare", "period")
        options["periods"] = raw.get("periods", 1)
    elif kind == "cumulative":
        if "window" in raw:
            window = parse_window(raw["window"])
            if window is None:
                builder.issue(
                    "CRM177",
                    f"window '{raw['window']}' must be a count and a grain, e.g. '30 days' or '3 months'",
                    _loc(raw, "window"),
                    (*path, "window"),
                )
                return None
            options["window"] = window
        options["to_date"] = raw.get("to_date")
    else:
        target = raw.get("target")
        if not isinstance(target, str) or target not in names:
            builder.issue(
                "CRM178",
                "attainment needs `target:`, the metric holding the targets"
                if target is None
                else f"unknown target metric '{target}'",
                _loc(raw, "target") or common["location"],
                (*path, "target"),
                did_you_mean(str(target), names) if target else None,
            )
            return None
        return Metric(
            name,
            "attainment",
            numerator=base,
            denominator=target,
            target_grain=raw.get("target_grain"),
            **common,
        )
    return Metric(name, kind, **options, **common)


def _misplaced_keys(kind: str, raw: dict) -> str | None:
    allowed = {
        "offset": {"compare", "periods"},
        "change": {"compare", "periods"},
        "growth": {"compare", "periods"},
        "cumulative": {"window", "to_date"},
        "attainment": {"target", "target_grain"},
    }[kind]
    for key in ("compare", "periods", "window", "to_date", "target", "target_grain"):
        if key in raw and key not in allowed:
            return key
    return None


def time_dependencies(metric: Metric) -> list[str]:
    """The metrics a time metric is computed from (for the cycle check)."""
    if metric.kind == "attainment":
        return [metric.numerator or "", metric.denominator or ""]
    return [metric.base] if metric.base else []
