"""Reports: YAML definitions built into plain data, rendered by format plugins (html, md, json, csv, ...)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crmetrics.errors import ReferenceNotFound
from crmetrics.reports.base import RenderRequest, ReportFormat, write_output
from crmetrics.reports.builder import build_document, resolve_params
from crmetrics.reports.builtin import report_tables
from crmetrics.reports.render import render_document

if TYPE_CHECKING:
    from crmetrics.project import Project

__all__ = [
    "RenderRequest",
    "ReportFormat",
    "build_document",
    "render_report",
    "report_format",
    "report_tables",
    "resolve_params",
]


# formats shipped as separate distributions in plugins/: a missing one is named with the command that installs it
PLUGIN_FORMATS = {"xlsx": "crmetrics-xlsx"}


def report_format(project: Project, name: str) -> ReportFormat:
    """The installed format `name` (built-in or from a plugin)."""
    formats = project.plugins.of("report format")
    if name not in formats:
        error = ReferenceNotFound("report format", name, formats)
        package = PLUGIN_FORMATS.get(name.lower())
        if package:
            # same code and kind, one message: the format exists, it is just not installed
            error.args = (
                f"unknown report format '{name}': it comes with the {package} plugin; install it with"
                f" `pip install {package}` (from a crmetrics checkout: `pip install -e plugins/{package}`)",
            )
        raise error
    return formats[name]


def render_report(
    project: Project,
    name: str,
    format: str = "html",
    out: str | os.PathLike | None = None,
    options: Mapping[str, Any] | None = None,
    keep_going: bool = False,
    **params: Any,
) -> Path:
    """Build report `name`, render it as `format` and write it to `out` (default: `<name><extension>`).

    `params` override the YAML's parameters (see `resolve_params`); with `keep_going` a failing section is shown
    as a warning in its place instead of stopping the report."""
    fmt = report_format(project, format)
    raw = project.model.reports.get(name)
    if raw is None:
        raise ReferenceNotFound("report", name, project.model.reports)
    params_ = resolve_params(raw.get("parameters") or {}, **params)
    document = build_document(project, name, params_, keep_going=keep_going)
    target = Path(out) if out is not None else Path(f"{name}{fmt.extension}")
    return write_output(render_document(document, fmt, project.model.root, options), target)
