"""crmetrics: a CRM metrics layer. KPIs, segments and analyses declared in YAML, compiled through sqlglot to SQL.

project = crmetrics.load("crmetrics.yml")
project.compile(metrics=["revenue"], by=["customers.region"], dialect="postgres")
project.query(metrics=["revenue", "aov"], by=["metric_time:month"]).rows
"""

from crmetrics.errors import (
    CompileError,
    ConfigError,
    ConnectionFailed,
    ContextError,
    CrmetricsError,
    ExecutionError,
    Issue,
    Location,
    QueryError,
    ReferenceNotFound,
    UnsafeExpressionError,
)
from crmetrics.project import Project, load
from crmetrics.result import Result

__version__ = "0.1.0"

__all__ = [
    "CompileError",
    "ConfigError",
    "ConnectionFailed",
    "ContextError",
    "CrmetricsError",
    "ExecutionError",
    "Issue",
    "Location",
    "Project",
    "QueryError",
    "ReferenceNotFound",
    "Result",
    "UnsafeExpressionError",
    "__version__",
    "load",
]
