"""The README opens with the two commands a new user runs, and CI runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())[:2]


def test_readme_opens_with_the_demo_and_the_test_commands() -> None:
    demo, tests = readme_commands()
    assert "pip install ." in demo and demo.endswith("crmetrics demo --out crmetrics-demo")
    assert "'.[test]'" in tests and tests.endswith("python -m pytest")


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = readme_commands()
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()
