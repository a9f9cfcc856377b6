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
    add_project_options(parser, data=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import crmetrics

    try:
        project = crmetrics.load(args.project)
    except ConfigError as error:
        for issue in error.issues:
            sys.stderr.write(f"{issue}\n")
        count = len(error.issues)
        sys.stderr.write(f"{count} problem{'s' if count != 1 else ''} found\n")
        report_problems(get_plugin_manager()[1])  # a broken plugin often explains an unknown method
        return 2
    report_problems(project.plugins)
    model = project.model
    sys.stdout.write(
        f"ok: {model.name}: {len(model.entities)} entities, {len(model.metrics)} metrics, "
        f"{len(model.segments)} segments, {len(model.analyses)} analyses ({len(model.files)} files)\n"
    )
    return 0
