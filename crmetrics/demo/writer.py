"""Write the demo project: the model, the KPI library, the analyses whose methods are installed, and the report.

The folder it writes is an ordinary crmetrics project (`crmetrics.yml` plus included files), so the user can run
`crmetrics query`, `crmetrics analyze` and `crmetrics report` in it afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from crmetrics.dsl.schema import validate
from crmetrics.dsl.yamlfile import load_yaml
from crmetrics.errors import ConfigError, Location
from crmetrics.plugins import Registry

__all__ = ["DEMO_FOLDER", "LIBRARY", "read_yaml", "write_project"]

DEMO_FOLDER = Path(__file__).parent
# the KPI library: `metric_definitions/` at the top of the repository, in the wheel as crmetrics/metric_definitions
LIBRARY = DEMO_FOLDER.parent / "metric_definitions"
DATABASE = "demo.duckdb"
HEADER = """\
# The crmetrics demo project, written by `crmetrics demo`. Try, in this folder:
#   crmetrics list metrics
#   crmetrics query -m revenue -m average_order_value --by customers.region
#   crmetrics analyze customer_rfm
#   crmetrics report overview --format md -o report.md
"""


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file read as crmetrics reads it (YAML 1.2: `on:` is a key, not True), as plain dicts and lists."""
    data, issues = load_yaml(path.read_text(encoding="utf-8"), str(path), {})
    if issues:
        raise ConfigError(issues)
    return _plain(data)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=118)


def library_metrics(folder: Path = LIBRARY) -> set[str]:
    """Names of every metric the KPI library defines."""
    names: set[str] = set()
    for path in sorted(folder.glob("*.yml")):
        names |= set(read_yaml(path).get("metrics") or {})
    return names


def usable_analyses(registry: Registry, skipped: Callable[[str, str], None]) -> dict[str, Any]:
    """The demo analyses whose method is installed and accepts their parameters."""
    raw = read_yaml(DEMO_FOLDER / "analyses.yml")["analyses"]
    methods = registry.of("analysis method")
    kept = {}
    for name, spec in raw.items():
        method = methods.get(spec["method"])
        if method is None:
            where = f" (pip install {spec['plugin']}, from the crmetrics repository)" if "plugin" in spec else ""
            skipped(name, f"method '{spec['method']}' is not installed{where}")
            continue
        params = {k: v for k, v in spec.items() if k not in ("method", "plugin", "label", "description")}
        issues = validate(params, method.parameters, Location("analyses.yml", 1, 1))
        if issues:
            skipped(name, f"method '{spec['method']}' does not accept these parameters ({issues[0].message})")
            continue
        kept[name] = {k: v for k, v in spec.items() if k != "plugin"}
    return kept


def write_project(out: Path, registry: Registry, skipped: Callable[[str, str], None]) -> Path:
    """Write the demo project into `out` (next to its database) and return the path of `crmetrics.yml`."""
    import crmetrics

    out.mkdir(parents=True, exist_ok=True)
    model = read_yaml(DEMO_FOLDER / "project.yml")
    library = library_metrics()
    # the library defines the standard KPIs; the model keeps only the metrics the library does not have
    model_file = {
        "version": 1,
        "entities": model["entities"],
        "metrics": {k: v for k, v in model["metrics"].items() if k not in library},
        "segments": model["segments"],
    }
    (out / "model.yml").write_text("# Entities, extra metrics and segments of the demo CRM.\n" + _dump(model_file))
    target = out / "metric_definitions"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(LIBRARY, target, ignore=shutil.ignore_patterns("*.md"))
    shutil.copyfile(DEMO_FOLDER / "reports.yml", out / "reports.yml")
    analyses = usable_analyses(registry, skipped)
    main = {
        "version": 1,
        "name": model["name"],
        "description": model["description"],
        "connection": f"duckdb:///{DATABASE}",
        "include": ["model.yml", "metric_definitions/*.yml", "analyses.yml", "reports.yml"],
    }
    (out / "crmetrics.yml").write_text(HEADER + _dump(main), encoding="utf-8")
    # an analysis whose method rejects the demo data at load time (a newer method's own checks) is dropped too
    for _ in range(len(analyses) + 1):
        (out / "analyses.yml").write_text(_dump({"version": 1, "analyses": analyses}), encoding="utf-8")
        try:
            crmetrics.load(out / "crmetrics.yml").close()
            break
        except ConfigError as error:
            bad = {i.path[1] for i in error.issues if len(i.path) > 1 and i.path[0] == "analyses"}
            bad &= set(analyses)
            if not bad:
                raise
            for name in bad:
                skipped(name, next(i.message for i in error.issues if i.path[:2] == ("analyses", name)))
                del analyses[name]
    return out / "crmetrics.yml"
