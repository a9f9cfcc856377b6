"""`crmetrics plugins`: the installed plugins, what each registered, and the plugins that failed to load."""

from __future__ import annotations

import argparse
import json
import sys

from crmetrics.cli.common import format_table
from crmetrics.plugins import Registry, get_plugin_manager


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plugins", help="installed plugins, their analysis methods, formats and backends")
    parser.add_argument("--format", "-f", choices=("table", "json"), default="table")
    parser.set_defaults(run=run)


def rows(registry: Registry) -> list[tuple[str, str, str, str]]:
    """(plugin, kind, name, description) for everything registered, sorted by plugin, kind and name."""
    found = []
    for (kind, name), plugin in registry.owners.items():
        item = registry.of(kind)[name]
        found.append((plugin, kind, name, getattr(item, "description", "") or ""))
    return sorted(found)


def report_problems(registry: Registry) -> None:
    """One warning line per broken plugin, with its name and the reason, on stderr."""
    for problem in registry.problems:
        sys.stderr.write(f"warning: {problem}\n")


def run(args: argparse.Namespace) -> int:
    _, registry = get_plugin_manager()
    found = rows(registry)
    if args.format == "json":
        payload = {
            "plugins": [{"plugin": p, "kind": k, "name": n, "description": d} for p, k, n, d in found],
            "problems": [{"plugin": p.plugin, "reason": p.reason} for p in registry.problems],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        sys.stdout.write(format_table(["plugin", "kind", "name", "description"], found, row_limit=100_000))
    report_problems(registry)
    return 0
