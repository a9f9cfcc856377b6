"""Data-quality rules declared next to an entity (`quality:` in the YAML), resolved at load time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

# characters a phone number is commonly written with that do not change the number
PHONE_SEPARATORS = (" ", "-", ".", "(", ")", "/", "+")
NORMALIZERS = ("exact", "text", "email", "phone")


@dataclass(frozen=True)
class QualityRules:
    """What the quality analysis checks for one entity, beyond completeness, key duplicates and join orphans.

    Column names are the entity's dimensions when it declares one of that name, else raw columns.
    `natural_keys` map a name to an expression over the entity's own columns (already normalised).
    """

    columns: tuple[str, ...] = ()
    natural_keys: dict[str, exp.Expression] = field(default_factory=dict)
    accepted_values: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    staleness: tuple[str, int] | None = None  # (column, days)


def normalized(column: str, how: str) -> exp.Expression:
    """The column normalised for duplicate detection: text trims and lower-cases; email also drops every space;
    phone drops spaces and the usual separators. Built from REPLACE/LOWER/TRIM only, which every database has."""
    value: exp.Expression = exp.column(column, quoted=True)
    if how == "text":
        return exp.Lower(this=exp.Trim(this=value))
    if how == "email":
        return exp.Lower(this=_strip(value, (" ",)))
    if how == "phone":
        return _strip(value, PHONE_SEPARATORS)
    return value


def _strip(value: exp.Expression, characters: tuple[str, ...]) -> exp.Expression:
    for character in characters:
        value = exp.func("REPLACE", value, exp.Literal.string(character), exp.Literal.string(""))
    return value
