"""Build a report: resolve its parameters, run its sections, and return the whole report as plain data.

The result (`document`) holds only dicts, lists, strings, numbers and None, so it can be written as JSON as is and
handed to sandboxed templates without exposing a connection, an engine or the project.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError

from crmetrics.errors import CrmetricsError, QueryError, ReferenceNotFound, RenderError
from crmetrics.model.expressions import parse_expression
from crmetrics.reports.period import Period
from crmetrics.reports.render import environment
from crmetrics.reports.sections import Params, SectionBuilder
from crmetrics.reports.spec import as_list, parse_date

if TYPE_CHECKING:
    from crmetrics.project import Project

__all__ = ["build_document", "resolve_params"]

Log = Callable[[str], None]


def resolve_params(
    raw: Mapping[str, Any],
    period: str | tuple[str, str] | None = None,
    segments: Sequence[str] | None = None,
    where: str | None = None,
    grain: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> Params:
    """The YAML's `parameters`, overridden by the caller's: `period` as `START..END` or a (start, end) pair."""
    yaml_period = raw.get("period")
    wheres = [w for w in (raw.get("where"), where) if w]
    for text in wheres:  # each on its own first: `x') OR ('1` must not close the other filter's parenthesis
        parse_expression(text)
    params = Params(
        grain=grain or raw.get("grain", "month"),
        segments=[*as_list(raw.get("segments")), *(segments or [])],
        where=" AND ".join(f"({w})" for w in wheres) or None,
        context=dict(context or {}),
    )
    if isinstance(period, str):
        start, sep, end = period.partition("..")
        if not sep:
            raise QueryError(f"--period needs START..END (YYYY-MM-DD..YYYY-MM-DD), got {period!r}")
        period = (start, end)
    if period is None and yaml_period:
        period = (yaml_period["start"], yaml_period["end"])
    if period is not None:
        try:
            params.period = Period(parse_date(period[0]), parse_date(period[1]))
        except ValueError as error:
            raise QueryError(str(error)) from None
        if params.period.end < params.period.start:
            raise QueryError(f"the period ends ({period[1]}) before it starts ({period[0]})")
    return params


def build_document(
    project: Project,
    name: str,
    params: Params | None = None,
    keep_going: bool = False,
    log: Log | None = None,
) -> dict[str, Any]:
    """Run report `name` and return it as plain data. With `keep_going`, a failing section becomes an error
    section (and a warning) instead of stopping the report; the demo uses that so one broken plugin cannot
    take the whole report down."""
    if name not in project.model.reports:
        raise ReferenceNotFound("report", name, project.model.reports)
    raw = project.model.reports[name]
    params = params or resolve_params(raw.get("parameters") or {})
    env = environment(project.model.root)
    report_info = {"name": name, "title": raw["title"], "period": _period_dict(params.period)}

    def narrative(text: str, data: dict[str, Any]) -> str:
        try:
            return env.from_string(text).render(report=report_info, **data).strip()
        except TemplateError as error:
            raise RenderError(f"report '{name}': narrative text failed: {error}") from None

    builder = SectionBuilder(project, params, narrative)
    sections: list[dict[str, Any]] = []
    warnings: list[str] = []
    for index, section in enumerate(raw["sections"]):
        for kind, item in _expand(project, section):
            started = time.perf_counter()
            label = item.get("title") or item.get("analysis") or kind
            try:
                sections.append(getattr(builder, kind)(item))
            except Exception as error:
                where = f"section {index + 1} ({kind} '{label}')"
                if isinstance(error, CrmetricsError) and not keep_going:
                    # the same error, saying which section of a long report raised it
                    error.args = (f"{where}: {error.message}", *error.args[1:])
                    raise
                if not keep_going or not _recoverable(error, kind):
                    raise
                message = f"{where}: {error}"
                warnings.append(message)
                sections.append({"type": "error", "title": str(label), "description": "", "message": str(error)})
            if log:
                log(f"{label} ({time.perf_counter() - started:.2f} s)")
    return {
        "name": name,
        "title": raw["title"],
        "description": raw.get("description", ""),
        "project": project.model.name,
        "generated_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "parameters": {
            "period": _period_dict(params.period),
            "previous_period": _period_dict(params.period.previous() if params.period else None),
            "grain": params.grain,
            "segments": params.segments,
            "where": params.where,
        },
        "sections": sections,
        "warnings": warnings,
    }


def _recoverable(error: Exception, kind: str) -> bool:
    # analyses are third-party code: any failure is contained; elsewhere only user errors are
    return isinstance(error, CrmetricsError) or kind == "analysis"


def _expand(project: Project, section: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """`type: analyses` stands for one analysis section per declared analysis (minus `exclude`)."""
    if section["type"] != "analyses":
        return [(section["type"], section)]
    skip = set(as_list(section.get("exclude")))
    common = {k: v for k, v in section.items() if k not in ("type", "exclude", "title", "description")}
    return [
        ("analysis", {**common, "type": "analysis", "analysis": name})
        for name in project.model.analyses
        if name not in skip
    ]


def _period_dict(period: Period | None) -> dict[str, str] | None:
    if period is None:
        return None
    return {"start": period.start.isoformat(), "end": period.end.isoformat(), "label": period.label()}
