"""The built-in lifecycle analyses, registered through the same hook as any third-party method."""

from __future__ import annotations

from collections.abc import Callable

from crmetrics.analysis import churn, cohort, funnel, pipeline, time_to_event
from crmetrics.analysis.base import AnalysisMethod
from crmetrics.hookspecs import hookimpl

METHODS = (cohort.METHOD, time_to_event.METHOD, funnel.METHOD, pipeline.METHOD, churn.METHOD)


@hookimpl
def register_analysis_methods(register: Callable[[AnalysisMethod], None]) -> None:
    """Register cohort, time_to_event, funnel, pipeline and churn."""
    for method in METHODS:
        register(method)
