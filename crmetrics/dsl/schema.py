"""A small schema language for the DSL: one description drives both validation and the JSON Schema.

Each `Spec` checks a value read by `yamlfile` and reports `Issue`s at the value's file:line:column; unknown keys get a
"did you mean". `json_schema()` turns the same specs into a JSON Schema for editors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crmetrics.dsl.yamlfile import YAML11_BOOLEANS, YList, YMap
from crmetrics.errors import Issue, Location, did_you_mean

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_NAME = re.compile(NAME_PATTERN)

Path = tuple[str | int, ...]
Report = Callable[[str, str, Location, Path, str | None], None]


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", type(None): "empty"}.get(
        type(value),
        "a mapping" if isinstance(value, dict) else "a list" if isinstance(value, list) else "a value",
    )


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Base of every schema node."""

    description: str = ""

    def check(self, value: Any, loc: Location, path: Path, report: Report) -> None:
        """Report every problem of `value`, written at `loc`."""

    def json(self) -> dict[str, Any]:
        """This spec as a JSON Schema fragment."""
        return {"description": self.description} if self.description else {}


@dataclass(frozen=True)
class Str(Spec):
    enum: tuple[str, ...] | None = None
    pattern: str | None = None

    def check(self, value: Any, loc: Location, path: Path, report: Report) -> None:
        if not isinstance(value, str):
            report("CRM110", f"expected a string, got {_type_name(value)} ({value!r})", loc, path, None)
        elif self.enum is not None and value not in self.enum:
            hint = did_you_mean(value, self.enum)
            report("CRM111", f"'{value}' is not one of: {', '.join(self.enum)}", loc, path, hint)
        elif self.pattern and not re.match(self.pattern, value):
            report("CRM112", f"'{value}' is not a valid name (letters, digits and _)", loc, path, None)

    def json(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", **super().json()}
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.pattern:
            schema["pattern"] = self.pattern
        return schema


@dataclass(frozen=True)
class Num(Spec):
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None

    def check(self, value: Any, loc: Location, path: Path, report: Report) -> None:
        kinds = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            wanted = "an integer" if self.integer else "a number"
            report("CRM110", f"expected {wanted}, got {_type_name(value)} ({value!r})", loc, path, None)
        elif (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            report("CRM113", f"{value} is outside [{self.minimum}, {self.maximum}]", loc, path, None)

    def json(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer" if self.integer else "number", **super().json()}
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        return schema


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, value: Any, loc: Location, path: Path, report: Report) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, str) and value in YAML11_BOOLEANS:
            message = f"'{value}' is not a boolean in crmetrics YAML (YAML 1.2): write true or false"
        else:
            message = f"expected true or false, got {_type_name(value)} ({value!r})"
        report("CRM110", message, loc, path, None)

    def json(self) -> dict[str, Any]:
        return {"type": "boolean", **super().json()}


@dataclass(frozen=True)
class AnyValue(Spec):
    def json(self) -> dict[str, Any]:
        return super().json()


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec = field(default_factory=Str)
    single: bool = False  # a lone item may be written without brackets
    min_items: int = 0
    max_items: int | None = None

    def check(self, value: Any, loc: Location, path: Path, report: Report) -> None:
        if not isinstance(value, list):
            if self.single:
                self.item.check(value, loc, path, report)
            else:
                report("CRM110", f"expected a list, got {_type_name(value)} ({value!r})", loc, path, None)
            return
        if len(value) < self.min_items or (self.max_items is not None and len(value) > self.max_items):
            wanted = self.min_items if self.max_items == self.min_items else f"{self.min_items}+"
            report("CRM114", f"expected {wanted} items, got {len(value)}", loc, path, None)
        for index, item in enumerate(value):
            item_loc = value.item_loc(index) if isinstance(value, YList) else loc
            self.item.check(item, item_loc, (*path, index), report)

    def json(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.item.json()}
        if self.min_items:
            schema["minItems"] = self.min_items
        if self.max_items is not None:
            schema["maxItems"] = self.max_items
        schema.update(super().json())
        return {"anyOf": [schema, self.item.json()]} if self.single else schema


@dataclass(frozen=True)
class MapOf(Spec):
    """A mapping from user-chosen names to values of one spec (entities, metrics, ...)."""

    value: Spec = field(default_factory=AnyValue)

    def check(self, value: Any, loc: Location, path: Path, report: Report) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            report("CRM110", f"expected a mapping of names, got {_type_name(value)}", loc, path, None)
            return
        for key, item in value.items():
            key_loc = value.key_loc(key) if isinstance(value, YMap) else loc
            if not _NAME.match(key):
                report(
                    "CRM112",
                    f"'{key}' is not a valid name (letters, digits and _)",
                    key_loc,
                    (*path, key),
                    None,
                )
            item_loc = value.value_loc(key) if isinstance(value, YMap) else loc
            self.value.check(item, item_loc, (*path, key), report)

    def json(self) -> dict[str, Any]:
        return {
            "type": "object",
            "propertyNames": {"pattern": NAME_PATTERN},
            "additionalProperties": self.value.json(),
            **super().json(),
        }


@dataclass(frozen=True)
class Field:
    spec: Spec
    required: bool = False


@dataclass(frozen=True)
class Obj(Spec):
    """A mapping with known keys. `shorthand` names the field that a bare scalar value stands for."""

    fields: dict[str, Field] = field(default_factory=dict)
    shorthand: str | None = None
    one_of: tuple[str, ...] = ()  # exactly one of these keys must be present
    extra: Spec | None = None  # spec of keys not in `fields`; None means unknown keys are errors
    empty_ok: bool = False  # `name:` with no value means an object with every default

    def check(self, value: Any, loc: Location, path: Path, report: Report) -> None:
        if value is None and self.empty_ok:
            return
        if self.shorthand and not isinstance(value, dict):
            self.fields[self.shorthand].spec.check(value, loc, path, report)
            return
        if not isinstance(value, dict):
            report("CRM110", f"expected a mapping, got {_type_name(value)} ({value!r})", loc, path, None)
            return
        key_loc = value.key_loc if isinstance(value, YMap) else (lambda _key: loc)
        value_loc = value.value_loc if isinstance(value, YMap) else (lambda _key: loc)
        for key, item in value.items():
            spec = self.fields[key].spec if key in self.fields else self.extra
            if spec is None:
                hint = did_you_mean(key, self.fields)
                report("CRM115", f"unknown key '{key}'", key_loc(key), (*path, key), hint)
            else:
                spec.check(item, value_loc(key), (*path, key), report)
        for name, fld in self.fields.items():
            if fld.required and name not in value:
                report("CRM116", f"missing required key '{name}'", loc, path, None)
        if self.one_of:
            present = [k for k in self.one_of if k in value]
            if len(present) != 1:
                wanted = ", ".join(f"'{k}'" for k in self.one_of)
                found = f" (found {', '.join(present)})" if present else ""
                report("CRM117", f"write exactly one of {wanted}{found}", loc, path, None)

    def json(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {name: f.spec.json() for name, f in self.fields.items()},
            "additionalProperties": self.extra.json() if self.extra else False,
            **super().json(),
        }
        required = [name for name, f in self.fields.items() if f.required]
        if required:
            schema["required"] = required
        if self.one_of:
            schema["oneOf"] = [{"required": [k]} for k in self.one_of]
        options = [schema]
        if self.shorthand:
            options.append(self.fields[self.shorthand].spec.json())
        if self.empty_ok:
            options.append({"type": "null"})
        return options[0] if len(options) == 1 else {"anyOf": options}


def validate(value: Any, spec: Spec, loc: Location, path: Path = ()) -> list[Issue]:
    """Check `value` against `spec`; return every issue found."""
    issues: list[Issue] = []

    def report(code: str, message: str, where: Location, at: Path, suggestion: str | None) -> None:
        issues.append(Issue(code, message, where, at, suggestion))

    spec.check(value, loc, path, report)
    return issues
