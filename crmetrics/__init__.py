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
    MissingDriver,
    QueryError,
    QueryTimeout,
    ReferenceNotFound,
    UnsafeExpressionError,
    UnsafeStatement,
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
    "MissingDriver",
    "Project",
    "QueryError",
    "QueryTimeout",
    "ReferenceNotFound",
    "Result",
    "UnsafeExpressionError",
    "UnsafeStatement",
    "__version__",
    "load",
]
