"""Shared fixtures."""

from __future__ import annotations

import pytest

from tests import crm_fixture


@pytest.fixture(scope="session")
def crm(tmp_path_factory: pytest.TempPathFactory) -> crm_fixture.CRM:
    """The core test data set: rows in Python, the same rows in crm.duckdb, and a project over them."""
    return crm_fixture.build(tmp_path_factory.mktemp("crm"))


@pytest.fixture(scope="session")
def crm_project(crm: crm_fixture.CRM):
    import crmetrics

    project = crmetrics.load(crm.root / "crmetrics.yml")
    yield project
    project.close()
