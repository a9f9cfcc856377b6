"""The lifecycle analyses give the same numbers on Spark as on DuckDB (skipped without pyspark and Java 17)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

import crmetrics
from tests import lifecycle_fixture
from tests.lifecycle_fixture import LifecycleData
from tests.test_analysis_lifecycle_dialects import CASES, assert_same_results

# small-data settings: a quick JIT, one shuffle partition, no adaptive planning (each query well under a second)
SPARK_SETTINGS = {
    "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.codegen.wholeStage": "false",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> LifecycleData:
    return lifecycle_fixture.build(tmp_path_factory.mktemp("lifecycle_spark"))


@pytest.fixture(scope="module")
def project(data: LifecycleData) -> Iterator[crmetrics.Project]:
    loaded = crmetrics.load(data.root / "crmetrics.yml")
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def spark(data: LifecycleData) -> Iterator[Any]:
    """A local Spark session over the fixture's tables (Parquet files), through crmetrics' Spark engine."""
    pytest.importorskip("pyspark", reason="pyspark not installed: pip install 'crmetrics[spark]'")
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17: apt-get install openjdk-17-jre-headless")
    import duckdb

    from crmetrics.engines.spark import SparkEngine, open_session
    from tests.differential import loaders

    with duckdb.connect(str(data.root / "crm.duckdb"), read_only=True) as con:
        names = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        tables = {name: con.sql(f'SELECT * FROM "{name}"').to_arrow_table() for name in names}
    session = open_session("spark://local[2]", SPARK_SETTINGS)
    loaders.load_spark(session, tables, data.root)
    yield SparkEngine(session)
    session.stop()


@pytest.mark.parametrize(("name", "overrides"), CASES)
def test_spark_gives_the_same_numbers(project: crmetrics.Project, spark: Any, name: str, overrides: dict) -> None:
    assert_same_results(project, name, overrides, spark)
