"""The plugin manager: built-in plugins, third-party plugins found through entry points, and what they register.

Each project gets its own manager and registry (no global state). A third-party plugin that fails to import or to
register is recorded as a `PluginProblem` with the distribution's name and the reason, and crmetrics carries on;
`CRMETRICS_STRICT_PLUGINS=1` (or `strict=True`) makes such a failure fatal, for plugin authors.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from crmetrics import hookspecs
from crmetrics.errors import PluginError

ENTRY_POINT_GROUP = "crmetrics"
BUILTIN_PLUGINS: tuple[str, ...] = (
    "crmetrics.engines.builtin",
    "crmetrics.reports.builtin",
    "crmetrics.analysis.lifecycle",
    "crmetrics.analysis.builtin",
    "crmetrics.analysis.value",
)
KINDS = {
    "register_analysis_methods": "analysis method",
    "register_report_formats": "report format",
    "register_backends": "backend",
}


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that could not be loaded or broke the contract."""

    plugin: str
    reason: str

    def __str__(self) -> str:
        return f"plugin '{self.plugin}': {self.reason}"


@dataclass
class Registry:
    """What the plugins registered, by kind and name, and which plugin registered each."""

    items: dict[str, dict[str, Any]] = field(default_factory=lambda: {kind: {} for kind in KINDS.values()})
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)

    def of(self, kind: str) -> dict[str, Any]:
        return self.items[kind]


# plugins registered in the current context only, by `crmetrics.testing.registered`: a test's plugin never leaks into
# another test or thread, and nothing is shared between projects outside such a block
SCOPED_PLUGINS: ContextVar[tuple[object, ...]] = ContextVar("crmetrics_scoped_plugins", default=())


def strict_from_env() -> bool:
    return os.environ.get("CRMETRICS_STRICT_PLUGINS", "").strip().lower() in ("1", "true", "yes")


def get_plugin_manager(
    entry_points_too: bool = True, strict: bool | None = None, extra: Iterable[object] = ()
) -> tuple[pluggy.PluginManager, Registry]:
    """A fresh manager with the built-ins, the installed third-party plugins and `extra`, and their registrations."""
    strict = strict_from_env() if strict is None else strict
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if entry_points_too:
        _load_entry_points(pm, registry, strict)
    for plugin in dict.fromkeys((*SCOPED_PLUGINS.get(), *extra)):  # once each, in order
        if pm.is_registered(plugin):  # also installed through its entry point: already there
            continue
        try:  # a wrong hook signature is refused here, as for an entry point
            pm.register(plugin)
        except pluggy.PluginValidationError as error:
            _fail(registry, PluginProblem(getattr(plugin, "__name__", repr(plugin)), str(error)), strict)
    _check(pm, registry, strict)
    for hook_name, kind in KINDS.items():
        _collect(pm, registry, hook_name, kind, strict)
    return pm, registry


def _fail(registry: Registry, problem: PluginProblem, strict: bool) -> None:
    if strict:
        raise PluginError(str(problem))
    registry.problems.append(problem)


def _load_entry_points(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        owner = ep.dist.name if ep.dist else ep.name
        try:
            plugin = ep.load()
            pm.register(plugin, name=f"{owner}:{ep.name}")
        except Exception as error:
            _fail(registry, PluginProblem(owner, f"{type(error).__name__}: {error}"), strict)


def _check(pm: pluggy.PluginManager, registry: Registry, strict: bool) -> None:
    """Misspelt hook names and wrong hook signatures are reported (pluggy's check_pending)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as error:
        plugin = pm.get_name(error.plugin) or str(error.plugin)
        _fail(registry, PluginProblem(plugin, str(error)), strict)
        pm.unregister(error.plugin)
        _check(pm, registry, strict)


def _collect(pm: pluggy.PluginManager, registry: Registry, hook_name: str, kind: str, strict: bool) -> None:
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin = impl.plugin_name

        def register(item: Any, plugin: str = plugin) -> None:
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin '{plugin}' registered a {kind} without a name")
            if name in registry.of(kind):
                raise PluginError(
                    f"{kind} '{name}' is registered by both '{registry.owners[(kind, name)]}' and '{plugin}'"
                )
            validate = getattr(item, "validate", None)
            if callable(validate):
                validate()
            registry.of(kind)[name] = item
            registry.owners[(kind, name)] = plugin

        try:
            impl.function(register=register)
        except Exception as error:
            if plugin in BUILTIN_PLUGINS:
                raise
            _fail(registry, PluginProblem(plugin, f"{type(error).__name__}: {error}"), strict)
