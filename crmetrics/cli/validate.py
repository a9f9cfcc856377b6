"""`crmetrics validate`: check the project and print every problem as file:line:col."""

from __future__ import annotations

import argparse
import sys

from crmetrics.cli.common import add_project_options
from crmetrics.cli.plugins import report_problems
from crmetrics.errors import ConfigError
from crmetrics.plugins import get_plugin_manager


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("validate", help="check the project; print file:line:col for each problem")
    add_project_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import crmetrics

    try:
        project = crmetrics.load(args.project)
    except ConfigError as error:
        for issue in error.issues:
            sys.stderr.write(f"{issue}\n")
        sys.stderr.write(f"{_count(len(error.issues), 'problem')} found\n")
        report_problems(get_plugin_manager()[1])  # a broken plugin often explains an unknown method
        return 2
    report_problems(project.plugins)
    model = project.model
    database = ""
    if args.connection or model.connection:
        problems = project.check_database(args.connection)
        for issue in problems:
            sys.stderr.write(f"{issue}\n")
        if problems:
            sys.stderr.write(f"{_count(len(problems), 'problem')} found in the database\n")
            return 2
        database = ", database checked"
    counts = [
        _count(len(model.entities), "entity", "entities"),
        _count(len(model.metrics), "metric"),
        _count(len(model.segments), "segment"),
        _count(len(model.analyses), "analysis", "analyses"),
    ]
    sys.stdout.write(f"ok: {model.name}: {', '.join(counts)} ({_count(len(model.files), 'file')}{database})\n")
    return 0


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"
