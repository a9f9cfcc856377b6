"""The YAML reader: locations, YAML 1.2 scalars, duplicate keys, merge keys, environment variables."""

from __future__ import annotations

import math

import pytest

from crmetrics.dsl.yamlfile import YList, YMap, load_yaml


def test_values_keep_their_locations() -> None:
    data, issues = load_yaml("a: 1\nb:\n  c: [x, 'y']\n", "f.yml")
    assert issues == []
    assert isinstance(data, YMap) and isinstance(data["b"]["c"], YList)
    assert (data.key_loc("b").line, data.key_loc("b").column) == (2, 1)
    assert (data["b"].value_loc("c").line, data["b"].value_loc("c").column) == (3, 6)
    assert (data["b"]["c"].item_loc(1).line, data["b"]["c"].item_loc(1).column) == (3, 10)


def test_yaml_1_1_booleans_stay_strings_and_core_scalars_are_typed() -> None:
    text = "a: no\nb: on\nc: yes\nd: off\ne: NO\nf: true\ng: False\nh: ~\ni: 0x1F\nj: 1_000\nk: 2.5e3\nl: .inf\n" \
           "m: 2024-01-31\nn: '42'\no: 007\n"
    data, issues = load_yaml(text, "f.yml")
    assert issues == []
    assert data["a"] == "no" and data["b"] == "on" and data["c"] == "yes" and data["d"] == "off"
    assert data["e"] == "NO"  # Norway stays Norway
    assert data["f"] is True and data["g"] is False and data["h"] is None
    assert data["i"] == 31 and data["j"] == 1000 and data["k"] == 2500.0 and math.isinf(data["l"])
    assert data["m"] == "2024-01-31" and data["n"] == "42" and data["o"] == 7


def test_duplicate_keys_are_reported_at_the_second_one() -> None:
    _, issues = load_yaml("metrics:\n  a: 1\n  b: 2\n  a: 3\n", "f.yml")
    assert [(i.code, i.location.line, i.location.column) for i in issues] == [("CRM104", 4, 3)]
    assert "first written at line 2" in issues[0].message


def test_merge_keys_and_anchors() -> None:
    data, issues = load_yaml("base: &b {agg: sum, expr: x}\nm:\n  <<: *b\n  expr: y\n", "f.yml")
    assert issues == [] and data["m"] == {"agg": "sum", "expr": "y"}


def test_environment_variables() -> None:
    text = "a: ${HOST}:5432\nb: ${MISSING:-fallback}\nc: ${MISSING}\n"
    data, issues = load_yaml(text, "f.yml", env={"HOST": "db.local"})
    assert data["a"] == "db.local:5432" and data["b"] == "fallback"
    assert [(i.code, i.location.line) for i in issues] == [("CRM102", 3)]


@pytest.mark.parametrize(
    ("text", "where", "says"),
    [
        # a key indented one space too deep: libyaml only sees a ':' it did not expect
        ("a:\n  b: 1\n   c: 2\n", (3, 5), "; check for a key indented deeper than the keys above it"),
        ("a:\n  b:\n    c: 1\n   d: 2\n", (4, 4), "(in the block mapping that starts at line 2, column 3)"),
        ("a:\n  b: {x: 1, y: 2\nc: 3\n", (3, 2), "(in the flow mapping that starts at line 2, column 6)"),
        ("a: [1, 2\nb: 3\n", (2, 2), "a bracket that is never closed"),
        ("a: 'abc\nb: 2\n", (3, 1), "(in the quoted scalar that starts at line 1, column 4)"),
        ("a:\n\tb: 1\n", (2, 1), "; indent with spaces: YAML does not allow tabs"),
        ("a: @x\n", (1, 4), "; quote a value that starts with a character such as '@'"),
        ("a:\n  - 1\n  b: 2\n", (3, 3), "; check for a key mixed into a list"),
    ],
)
def test_syntax_errors_say_where_the_construct_started_and_what_to_check(text, where, says) -> None:
    _, issues = load_yaml(text, "f.yml")
    [issue] = issues
    assert issue.code == "CRM100" and (issue.location.line, issue.location.column) == where
    assert says in issue.message


def test_syntax_errors_and_tags_are_issues_not_exceptions() -> None:
    data, issues = load_yaml("a: [1, 2\nb: 3\n", "f.yml")
    assert data is None and issues[0].code == "CRM100" and issues[0].location.file == "f.yml"
    _, issues = load_yaml("a: !!python/object:os.system x\n", "f.yml")
    assert issues[0].code == "CRM101"
    _, issues = load_yaml("? [a, b]\n: 1\n", "f.yml")
    assert issues[0].code == "CRM103"
    assert load_yaml("", "f.yml") == (None, [])
