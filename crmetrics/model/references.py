"""References to dimensions: `entity.dimension`, `entity.dimension:grain` and `metric_time:grain`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crmetrics.errors import QueryError, did_you_mean

GRAINS = ("day", "week", "month", "quarter", "year", "fiscal_quarter", "fiscal_year")
METRIC_TIME = "metric_time"
_REFERENCE = re.compile(r"^(?:(?P<entity>[A-Za-z_]\w*)\.)?(?P<name>[A-Za-z_]\w*)(?::(?P<grain>[A-Za-z_]+))?$")


@dataclass(frozen=True)
class Ref:
    """A parsed dimension reference; `text` is how the user wrote it and names the result column."""

    entity: str | None  # None only for metric_time
    name: str
    grain: str | None
    text: str

    @property
    def is_metric_time(self) -> bool:
        return self.entity is None and self.name == METRIC_TIME


class RefSyntaxError(QueryError, ValueError):
    """A reference that is not `entity.dimension[:grain]` or `metric_time[:grain]`."""

    code = "CRM301"

    def __str__(self) -> str:
        # the bare message, as a ValueError gives it: callers wrap it into QueryError or an Issue with their own code
        return self.message


def parse_ref(text: str) -> Ref:
    """Parse a dimension reference; raise RefSyntaxError with the reason."""
    match = _REFERENCE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise RefSyntaxError(
            f"'{text}' is not a reference: write entity.dimension, entity.dimension:grain or metric_time:grain"
        )
    entity, name, grain = match.group("entity", "name", "grain")
    if entity is None and name != METRIC_TIME:
        raise RefSyntaxError(f"'{text}' needs its entity: write entity.{name}")
    if grain is not None and grain not in GRAINS:
        hint = did_you_mean(grain, GRAINS)
        hint = f"; did you mean '{hint}'?" if hint else ""
        raise RefSyntaxError(f"unknown grain '{grain}' in '{text}'{hint} (grains: {', '.join(GRAINS)})")
    return Ref(entity, name, grain, text.strip())
