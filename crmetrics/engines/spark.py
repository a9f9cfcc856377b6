"""Spark SQL through pyspark: a local session, a cluster master, or a Spark Connect server.

URLs: `spark://local` or `spark://local[4]` (a local session), `spark://host:7077` (a standalone master),
`sc://host:15002` (Spark Connect). A `SparkSession` passed to the Python API is used as it is. Tables are whatever
the session's catalog holds (Hive metastore, Unity Catalog, temporary views).

Timeouts tag each query's jobs and cancel the tag when time is up (`SparkContext.addJobTag`/`cancelJobsWithTag` in a
classic session, `SparkSession.addTag`/`interruptTag` in Spark Connect), repeatedly, because a query's jobs only exist
once Spark has planned it.
"""

from __future__ import annotations

import uuid
from typing import Any

from crmetrics.engines import normalise
from crmetrics.engines.base import require, timeout_message
from crmetrics.engines.guard import Watchdog
from crmetrics.errors import ConnectionFailed, ExecutionError, QueryTimeout
from crmetrics.result import Result

# sessions crmetrics starts itself are configured for small interactive aggregations and UTC time
LOCAL_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}


def master_of(url: str) -> str:
    """`spark://local[4]` -> `local[4]`; `spark://host:7077` stays a master URL."""
    rest = url.split("://", 1)[1]
    return rest if rest.startswith("local") else url


def open_session(url: str, conf: dict[str, str] | None = None) -> Any:
    """Get or create the SparkSession a URL names (an already running session of this process is reused)."""
    require("pyspark", "spark", "a Spark connection")
    from pyspark.sql import SparkSession

    try:
        if url.startswith("sc://"):
            return SparkSession.builder.remote(url).getOrCreate()
        builder = SparkSession.builder.master(master_of(url)).appName("crmetrics")
        for key, value in {**LOCAL_CONF, **(conf or {})}.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()
    except Exception as error:
        raise ConnectionFailed(f"cannot start or reach Spark at {url!r}: {error}".strip()) from None


def running_session() -> Any:
    """The classic SparkSession already active in this process, if any."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


def is_spark_session(obj: Any) -> bool:
    return type(obj).__module__.startswith("pyspark.sql") and type(obj).__name__ == "SparkSession"


class SparkEngine:
    """Runs SQL on a SparkSession; results arrive as Arrow."""

    dialect = "spark"

    def __init__(self, session: Any, owned: bool = False) -> None:
        self.session = session
        self._owned = owned

    def _tagging(self) -> tuple[Any, Any, Any]:
        """(add, cancel, remove) for job tags: the SparkContext's in a classic session, the session's in Connect.

        A classic session's `SparkSession.addTag` does not reach the jobs a query runs; `SparkContext.addJobTag`
        does (both are per thread).
        """
        try:
            context = self.session.sparkContext
        except Exception:  # Spark Connect has no SparkContext
            return self.session.addTag, self.session.interruptTag, self.session.removeTag
        return context.addJobTag, context.cancelJobsWithTag, context.removeJobTag

    def execute(self, sql: str, columns: list[str], timeout: float | None = None) -> Result:
        """Run one SELECT; after `timeout` seconds its Spark jobs are cancelled."""
        tag = f"crmetrics-{uuid.uuid4().hex}"
        add, cancel, remove = self._tagging() if timeout else (None, None, None)
        if add is not None:
            add(tag)
        try:
            with Watchdog(timeout, lambda: cancel(tag)) as watchdog:  # type: ignore[misc]
                try:
                    table = self.session.sql(sql).toArrow()
                except Exception as error:
                    if watchdog.fired:
                        raise QueryTimeout(timeout_message(timeout or 0, "Spark")) from None
                    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                    raise ExecutionError(f"Spark could not run the query: {message}") from None
        finally:
            if remove is not None:
                remove(tag)
        return Result(columns, None, sql, _arrow=normalise.arrow_table(table, columns))  # rows made when asked

    def close(self) -> None:
        if self._owned:
            self.session.stop()
