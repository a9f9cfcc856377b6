"""One loaded project shared by 16 threads: every compile, query and analysis returns what a sequential call does.

The threads start together (a barrier) and each runs the whole mix of questions, tenants and dialects in its own
shuffled order, several times, so compiles and queries of different tenants overlap on the same project, the same
engine and the same DuckDB database.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest

import crmetrics
from crmetrics.errors import CrmetricsError
from tests import tenancy_data as td

THREADS = 16
ROUNDS = 1

QUESTIONS: list[dict[str, Any]] = [
    {"metrics": ["revenue", "aov"], "by": ["customers.region"]},
    {"metrics": ["revenue_per_ticket", "customers"], "by": ["metric_time:month"]},
    {"metrics": ["buyers", "online_revenue"], "by": ["orders.channel"], "where": "customers.region <> 'north'"},
    {"metrics": ["order_count"], "segments": ["big_spenders"]},
    {"metrics": ["ticket_count"], "by": ["customers.lifetime_revenue"], "segments": ["northern"]},
    {"metrics": ["revenue"], "by": ["customers.tier", "metric_time:month"], "order_by": ["-revenue"], "limit": 5},
    {"metrics": ["nope"]},  # errors must be the same under load too
    {"metrics": ["revenue"], "where": "customers.region IN (SELECT 1)"},
]
DIALECTS = ["duckdb", "postgres", "snowflake", "bigquery", "sqlite", "tsql"]
ANALYSES = ["pareto", "profile"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> crmetrics.Project:
    folder: Path = tmp_path_factory.mktemp("threads")
    con = duckdb.connect(str(folder / "crm.duckdb"))
    td.load_duckdb(td.make_data(), con).close()
    analyses = "".join(f"  {name}: {td.ANALYSES[name]}\n" for name in ANALYSES)
    text = td.PROJECT_YAML.replace("name: tenants", "name: tenants\nconnection: duckdb:///crm.duckdb")
    loaded = crmetrics.load(td.write_project(folder, text + "analyses:\n" + analyses))
    yield loaded
    loaded.close()


def _tasks(project: crmetrics.Project) -> list[tuple[str, Any]]:
    methods = project.plugins.of("analysis method")
    tasks: list[tuple[str, Any]] = []
    for index in range(len(QUESTIONS)):
        for tenant in td.TENANTS:
            tasks.append(("query", (index, tenant)))
            tasks.append(("compile", (index, tenant, DIALECTS[(index + tenant) % len(DIALECTS)])))
    for name in ANALYSES:
        if project.model.analyses[name].method in methods:
            tasks += [("analyze", (name, tenant)) for tenant in td.TENANTS]
    return tasks


def _run(project: crmetrics.Project, task: tuple[str, Any]) -> Any:
    kind, args = task
    try:
        if kind == "query":
            index, tenant = args
            result = project.query(**QUESTIONS[index], context={"tenant_id": tenant})
            return result.columns, result.rows
        if kind == "compile":
            index, tenant, dialect = args
            return project.compile(**QUESTIONS[index], context={"tenant_id": tenant}, dialect=dialect)
        name, tenant = args
        result = project.analyze(name, context={"tenant_id": tenant})
        return {key: (table.columns, table.rows) for key, table in result.tables.items()}
    except CrmetricsError as error:
        return ("error", error.code, str(error))


def test_sixteen_threads_return_what_sequential_calls_return(project: crmetrics.Project) -> None:
    tasks = _tasks(project)
    expected = {task: _run(project, task) for task in tasks}
    assert any(isinstance(v, tuple) and v and v[0] == "error" for v in expected.values())
    barrier = threading.Barrier(THREADS)

    def worker(seed: int) -> list[tuple[tuple[str, Any], Any]]:
        order = list(tasks) * ROUNDS
        random.Random(seed).shuffle(order)
        barrier.wait()
        return [(task, _run(project, task)) for task in order]

    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(worker, range(THREADS)))
    mismatches = [task for outcome in outcomes for task, value in outcome if value != expected[task]]
    assert not mismatches, f"{len(mismatches)} concurrent results differ, e.g. {mismatches[:3]}"
    assert sum(len(o) for o in outcomes) == THREADS * ROUNDS * len(tasks)


def test_threads_share_one_engine_with_a_cursor_each(project: crmetrics.Project) -> None:
    engines, cursors = set(), set()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def worker(_: int) -> None:
        barrier.wait()
        engine = getattr(project.engine(), "engine", None) or project.engine()  # under the read-only guard
        project.query(["order_count"], context={"tenant_id": 1})
        with lock:
            engines.add(id(engine))
            cursors.add(id(engine.cursor()))  # type: ignore[attr-defined]

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    assert len(engines) == 1
    assert len(cursors) == THREADS


def test_concurrent_loads_of_the_same_file_agree(project: crmetrics.Project, tmp_path: Path) -> None:
    path = td.write_project(tmp_path)
    barrier = threading.Barrier(8)

    def worker(_: int) -> str:
        barrier.wait()
        return crmetrics.load(path).compile(["revenue", "aov"], by=["customers.region"], context={"tenant_id": 2})

    with ThreadPoolExecutor(8) as pool:
        results = set(pool.map(worker, range(8)))
    assert len(results) == 1
