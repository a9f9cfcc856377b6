"""`crmetrics compile` (print the SQL) and `crmetrics query` (run it)."""

from __future__ import annotations

import argparse
import sys

from crmetrics.cli.common import (
    add_project_options,
    add_query_options,
    load_project,
    parse_context,
    print_result,
    time_options,
)
from crmetrics.compiler.ranges import is_relative


def register(subparsers: argparse._SubParsersAction) -> None:
    compile_parser = subparsers.add_parser("compile", help="print the SQL of a question")
    add_query_options(compile_parser)
    add_project_options(compile_parser)
    compile_parser.add_argument("--dialect", help="sqlglot dialect (default: the project's)")
    compile_parser.set_defaults(run=run_compile)

    query_parser = subparsers.add_parser("query", help="answer a question")
    add_query_options(query_parser)
    add_project_options(query_parser)
    query_parser.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    query_parser.set_defaults(run=run_query)


def _question(args: argparse.Namespace) -> dict:
    return {
        "metrics": args.metrics,
        "by": args.by,
        "where": args.where,
        "segments": args.segments,
        "order_by": args.order_by,
        "limit": args.limit,
        "context": parse_context(args.context),
        **time_options(args),
    }


def run_compile(args: argparse.Namespace) -> int:
    with load_project(args) as project:
        sys.stdout.write(project.compile(**_question(args), dialect=args.dialect, pretty=True) + "\n")
    return 0


def run_query(args: argparse.Namespace) -> int:
    with load_project(args) as project:
        result = project.query(**_question(args), connection=args.connection)
        formats = {name: metric.format for name, metric in project.model.metrics.items()}
        print_result(result, args.format, project.model.settings.get("row_limit"), formats)
    if not result.rows and args.time_range and not args.today and is_relative(args.time_range):
        sys.stderr.write(  # on stderr: JSON and CSV output stay clean
            f"note: no rows; '{args.time_range}' counts back from today (--today YYYY-MM-DD counts from another day)\n"
        )
    return 0
