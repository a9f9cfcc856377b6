"""Templates and formats: the sandboxed environment over the project's `templates/` folder and the built-ins,
and `render_document`, which hands a built report to a format plugin.

A project overrides any built-in template by putting a file of the same name in `<project>/templates/`
(e.g. `templates/report.html.j2`, or just `templates/html/kpis.html.j2`). Templates get plain data only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crmetrics.errors import RenderError
from crmetrics.reports.base import Output, RenderRequest, ReportFormat
from crmetrics.reports.charts import available_renderer, to_svg
from crmetrics.reports.charts.vega import time_label
from crmetrics.reports.formatting import change_text, fmt, short_number
from crmetrics.reports.sandbox import make_environment

__all__ = ["environment", "render_document"]

PROJECT_TEMPLATES = "templates"


@lru_cache(maxsize=16)
def _environment(project_templates: str | None) -> ImmutableSandboxedEnvironment:
    loaders: list[Any] = []
    if project_templates:
        loaders.append(FileSystemLoader(project_templates))
    loaders.append(PackageLoader("crmetrics.reports", "templates"))
    env = make_environment(ChoiceLoader(loaders))
    env.filters.update(fmt=fmt, short=short_number, change=change_text, time_label=time_label)
    return env


def environment(project_root: str | os.PathLike | None) -> ImmutableSandboxedEnvironment:
    """The sandboxed environment for a project: its own `templates/` first, then the built-in templates."""
    folder = Path(project_root) / PROJECT_TEMPLATES if project_root else None
    return _environment(str(folder) if folder and folder.is_dir() else None)


def render_document(
    document: dict[str, Any],
    fmt_: ReportFormat,
    project_root: str | os.PathLike | None = None,
    options: Mapping[str, Any] | None = None,
) -> Output:
    """Render a built report with a format plugin; a template error names the format and the template."""
    env = environment(project_root)
    options = dict(options or {})
    renderer = available_renderer(options.get("charts", "builtin"))
    options["charts"] = renderer

    def template(name: str, **data: Any) -> str:
        try:
            return env.get_template(name).render(**data)
        except TemplateError as error:
            where = getattr(error, "name", None) or name
            line = getattr(error, "lineno", None)
            at = f"{where}:{line}" if line else where
            raise RenderError(f"format '{fmt_.name}': template {at}: {error}") from None

    def chart_svg(chart: dict[str, Any]) -> str:
        return to_svg(chart["spec"], chart.get("title", ""), renderer) or ""

    request = RenderRequest(document=document, template=template, chart_svg=chart_svg, options=options)
    return fmt_.render(request)
