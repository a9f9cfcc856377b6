"""`crmetrics.load()` and the `Project`: the Python API over a loaded model."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from crmetrics.analysis.base import AnalysisContext, AnalysisResult
from crmetrics.analysis.outputs import OutputsBuilder
from crmetrics.analysis.outputs import attach as attach_outputs
from crmetrics.compiler import build_query, compile_select, render
from crmetrics.compiler.periods import Calendar
from crmetrics.compiler.ranges import current_date
from crmetrics.dsl.loader import load_raw
from crmetrics.dsl.schema import validate
from crmetrics.engines.base import Engine
from crmetrics.engines.guard import SafeEngine
from crmetrics.errors import ConfigError, ConnectionFailed, Issue, Location, ReferenceNotFound, did_you_mean
from crmetrics.model.types import SemanticModel
from crmetrics.plugins import Registry, get_plugin_manager
from crmetrics.result import Result

SQL_CACHE_SIZE = 1024
UNREADABLE = frozenset({"CRM100", "CRM120", "CRM121", "CRM122"})  # syntax error, unreadable, empty, include missing


def load(
    path: str | os.PathLike = "crmetrics.yml",
    env: Mapping[str, str] | None = None,
    allow_outside: bool = False,
    plugins: Sequence[object] = (),
) -> Project:
    """Load, validate and resolve a project (a file, or a folder holding crmetrics.yml); raise ConfigError listing
    every problem with file:line:column.

    `plugins` are registered for this project only, next to the built-in and installed ones (as `crmetrics.testing`
    does for one test).
    """
    raw = load_raw(path, env, allow_outside)
    unreadable = [i for i in raw.issues if i.code in UNREADABLE]
    if unreadable:  # a file that cannot be read leaves the model incomplete: name checks would only add noise
        raise ConfigError(sorted(raw.issues, key=_issue_order))
    settings = raw.data.get("settings") if isinstance(raw.data.get("settings"), dict) else {}
    registry = None  # without analyses the plugin scan waits until something needs it (faster start)
    if raw.data.get("analyses") or plugins:
        registry = get_plugin_manager(strict=settings.get("strict_plugins"), extra=plugins)[1]
    methods = registry.of("analysis method") if registry is not None else {}
    builder = OutputsBuilder(raw, allow_outside, methods)
    model = builder.build()
    issues = raw.issues + builder.issues
    if model.analyses and registry is not None:  # checks against the model only once the model is whole
        issues += check_analyses(model, registry, model_checks=not issues)
    if not issues:  # per-entity analysis outputs are built over the complete, valid model
        issues += attach_outputs(model, builder.virtual, methods)
    project = Project(model)
    project._registry = registry
    if model.reports and not issues:
        from crmetrics.reports.spec import check_reports  # reports pull in Jinja: only when a project has some

        issues += check_reports(model)
    if issues:
        raise ConfigError(sorted(issues, key=_issue_order))
    return project


_KEY_SCALARS = (str, int, float, bool, type(None), dt.date, dt.datetime)


def _frozen(value: Any) -> Hashable | None:
    """`value` as a hashable cache key (lists become tuples, dicts sorted items); None when it cannot be one."""

    def freeze(item: Any) -> Hashable:
        if isinstance(item, list | tuple):
            return tuple(freeze(i) for i in item)
        if isinstance(item, Mapping):
            return tuple(sorted((str(k), freeze(v)) for k, v in item.items()))
        if type(item) not in _KEY_SCALARS:  # a subclass may fake __eq__/__hash__ and hit another tenant's SQL
            raise TypeError(type(item).__name__)
        return (type(item).__name__, repr(item))  # 1, 1.0, True and -0.0, 0.0 stay different keys

    try:
        return freeze(value)
    except TypeError:
        return None


def _issue_order(issue: Issue) -> tuple:
    loc = issue.location
    return (loc.file, loc.line, loc.column) if loc else ("", 0, 0)


def check_analyses(model: SemanticModel, plugins: Registry, model_checks: bool = True) -> list[Issue]:
    """Each analysis names an installed method and gives it valid parameters (file:line:column on error)."""
    methods = plugins.of("analysis method")
    issues: list[Issue] = []
    for analysis in model.analyses.values():
        method = methods.get(analysis.method)
        if method is None:
            issues.append(
                Issue(
                    "CRM701",
                    f"unknown analysis method '{analysis.method}'",
                    analysis.location,
                    ("analyses", analysis.name, "method"),
                    did_you_mean(analysis.method, methods),
                )
            )
            continue
        loc = getattr(analysis.params, "loc", analysis.location)
        found = validate(analysis.params, method.parameters, loc, ("analyses", analysis.name))
        if not found and model_checks and method.check is not None:
            found = _check_params(model, analysis, method.check)
        issues += found
    return issues


def _check_params(model: SemanticModel, analysis: Any, check: Any) -> list[Issue]:
    """The method's own checks against the model, at the offending parameter's file:line:column."""
    params = analysis.params
    issues = []
    try:
        problems = list(check(model, params))
    except Exception as error:  # a plugin's bug is reported where the analysis is configured, not raised
        message = f"analysis method '{analysis.method}' failed to check its parameters: {type(error).__name__}: {error}"
        return [Issue("CRM703", message, analysis.location, ("analyses", analysis.name))]
    for key, message in problems:
        loc = params.value_loc(key) if hasattr(params, "value_loc") and key in params else analysis.location
        issues.append(Issue("CRM702", message, loc, ("analyses", analysis.name, key)))
    return issues


class Project:
    """A loaded project. Safe to share between threads: the model is read-only and each thread gets its own cursor."""

    def __init__(self, model: SemanticModel, connection: Any = None) -> None:
        self.model = model
        self._connection = connection
        self._engines: dict[str, Engine] = {}
        self._registry: Registry | None = None
        self._sql_cache: OrderedDict[Hashable, tuple[str, list[str]]] = OrderedDict()
        self._lock = threading.Lock()
        self._calendar = Calendar.from_settings(model.settings)  # relative ranges count from its zone's today

    @property
    def name(self) -> str:
        return self.model.name

    def compile(
        self,
        metrics: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        where: str | None = None,
        segments: str | Sequence[str] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        dialect: str | None = None,
        context: Mapping[str, Any] | None = None,
        pretty: bool = False,
        **time: Any,
    ) -> str:
        """SQL for the question, in `dialect` (default: the project's).

        Time options (docs/time.md): start, end (inclusive dates), time_range ("last 90 days"), today,
        fill_gaps, compare ("period" or "year").
        """
        question = (metrics, by, where, segments, order_by, limit, context)
        return self._compiled(dialect or self.model.dialect, pretty, question, time)[0]

    def query(
        self,
        metrics: str | Sequence[str],
        by: str | Sequence[str] | None = None,
        where: str | None = None,
        segments: str | Sequence[str] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        context: Mapping[str, Any] | None = None,
        connection: Any = None,
        **time: Any,
    ) -> Result:
        """Run the question on the project's database (or `connection`) and return a `Result`.

        Takes the time options of `compile` as keyword arguments.
        """
        engine = self.engine(connection)
        question = (metrics, by, where, segments, order_by, limit, context)
        sql, columns = self._compiled(engine.dialect, False, question, time)
        return engine.execute(sql, columns)

    def _compiled(self, dialect: str, pretty: bool, question: tuple, time: dict[str, Any]) -> tuple[str, list[str]]:
        """The SQL and result columns of a question. An embedding product asks the same questions again and again,
        so each (question, dialect) is compiled once and kept (LRU, per project; relative time ranges are keyed by
        today's date in the project time zone, as the ranges are resolved)."""
        key = _frozen((dialect, pretty, question, time, current_date(self._calendar)))
        if key is not None:
            with self._lock:
                if key in self._sql_cache:
                    self._sql_cache.move_to_end(key)
                    return self._sql_cache[key]
        query = build_query(self.model, *question, **time)
        compiled = render(compile_select(self.model, query), dialect, pretty), query.columns
        if key is not None:
            with self._lock:
                self._sql_cache[key] = compiled
                if len(self._sql_cache) > SQL_CACHE_SIZE:
                    self._sql_cache.popitem(last=False)
        return compiled

    def analyze(
        self,
        name: str,
        where: str | None = None,
        segments: str | Sequence[str] | None = None,
        context: Mapping[str, Any] | None = None,
        connection: Any = None,
        **overrides: Any,
    ) -> AnalysisResult:
        """Run the analysis `name` declared in the YAML; keyword arguments override its parameters."""
        if name not in self.model.analyses:
            raise ReferenceNotFound("analysis", name, self.model.analyses)
        analysis = self.model.analyses[name]
        methods = self.plugins.of("analysis method")
        if analysis.method not in methods:
            raise ReferenceNotFound("analysis method", analysis.method, methods)
        method = methods[analysis.method]
        params = {**analysis.params, **overrides}
        if overrides:
            issues = validate(params, method.parameters, analysis.location or Location("<overrides>", 1, 1))
            if not issues and method.check is not None:  # overrides get the same model checks as the YAML
                issues = _check_params(self.model, dataclasses.replace(analysis, params=params), method.check)
            if issues:
                raise ConfigError(issues)
        segment_names = [segments] if isinstance(segments, str) else list(segments or [])
        ctx = AnalysisContext(
            name, params, self.model, self.engine(connection), where, segment_names, dict(context or {})
        )
        return method.run(ctx)

    def check_database(self, connection: Any = None) -> list[Issue]:
        """Problems the database reports for the project's entities (missing tables or columns), at their YAML."""
        from crmetrics.probe import probe_database

        return probe_database(self.model, self.engine(connection))

    @property
    def plugins(self) -> Registry:
        """What the built-in and installed plugins registered (loaded on first use, once per project)."""
        with self._lock:
            if self._registry is None:
                self._registry = get_plugin_manager(strict=self.model.settings.get("strict_plugins"))[1]
            return self._registry

    def engine(self, connection: Any = None) -> Engine:
        """The engine for `connection` (URL, Engine or driver connection), else the project's; opened once per URL.

        Whatever it is, it comes wrapped in the read-only guard with the project's `settings.query_timeout`.
        """
        return SafeEngine(self._engine(connection), self.model.settings.get("query_timeout"))

    def _engine(self, connection: Any) -> Engine:
        target = connection if connection is not None else self._connection or self.model.connection
        if target is not None and not isinstance(target, str):
            return target if isinstance(target, Engine) else self._wrap(target)
        key = target or "duckdb://"
        with self._lock:
            engine = self._engines.get(key)
        if engine is None:
            engine = self._open(key)
            with self._lock:
                engine = self._engines.setdefault(key, engine)
        return engine

    def _open(self, url: str) -> Engine:
        scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
        if scheme == "duckdb":  # the default needs no plugin scan: `crmetrics query` starts faster
            from crmetrics.engines.builtin import open_duckdb

            return open_duckdb(url, self.model.root, self.model.settings)
        backends = self.plugins.of("backend").values()
        for backend in backends:
            if scheme in backend.schemes:
                return backend.open(url, self.model.root, self.model.settings)
        known = sorted({s for b in backends for s in b.schemes})
        raise ConnectionFailed(f"no backend for connection {url!r}; installed backends open: {', '.join(known)}")

    def _wrap(self, connection: Any) -> Engine:
        for backend in self.plugins.of("backend").values():
            if backend.wraps is not None and (engine := backend.wraps(connection)) is not None:
                return engine
        raise ConnectionFailed(f"no backend recognises a {type(connection).__module__}.{type(connection).__name__}")

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections this project opened (also on leaving a `with crmetrics.load(...) as project:`)."""
        with self._lock:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()
