"""`crmetrics report`: build a report declared under `reports:` and write it in a format (html, md, json, csv, ...)."""

from __future__ import annotations

import argparse
import sys

from crmetrics.cli.common import add_project_options, load_project, parse_context

# crmetrics.reports.charts.RENDERERS, spelled out: importing the reports package (Jinja, charts) here would slow
# down every command's start-up (tests/test_cli_startup.py keeps the two in step)
RENDERERS = ("builtin", "vl-convert", "auto")


def add_render_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `report` and `demo`."""
    parser.add_argument("--interactive", action="store_true", help="html: sortable, filterable tables (offline JS)")
    parser.add_argument(
        "--charts",
        choices=RENDERERS,
        default="builtin",
        help="chart renderer: builtin (default, fast), vl-convert (the charts extra), auto (vl-convert when installed)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="render a report declared under `reports:`")
    parser.add_argument("name", help="the report's name")
    parser.add_argument("--format", "-f", default="html", help="html, md, json, csv or a plugin's format (html)")
    parser.add_argument("--output", "-o", help="file (or folder for csv) to write; default: NAME.EXT")
    parser.add_argument("--period", help="START..END (YYYY-MM-DD..YYYY-MM-DD), overrides the report's period")
    parser.add_argument("--segment", action="append", default=[], dest="segments", help="a segment (repeatable)")
    parser.add_argument("--where", help="a filter over dimension references, added to every section")
    parser.add_argument("--grain", choices=("day", "week", "month", "quarter", "year"), help="trend-line grain")
    parser.add_argument(
        "--keep-going", action="store_true", help="show a failing section as a warning instead of stopping"
    )
    add_render_options(parser)
    add_project_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from crmetrics.project import Project
    from crmetrics.reports import render_report

    project = load_project(args)  # loading opens no connection: only the project that queries needs closing
    if args.connection:  # the same model over another database
        project = Project(project.model, args.connection)
    with project:
        path = render_report(
            project,
            args.name,
            args.format,
            args.output,
            options={"interactive": args.interactive, "charts": args.charts},
            period=args.period,
            segments=args.segments,
            where=args.where,
            grain=args.grain,
            context=parse_context(args.context),
            keep_going=args.keep_going,
        )
    sys.stdout.write(f"{path}\n")
    return 0
