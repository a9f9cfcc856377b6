"""The hooks through which plugins extend crmetrics. Built-in methods, formats and backends use them too.

Every hook is a *register-callback* hook, as in llm: crmetrics passes a `register` function and the plugin calls it
once per thing it provides. crmetrics owns the naming: a name registered twice is an error that names both plugins.
All implementations of a hook are called (none is "first result wins"); the order of calls is pluggy's (last
registered first), which never matters because registrations are keyed by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from crmetrics.analysis.base import AnalysisMethod
    from crmetrics.engines.registry import Backend
    from crmetrics.reports.base import ReportFormat

PROJECT_NAME = "crmetrics"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_analysis_methods(register: Callable[[AnalysisMethod], None]) -> None:
    """Register analysis methods.

    Call ``register(AnalysisMethod(...))`` once per method. The method's ``name`` is what `method:` says in the YAML;
    its ``parameters`` schema is validated like the rest of the project, with file:line:column errors.
    """


@hookspec
def register_report_formats(register: Callable[[ReportFormat], None]) -> None:
    """Register report formats.

    Call ``register(ReportFormat(...))`` once per format. The format's ``name`` is what
    ``crmetrics report --format NAME`` selects.
    """


@hookspec
def register_backends(register: Callable[[Backend], None]) -> None:
    """Register database backends.

    Call ``register(Backend(...))`` once per backend. A backend claims URL schemes (``postgresql``, ``snowflake``,
    ...) and, optionally, recognises connection objects (DB-API, SQLAlchemy, ADBC) passed to the Python API.
    """
