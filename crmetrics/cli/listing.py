"""`crmetrics list metrics|dimensions|segments|analyses|reports`."""

from __future__ import annotations

import argparse
import sys

from crmetrics.cli.common import add_project_options, format_table, load_project

KINDS = ("metrics", "dimensions", "measures", "segments", "analyses", "reports", "entities")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("list", help="list the project's metrics, dimensions, segments, ...")
    parser.add_argument("kind", choices=KINDS)
    add_project_options(parser, data=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = load_project(args).model
    columns, rows = _rows(model, args.kind)
    sys.stdout.write(format_table(columns, rows, row_limit=100_000))
    return 0


def _rows(model, kind: str) -> tuple[list[str], list[tuple]]:
    if kind == "metrics":
        return ["metric", "kind", "format", "description"], [
            (m.name, m.kind, m.format, m.description) for m in model.metrics.values()
        ]
    if kind == "dimensions":
        rows = [("metric_time", "time", "default time of each metric's entity")]
        rows += [
            (d.ref, d.type if not d.measure else f"measure {d.measure}", d.description)
            for e in model.entities.values()
            for d in e.dimensions.values()
        ]
        return ["dimension", "type", "description"], rows
    if kind == "measures":
        return ["measure", "agg", "description"], [
            (m.ref, m.agg, m.description) for e in model.entities.values() for m in e.measures.values()
        ]
    if kind == "segments":
        return ["segment", "entity", "where", "description"], [
            (s.name, s.entity, s.where.sql(model.dialect), s.description) for s in model.segments.values()
        ]
    if kind == "analyses":
        return ["analysis", "method", "description"], [
            (a.name, a.method, a.description) for a in model.analyses.values()
        ]
    if kind == "entities":
        return ["entity", "key", "time", "joins"], [
            (e.name, e.key or "", e.time or "", ", ".join(e.joins)) for e in model.entities.values()
        ]
    return ["report", "title"], [
        (name, (spec or {}).get("title", "") if isinstance(spec, dict) else "") for name, spec in model.reports.items()
    ]
