"""Every error crmetrics raises: one hierarchy, each class with a stable code (see docs/errors.md).

This module sits at the bottom of the import graph: it imports nothing from crmetrics.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where something was written: file, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Issue:
    """One problem found in a project, kept as data so that all of them can be reported at once."""

    code: str
    message: str
    location: Location | None = None
    path: tuple[str | int, ...] = ()
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        key = f" [{'.'.join(str(p) for p in self.path)}]" if self.path else ""
        hint = f"; did you mean '{self.suggestion}'?" if self.suggestion else ""
        return f"{where}{self.code} {self.message}{hint}{key}"


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to `name`, if one is close enough to be a likely typo."""
    choices = list(candidates)
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    prefix, dot, leaf = name.rpartition(".")
    if dot:  # entity.name: a shared entity prefix alone must not make 'customers.zzz' look like 'customers.age'
        siblings = {c.rpartition(".")[2]: c for c in choices if c.rpartition(".")[0].lower() == prefix.lower()}
        close = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)
        if close:
            return siblings[close[0]]
        elsewhere = [c for c in choices if c.rpartition(".")[2].lower() == leaf.lower()]
        if elsewhere:  # the right name on another entity: 'customers.channel' for 'orders.channel'
            return elsewhere[0]
        if siblings:
            return None
    matches = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


class CrmetricsError(Exception):
    """Base class of every public crmetrics exception; `code` is stable across releases."""

    code = "CRM000"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:
        return f"{self.code} {self.args[0]}"


class ConfigError(CrmetricsError):
    """The project's YAML is invalid; `issues` lists every problem with its file, line and column."""

    code = "CRM100"

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues) or "invalid project")

    def __str__(self) -> str:
        return str(self.args[0])


class ReferenceNotFound(CrmetricsError):
    """A metric, dimension, segment, analysis or report name that the project does not declare."""

    code = "CRM200"

    def __init__(self, kind: str, name: str, candidates: Iterable[str] = ()) -> None:
        self.kind, self.name = kind, name
        choices = sorted(candidates)
        self.suggestion = did_you_mean(name, choices)
        super().__init__(f"unknown {kind} '{name}'; {self._hint(choices)}")

    def _hint(self, choices: list[str]) -> str:
        """The likely typo's correction; else the names there are (a few) or that there are none."""
        if self.suggestion:
            return f"did you mean '{self.suggestion}'?"
        if not choices:
            installed = self.kind in ("analysis method", "report format", "backend")  # plugins, not YAML
            return f"no {self.kind} is {'installed' if installed else 'declared'}"
        shown = ", ".join(f"'{c}'" for c in choices[:8])
        return f"known: {shown}" + (f" and {len(choices) - 8} more" if len(choices) > 8 else "")


class QueryError(CrmetricsError):
    """A question that cannot be answered as asked (bad filter, unreachable dimension, ambiguous join)."""

    code = "CRM300"


class UnsafeExpressionError(QueryError):
    """A user expression that holds something other than references, literals, operators and allowed functions."""

    code = "CRM310"


class ContextError(QueryError):
    """A row filter needs a context variable that the caller did not supply (row-level security fails closed)."""

    code = "CRM320"


class CompileError(CrmetricsError):
    """The compiler cannot produce SQL for the target dialect."""

    code = "CRM400"


class ExecutionError(CrmetricsError):
    """The database rejected or failed to run a query."""

    code = "CRM500"


class ConnectionFailed(CrmetricsError):
    """A connection URL or object that crmetrics cannot open."""

    code = "CRM510"


class QueryTimeout(ExecutionError):
    """A query ran longer than `settings.query_timeout` (or `--timeout`) and was cancelled on the database."""

    code = "CRM520"


class UnsafeStatement(ExecutionError):
    """Something other than a single SELECT (or WITH ... SELECT) was about to be sent to a database."""

    code = "CRM530"


class MissingDriver(ConnectionFailed):
    """The database driver for a connection is not installed; the message names the pip extra that installs it."""

    code = "CRM511"


class PluginError(CrmetricsError):
    """A plugin failed to load or broke the plugin contract."""

    code = "CRM600"


class AnalysisError(CrmetricsError):
    """An analysis method was given parameters or data it cannot work with."""

    code = "CRM700"


class RenderError(CrmetricsError):
    """A report template failed to render."""

    code = "CRM800"
