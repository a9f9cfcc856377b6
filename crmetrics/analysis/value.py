"""Built-in plugin: the customer-value analyses clv, satisfaction, basket and quality.

Registered through `register_analysis_methods`, exactly like a third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable

from crmetrics.analysis import basket, clv, quality, satisfaction
from crmetrics.analysis.base import AnalysisMethod
from crmetrics.hookspecs import hookimpl


@hookimpl
def register_analysis_methods(register: Callable[[AnalysisMethod], None]) -> None:
    """Register clv, satisfaction, basket and quality."""
    for module in (clv, satisfaction, basket, quality):
        register(module.METHOD)
