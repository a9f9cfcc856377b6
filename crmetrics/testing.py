"""Test helpers for plugin authors: an isolated plugin manager, a tiny DuckDB CRM data set, scoped registration.

In your plugin's `conftest.py`:

    pytest_plugins = ["crmetrics.testing"]

and then, in a test:

    def test_my_method(tiny_project):
        project = tiny_project(analyses={"mine": {"method": "my_method", "responses": "nps_responses"}},
                               plugins=[my_plugin_module])
        result = project.analyze("mine")

The data set (`TINY_ROWS`) is small enough to check every number by hand: unicode names, a customer without
orders, an order whose customer is unknown, a NULL amount, tied amounts and dates, two tenants, NPS answers from 0
to 10 and a NULL one. Nothing here touches the plugins installed in the environment unless asked to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml

from crmetrics.plugins import SCOPED_PLUGINS, Registry, get_plugin_manager

__all__ = [
    "TINY_PROJECT",
    "TINY_ROWS",
    "build_tiny_crm",
    "isolated_plugin_manager",
    "register_plugin",
    "registered",
    "tiny_crm_path",
    "tiny_project",
    "write_project",
]

D = dt.date
TINY_ROWS: dict[str, tuple[tuple[str, ...], list[tuple]]] = {
    "customers": (
        ("customer_id", "name", "region", "tenant_id", "signed_up_at"),
        [
            (1, "Ana", "north", 1, D(2023, 1, 5)),
            (2, "Bé", "south", 1, D(2023, 2, 1)),
            (3, "Chloé", None, 1, D(2023, 3, 9)),
            (4, "李雷", "north", 2, D(2023, 4, 1)),
            (5, "Dan (no orders)", "south", 2, D(2023, 5, 1)),
            (6, "Eve", "east", 1, D(2024, 1, 2)),
        ],
    ),
    "orders": (
        ("order_id", "customer_id", "ordered_at", "amount", "channel", "tenant_id"),
        [
            (101, 1, D(2024, 1, 10), 100.0, "web", 1),
            (102, 1, D(2024, 3, 1), 50.0, "store", 1),
            (103, 2, D(2024, 3, 1), 100.0, "web", 1),
            (104, 3, D(2024, 2, 15), None, "web", 1),
            (105, 3, D(2024, 3, 20), 30.0, "store", 1),
            (106, 4, D(2024, 3, 20), 250.0, "web", 2),
            (107, 6, D(2024, 1, 10), 100.0, "web", 1),
            (108, 99, D(2024, 3, 5), 75.0, "web", 1),  # an unknown customer
            (109, 1, D(2023, 12, 30), 20.0, "web", 1),
        ],
    ),
    "nps_responses": (
        ("response_id", "customer_id", "answered_at", "score", "tenant_id"),
        [
            (1, 1, D(2024, 1, 15), 10, 1),
            (2, 2, D(2024, 1, 20), 9, 1),
            (3, 3, D(2024, 2, 3), 8, 1),
            (4, 4, D(2024, 2, 5), 7, 2),
            (5, 6, D(2024, 2, 9), 6, 1),
            (6, 1, D(2024, 3, 1), 0, 1),
            (7, 2, D(2024, 3, 2), None, 1),
            (8, 5, D(2024, 3, 3), 10, 2),
        ],
    ),
}

TINY_PROJECT: dict[str, Any] = {
    "version": 1,
    "name": "tiny_crm",
    "connection": "duckdb:///tiny.duckdb",
    "entities": {
        "customers": {
            "table": "customers",
            "key": "customer_id",
            "time": "signed_up_at",
            "dimensions": {"name": {}, "region": {}, "tenant_id": {"type": "number"}, "signed_up_at": {"type": "time"}},
            "measures": {"customer_count": {"agg": "count"}},
        },
        "orders": {
            "table": "orders",
            "key": "order_id",
            "time": "ordered_at",
            "joins": {"customers": {"on": "customer_id"}},
            "dimensions": {"channel": {}, "amount": {"type": "number"}, "ordered_at": {"type": "time"}},
            "measures": {
                "revenue": {"agg": "sum", "expr": "amount"},
                "order_count": {"agg": "count"},
                "buyers": {"agg": "count_distinct", "expr": "customer_id"},
            },
        },
        "nps_responses": {
            "table": "nps_responses",
            "key": "response_id",
            "time": "answered_at",
            "joins": {"customers": {"on": "customer_id"}},
            "dimensions": {"score": {"type": "number"}, "answered_at": {"type": "time"}},
            "measures": {"response_count": {"agg": "count"}},
        },
    },
    "metrics": {
        "revenue": {"measure": "orders.revenue"},
        "order_count": {"measure": "orders.order_count"},
        "buyers": {"measure": "orders.buyers"},
        "aov": {"ratio": ["revenue", "order_count"]},
        "customers": {"measure": "customers.customer_count"},
        "responses": {"measure": "nps_responses.response_count"},
    },
    "segments": {"north": {"entity": "customers", "where": "customers.region = 'north'"}},
}

TENANT_FILTERS = {
    "customers": "customers.tenant_id = :tenant_id",
    "orders": "orders.tenant_id = :tenant_id",
    "nps_responses": "nps_responses.tenant_id = :tenant_id",
}


def build_tiny_crm(path: str | os.PathLike, rows: Mapping[str, tuple[Sequence[str], list[tuple]]] = TINY_ROWS) -> Path:
    """Write the tiny CRM tables (or `rows`) to a DuckDB file at `path` (overwritten) and return the path."""
    import duckdb

    target = Path(path)
    target.unlink(missing_ok=True)
    con = duckdb.connect(str(target))
    try:
        for table, (columns, values) in rows.items():
            types = [_sql_type([row[i] for row in values]) for i in range(len(columns))]
            con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in zip(columns, types, strict=True))})")
            if values:
                marks = ", ".join("?" for _ in columns)
                con.executemany(f"INSERT INTO {table} VALUES ({marks})", values)
    finally:
        con.close()
    return target


def _sql_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, dt.date) for v in present):
        return "DATE"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "BIGINT"
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "DOUBLE"
    return "VARCHAR"


def write_project(
    folder: str | os.PathLike,
    analyses: Mapping[str, Any] | None = None,
    tenant_filters: bool = False,
    rows: Mapping[str, tuple[Sequence[str], list[tuple]]] = TINY_ROWS,
    **extra: Any,
) -> Path:
    """Write `tiny.duckdb` and a `crmetrics.yml` over it into `folder`; return the project file's path.

    `analyses` go under `analyses:`; `tenant_filters=True` adds row filters on `tenant_id = :tenant_id`; other
    keyword arguments are merged into the project's top level (e.g. `segments={...}`).
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    build_tiny_crm(root / "tiny.duckdb", rows)
    project = {**TINY_PROJECT, **extra}
    if analyses:
        project["analyses"] = dict(analyses)
    if tenant_filters:
        project["security"] = {"row_filters": TENANT_FILTERS}
    path = root / "crmetrics.yml"
    path.write_text(yaml.safe_dump(project, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def isolated_plugin_manager(*plugins: object, strict: bool = True) -> tuple[pluggy.PluginManager, Registry]:
    """A plugin manager with the built-ins and `plugins` only: what is installed in the environment is ignored."""
    return get_plugin_manager(entry_points_too=False, strict=strict, extra=plugins)


@contextlib.contextmanager
def registered(*plugins: object) -> Iterator[None]:
    """Within the block, every plugin manager crmetrics creates (also for the CLI run in-process) has `plugins`."""
    token = SCOPED_PLUGINS.set((*SCOPED_PLUGINS.get(), *plugins))
    try:
        yield
    finally:
        SCOPED_PLUGINS.reset(token)


@pytest.fixture
def tiny_crm_path(tmp_path: Path) -> Path:
    """The project file of the tiny CRM in a fresh folder (no analyses)."""
    return write_project(tmp_path / "tiny")


@pytest.fixture
def tiny_project(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """A factory: `tiny_project(analyses=..., plugins=[...], tenant_filters=False, **extra)` -> a loaded Project."""
    import crmetrics

    opened: list[Any] = []

    def make(analyses: Mapping[str, Any] | None = None, plugins: Sequence[object] = (), **extra: Any) -> Any:
        path = write_project(tmp_path / f"project{len(opened)}", analyses, **extra)
        project = crmetrics.load(path, plugins=plugins)
        opened.append(project)
        return project

    yield make
    for project in opened:
        project.close()


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., None]]:
    """`register_plugin(plugin)` registers a plugin object or module until the end of the test."""
    tokens = []

    def register(*plugins: object) -> None:
        tokens.append(SCOPED_PLUGINS.set((*SCOPED_PLUGINS.get(), *plugins)))

    yield register
    for token in reversed(tokens):
        SCOPED_PLUGINS.reset(token)
