"""The JSON Schema shipped for editors is generated from the validator's own spec and accepts valid projects."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from crmetrics.dsl.spec import SCHEMA_VERSION, json_schema
from crmetrics.dsl.yamlfile import load_yaml

jsonschema = pytest.importorskip("jsonschema")


def read(path: Path) -> dict:
    """YAML 1.2, as the YAML language server reads it (PyYAML's 1.1 would turn `on:` into True)."""
    data, issues = load_yaml(path.read_text(), str(path))
    assert not issues
    return json.loads(json.dumps(data))


SHIPPED = resources.files("crmetrics") / "schema" / f"project-v{SCHEMA_VERSION}.json"


def test_shipped_schema_is_generated_from_the_spec() -> None:
    assert json.loads(SHIPPED.read_text()) == json.loads(json.dumps(json_schema())), (
        "regenerate with: crmetrics schema > crmetrics/schema/project-v1.json"
    )


def test_schema_is_valid_and_versioned() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"].endswith(f"v{SCHEMA_VERSION}.json")


def test_schema_accepts_the_test_project_and_rejects_typos(crm) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    project = read(crm.root / "crmetrics.yml")
    assert list(validator.iter_errors(project)) == []
    project["entites"] = project.pop("entities")
    assert list(validator.iter_errors(project))


def test_schema_accepts_the_demo_project() -> None:
    demo = Path(__file__).parents[1] / "crmetrics" / "demo" / "project.yml"
    validator = jsonschema.Draft202012Validator(json_schema())
    errors = list(validator.iter_errors(read(demo)))
    assert errors == [], errors[:3]
