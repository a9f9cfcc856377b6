"""`crmetrics analyze NAME`: run an analysis declared in the project and print its tables."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from crmetrics.cli.common import add_project_options, format_table, load_project, parse_context, print_result
from crmetrics.errors import QueryError
from crmetrics.result import plain

if TYPE_CHECKING:
    from crmetrics.analysis.base import AnalysisResult
    from crmetrics.model.types import SemanticModel
    from crmetrics.project import Project


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("analyze", help="run an analysis declared in the project")
    parser.add_argument("name", help="the analysis, as named under `analyses:`")
    parser.add_argument("--format", "-f", choices=("table", "json", "csv"), default="table")
    parser.add_argument("--table", help="with --format csv: the result table to print (default: the first)")
    parser.add_argument("--where", help="a filter over dimension references")
    parser.add_argument("--segment", action="append", default=[], dest="segments", help="a segment (repeatable)")
    add_project_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with load_project(args) as project:
        result = project.analyze(
            args.name,
            where=args.where,
            segments=args.segments,
            context=parse_context(args.context),
            connection=args.connection,
        )
        _print(args, result, project)
    return 0


def _print(args: argparse.Namespace, result: AnalysisResult, project: Project) -> None:
    if args.format == "json":
        tables = {name: json.loads(table.to_json()) for name, table in result.tables.items()}
        sys.stdout.write(json.dumps(tables, indent=2, ensure_ascii=False) + "\n")
    elif args.format == "csv":
        name = args.table or next(iter(result.tables), None)
        if name not in result.tables:
            raise QueryError(f"analysis '{args.name}' has no table '{name}'; it has: {', '.join(result.tables)}")
        print_result(result.tables[name], "csv")
    else:
        _print_tables(result, project.model, project.model.analyses[args.name].params)


def _print_tables(result: AnalysisResult, model: SemanticModel, params: dict[str, Any]) -> None:
    """The title, the headline figures, each table under its name (columns in the formats a report gives them:
    shares as percentages, amounts with cents, the analysis's metrics in their own format), and the notes."""
    from crmetrics.reports.tables import analysis_column_meta, analysis_metrics  # only the table view needs them

    metrics = analysis_metrics(model, params)
    row_limit = model.settings.get("row_limit")
    out = sys.stdout
    out.write(f"{result.title}\n\n")
    if result.figures:
        rows = [(f.label, plain(f.value)) for f in result.figures]
        out.write(format_table(["figure", "value"], rows) + "\n")
    for name, table in result.tables.items():
        out.write(f"{name}\n")
        formats = {c: analysis_column_meta(model, c, table.column(c), metrics)["format"] for c in table.columns}
        print_result(table, "table", row_limit, formats)
        out.write("\n")
    for note in result.notes:
        out.write(f"note: {note}\n")
