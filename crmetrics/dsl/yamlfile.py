"""Read YAML while remembering where every key and value was written.

The result is made of plain Python values; mappings are `YMap` (a dict) and sequences are `YList` (a list), each of
which knows the location of its own start and of each key and item. Scalars follow the YAML 1.2 core schema, so
YAML 1.1's `yes`, `no`, `on` and `off` stay the strings they look like; duplicate keys and unknown tags are issues.
`${VAR}` and `${VAR:-default}` in string values are replaced from the environment.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from crmetrics.errors import Issue, Location

YAML11_BOOLEANS = frozenset(
    ["yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N"]
)
_INT = re.compile(r"[-+]?[0-9][0-9_]*$")
_HEX_OCT = re.compile(r"0x[0-9a-fA-F]+$|0o[0-7]+$")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_STR_TAG = "tag:yaml.org,2002:str"


class YMap(dict):
    """A mapping that knows where it, each key and each value were written."""

    loc: Location
    key_locs: dict[str, Location]
    value_locs: dict[str, Location]

    def key_loc(self, key: str) -> Location:
        return self.key_locs.get(key, self.loc)

    def value_loc(self, key: str) -> Location:
        return self.value_locs.get(key, self.key_loc(key))


class YList(list):
    """A sequence that knows where it and each item were written."""

    loc: Location
    item_locs: list[Location]

    def item_loc(self, index: int) -> Location:
        return self.item_locs[index] if index < len(self.item_locs) else self.loc


class _Loader(yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader):  # type: ignore[misc]
    """libyaml's parser with no implicit typing: `_Converter` types plain scalars by the YAML 1.2 core schema."""

    yaml_implicit_resolvers: dict = {}


def _location(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _core_scalar(text: str) -> Any:
    """Type a plain scalar as YAML 1.2's core schema does."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _HEX_OCT.match(text):
        return int(text, 0)
    if _FLOAT.match(text) and any(ch.isdigit() for ch in text):
        return float(text.replace("_", ""))
    lowered = text.lower()
    if lowered in (".inf", "+.inf", "-.inf"):
        return -math.inf if text.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return text


class _Converter:
    def __init__(self, file: str, env: Mapping[str, str]) -> None:
        self.file, self.env = file, env
        self.issues: list[Issue] = []

    def issue(self, code: str, message: str, node: yaml.Node) -> None:
        self.issues.append(Issue(code, message, _location(self.file, node)))

    def convert(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node)
        if isinstance(node, yaml.SequenceNode):
            items = YList(self.convert(child) for child in node.value)
            items.loc = _location(self.file, node)
            items.item_locs = [_location(self.file, child) for child in node.value]
            return items
        return self.scalar(node)

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag not in (_STR_TAG, "!"):
            self.issue("CRM101", f"unsupported YAML tag '{node.tag}'", node)
        value = _core_scalar(node.value) if not node.style and node.tag == _STR_TAG else node.value
        return self.interpolate(value, node) if isinstance(value, str) else value

    def interpolate(self, text: str, node: yaml.Node) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.env:
                return self.env[name]
            if default is not None:
                return default
            self.issue("CRM102", f"environment variable '{name}' is not set (write ${{{name}:-default}})", node)
            return match.group(0)

        return _ENV.sub(replace, text) if "${" in text else text

    def mapping(self, node: yaml.MappingNode) -> YMap:
        result = YMap()
        result.loc = _location(self.file, node)
        result.key_locs, result.value_locs = {}, {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or (key_node.value == "<<" and not key_node.style):
                merged.append(value_node)
                continue
            key = self.convert(key_node)
            if not isinstance(key, str | int | float | bool) or isinstance(key, bool):
                self.issue("CRM103", f"mapping keys must be names, not {key!r}", key_node)
                continue
            key = str(key)
            if key in result:
                first = result.key_locs[key]
                self.issue("CRM104", f"duplicate key '{key}' (first written at line {first.line})", key_node)
                continue
            result[key] = self.convert(value_node)
            result.key_locs[key] = _location(self.file, key_node)
            result.value_locs[key] = _location(self.file, value_node)
        for source in merged:
            self.merge_into(result, source)
        return result

    def merge_into(self, result: YMap, source: yaml.Node) -> None:
        """YAML's `<<: *anchor` merge key: keys written in the mapping itself win."""
        sources = source.value if isinstance(source, yaml.SequenceNode) else [source]
        for node in sources:
            if not isinstance(node, yaml.MappingNode):
                self.issue("CRM105", "'<<' must merge a mapping", node)
                continue
            other = self.mapping(node)
            for key, value in other.items():
                if key not in result:
                    result[key] = value
                    result.key_locs[key] = other.key_locs[key]
                    result.value_locs[key] = other.value_locs[key]


# libyaml's problem (its start) -> what to look for, in the words of someone writing a project file
_SYNTAX_HINTS = {
    "mapping values are not allowed": "check for a key indented deeper than the keys above it, or an unquoted value "
    "holding ': '",
    "did not find expected key": "check this line's indentation against the other keys of its mapping",
    "did not find expected '-' indicator": "check for a key mixed into a list of '- ' items",
    "did not find expected ',' or": "check for a missing comma, or a bracket that is never closed",
    "found unexpected end of stream": "check for a quote or bracket that is never closed",
    "found undefined alias": "check for an '*alias' with no '&anchor' before it",
    "found character": "quote a value that starts with a character such as '@' or '`'",
}
_CONTEXT = re.compile(r"while (?:parsing|scanning) (?:an? )?(.+)")


def syntax_problem(error: yaml.MarkedYAMLError, text: str) -> str:
    """libyaml's message, with where the construct it was reading started and what usually causes the mistake."""
    problem = error.problem or error.context or "invalid YAML"
    at, start = error.problem_mark, error.context_mark
    started = _CONTEXT.match(error.context or "")
    if started and start is not None and (at is None or (start.line, start.column) != (at.line, at.column)):
        problem += f" (in the {started.group(1)} that starts at line {start.line + 1}, column {start.column + 1})"
    hint = next((hint for cause, hint in _SYNTAX_HINTS.items() if problem.startswith(cause)), None)
    if hint and problem.startswith("found character") and at is not None:
        line = text.splitlines()[at.line] if at.line < len(text.splitlines()) else ""
        if "\t" in line[: at.column + 1]:
            hint = "indent with spaces: YAML does not allow tabs"
    return f"{problem}; {hint}" if hint else problem


def load_yaml(text: str, file: str, env: Mapping[str, str] | None = None) -> tuple[Any, list[Issue]]:
    """Parse one YAML document; return its value and the issues found (syntax errors included, never raised)."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        return None, [Issue("CRM100", f"YAML syntax error: {syntax_problem(error, text)}", loc)]
    except yaml.YAMLError as error:  # e.g. a second document, a stray character
        return None, [Issue("CRM100", f"YAML syntax error: {error}", Location(file, 1, 1))]
    if node is None:
        return None, []
    converter = _Converter(file, os.environ if env is None else env)
    return converter.convert(node), converter.issues
