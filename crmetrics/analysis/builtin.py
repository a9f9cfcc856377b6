"""Built-in plugin: the customer-value analyses rfm, profile, quadrant, pareto and new_vs_returning.

Registered through `register_analysis_methods`, exactly like a third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable

from crmetrics.analysis import new_vs_returning, pareto, profile, quadrant, rfm
from crmetrics.analysis.base import AnalysisMethod
from crmetrics.hookspecs import hookimpl


@hookimpl
def register_analysis_methods(register: Callable[[AnalysisMethod], None]) -> None:
    """Register rfm, profile, quadrant, pareto and new_vs_returning."""
    for module in (rfm, profile, quadrant, pareto, new_vs_returning):
        register(module.METHOD)
