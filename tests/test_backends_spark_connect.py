"""Spark Connect: a local Spark Connect server (pyspark's `remote("local")`), in its own process because a process
holds either a classic SparkContext or a Connect client, and the differential suite's session is classic."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession
    from crmetrics.errors import QueryTimeout
    from crmetrics.engines.guard import SafeEngine
    from crmetrics.engines.spark import SparkEngine

    session = SparkSession.builder.remote("local[1]").getOrCreate()
    engine = SafeEngine(SparkEngine(session))
    out = {"rows": engine.execute("SELECT 1 AS x, CAST(2.5 AS DECIMAL(10, 2)) AS y", ["x", "y"]).rows}
    try:
        slow = "SELECT count(*) FROM range(0, 300000000000, 1, 8) WHERE hash(id) % 1000003 = 7"
        SafeEngine(SparkEngine(session), timeout=2).execute(slow, ["n"])
        out["timeout"] = "not raised"
    except QueryTimeout as error:
        out["timeout"] = error.code
    out["after"] = engine.execute("SELECT 42 AS x", ["x"]).rows
    session.stop()
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.spark
def test_spark_connect_session_runs_and_cancels() -> None:
    pytest.importorskip("pyspark")
    pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect] (grpcio): pip install 'crmetrics[spark]'")
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600, cwd=root, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, done.stderr[-3000:]
    out = json.loads(line.removeprefix("RESULT "))
    assert out == {"rows": [[1, 2.5]], "timeout": "CRM520", "after": [[42]]}
