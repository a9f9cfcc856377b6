"""The plugin system: built-ins through the hooks, broken third-party plugins reported and isolated, strict mode,
one manager per project, crmetrics.testing, the documented hooks, and the NPS plugin end to end."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import sys
import types
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest

import crmetrics
from crmetrics import hookspecs, plugins
from crmetrics.analysis.base import AnalysisMethod, AnalysisResult
from crmetrics.cli import main
from crmetrics.dsl.schema import Obj
from crmetrics.errors import PluginError
from crmetrics.hookspecs import hookimpl
from crmetrics.testing import isolated_plugin_manager, registered, write_project
from crmetrics.testing import register_plugin as register_plugin

ROOT = Path(__file__).resolve().parents[1]
BUILTIN_METHODS = {"rfm", "profile", "quadrant", "pareto", "new_vs_returning"}


def method(name: str, parameters=None) -> AnalysisMethod:
    return AnalysisMethod(name, f"the {name} method", parameters or Obj(), lambda ctx: AnalysisResult(name, name, name))


def plugin_module(name: str, **hooks) -> types.ModuleType:
    """A throw-away plugin module with the given hook implementations."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        function.__name__ = hook_name
        setattr(module, hook_name, hookimpl(function))
    return module


def good(register):
    register(method("shiny"))


def test_builtin_methods_register_through_the_hook():
    _, registry = isolated_plugin_manager()
    owners = {name: registry.owners[("analysis method", name)] for name in BUILTIN_METHODS}
    assert set(owners.values()) == {"crmetrics.analysis.builtin"}
    assert "crmetrics.analysis.builtin" in plugins.BUILTIN_PLUGINS
    assert not registry.problems


def test_a_third_party_method_is_registered():
    _, registry = isolated_plugin_manager(plugin_module("crmetrics_shiny", register_analysis_methods=good))
    assert registry.of("analysis method")["shiny"].description == "the shiny method"


def _wrong_signature(register, colour):  # pluggy: an argument the hook does not have
    register(method("x"))


def _bad_schema(register):
    register(method("bad", parameters={"entity": "a string"}))


def _taken_name(register):
    register(method("rfm"))


def _crash(register):
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    "module, reason",
    [
        (plugin_module("p_signature", register_analysis_methods=_wrong_signature), "colour"),
        (plugin_module("p_misspelt", register_analysis_method=good), "unknown hook 'register_analysis_method'"),
        (plugin_module("p_schema", register_analysis_methods=_bad_schema), "parameters must be a"),
        (plugin_module("p_taken", register_analysis_methods=_taken_name), "registered by both"),
        (plugin_module("p_crash", register_analysis_methods=_crash), "RuntimeError: boom"),
    ],
)
def test_a_broken_plugin_is_reported_and_isolated(module, reason):
    other = plugin_module("crmetrics_shiny", register_analysis_methods=good)
    _, registry = isolated_plugin_manager(module, other, strict=False)
    (problem,) = registry.problems
    assert reason in problem.reason
    assert problem.plugin != "crmetrics_shiny"
    methods = registry.of("analysis method")
    assert set(methods) >= BUILTIN_METHODS and "shiny" in methods  # the core and the other plugins carry on
    with pytest.raises(PluginError, match=re.escape(reason)):
        isolated_plugin_manager(module, strict=True)


def fake_entry_points(*pairs: tuple[str, str]):
    found = [EntryPoint(name, value, "crmetrics") for name, value in pairs]
    return lambda group: found if group == "crmetrics" else []


def test_an_entry_point_that_fails_to_import(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(plugins, "entry_points", fake_entry_points(("broken", "crmetrics_no_such_module_xyz")))
    _, registry = plugins.get_plugin_manager(strict=False)
    (problem,) = registry.problems
    assert problem.plugin == "broken" and "ModuleNotFoundError" in problem.reason
    assert main(["plugins"]) == 0
    captured = capsys.readouterr()
    assert "rfm" in captured.out
    assert "warning: plugin 'broken': ModuleNotFoundError" in captured.err
    path = write_project(
        tmp_path, {"r": {"method": "rfm", "entity": "customers", "events": "orders", "monetary": "orders.revenue"}}
    )
    assert main(["validate", "--project", str(path)]) == 0
    assert "warning: plugin 'broken'" in capsys.readouterr().err
    monkeypatch.setenv("CRMETRICS_STRICT_PLUGINS", "1")
    assert main(["validate", "--project", str(path)]) == 2
    assert "CRM600" in capsys.readouterr().err


def test_validate_names_the_broken_plugin_next_to_the_unknown_method(tmp_path, capsys):
    path = write_project(tmp_path, {"x": {"method": "shiny"}})
    broken = plugin_module("crmetrics_shiny", register_analysis_methods=_crash)
    with registered(broken):
        assert main(["validate", "--project", str(path)]) == 2
    err = capsys.readouterr().err
    assert "CRM701 unknown analysis method 'shiny'" in err and "RuntimeError: boom" in err


def test_plugins_json_lists_owners(capsys):
    with registered(plugin_module("crmetrics_shiny", register_analysis_methods=good)):
        assert main(["plugins", "--format", "json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    rows = {(p["kind"], p["name"]): p["plugin"] for p in payload["plugins"]}
    assert rows[("analysis method", "rfm")] == "crmetrics.analysis.builtin"
    assert ("analysis method", "shiny") in rows and payload["problems"] == []


def test_each_project_has_its_own_plugins(tmp_path):
    shiny = plugin_module("crmetrics_shiny", register_analysis_methods=good)
    with_plugin = crmetrics.load(write_project(tmp_path / "a", {"s": {"method": "shiny"}}), plugins=[shiny])
    assert "shiny" in with_plugin.plugins.of("analysis method")
    with pytest.raises(crmetrics.ConfigError, match="CRM701"):
        crmetrics.load(write_project(tmp_path / "b", {"s": {"method": "shiny"}}))
    with registered(shiny):
        assert "shiny" in crmetrics.load(write_project(tmp_path / "c", {"s": {"method": "shiny"}})).plugins.of(
            "analysis method"
        )
    assert "shiny" not in isolated_plugin_manager()[1].of("analysis method")  # the scope ended


def test_register_plugin_fixture_scopes_to_the_test(register_plugin):
    register_plugin(plugin_module("crmetrics_shiny", register_analysis_methods=good))
    assert "shiny" in plugins.get_plugin_manager(entry_points_too=False)[1].of("analysis method")


def test_parameters_are_validated_with_locations(tmp_path):
    path = write_project(
        tmp_path,
        {
            "r": {
                "method": "rfm",
                "entity": "customers",
                "events": "orders",
                "monetary": "orders.revenue",
                "bins": "five",
                "binz": 3,
            }
        },
    )
    with pytest.raises(crmetrics.ConfigError) as error:
        crmetrics.load(path)
    text = str(error.value)
    assert re.search(r"crmetrics\.yml:\d+:\d+: CRM110 expected an integer", text)
    assert "unknown key 'binz'" in text and "did you mean 'bins'?" in text.lower()


# --- documentation -------------------------------------------------------------------------------------------


def documented_hooks() -> dict[str, str]:
    """{hook name: documented signature} from the `### \\`name(args)\\`` headings of docs/plugins.md."""
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    return {m.group(1): m.group(0).strip("`# ") for m in re.finditer(r"^### `(\w+)\(([^)]*)\)`", text, re.M)}


def test_every_hook_is_documented_with_its_signature():
    specs = {
        name: f"{name}({', '.join(inspect.signature(function).parameters)})"
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "crmetrics_spec")
    }
    assert specs, "no hook specifications found"
    documented = documented_hooks()
    for name, signature in specs.items():
        assert name in documented, f"hook {name} has no section in docs/plugins.md"
        assert documented[name] == signature, f"docs/plugins.md documents {documented[name]}, the hook is {signature}"
    assert set(documented) <= set(specs), (
        f"docs/plugins.md documents hooks that do not exist: {set(documented) - set(specs)}"
    )
    for name in specs:
        assert getattr(hookspecs, name).__doc__, f"hook {name} has no docstring"


# --- the NPS plugin, installed ---------------------------------------------------------------------------------

nps_installed = pytest.mark.skipif(
    not any(ep.value == "crmetrics_nps" for ep in entry_points(group="crmetrics")),
    reason="crmetrics-nps is not installed (pip install -e plugins/crmetrics-nps)",
)


@nps_installed
def test_the_nps_plugin_end_to_end_through_the_cli(tmp_path):
    analyses = {
        "nps_monthly": {"method": "nps", "responses": "nps_responses", "score": "nps_responses.score", "grain": "month"}
    }
    path = write_project(tmp_path, analyses)
    exe = shutil.which("crmetrics")
    command = [exe] if exe else [sys.executable, "-m", "crmetrics.cli"]
    done = subprocess.run(
        [*command, "analyze", "nps_monthly", "-p", str(path), "-f", "json"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    tables = json.loads(done.stdout)
    months = {row["period"]: row for row in tables["nps"]}
    # January: 10 and 9 (promoters); February: 8, 7 (passives), 6 (detractor); March: 0, NULL, 10
    assert (months["2024-01-01"]["responses"], months["2024-01-01"]["nps"]) == (2, 100)
    assert (months["2024-02-01"]["responses"], months["2024-02-01"]["detractors"]) == (3, 1)
    assert months["2024-03-01"]["responses"] == 2 and months["2024-03-01"]["nps"] == 0
    listing = subprocess.run([*command, "plugins"], capture_output=True, text=True, check=True).stdout
    assert re.search(r"crmetrics-nps:nps\s+analysis method\s+nps", listing)
