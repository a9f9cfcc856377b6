"""`crmetrics demo`: build the sample CRM database, write a demo project next to it and render its full report."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from crmetrics.cli.report import add_render_options

BAR_WIDTH = 30


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="build a sample CRM database and render the full report")
    parser.add_argument("--out", default="crmetrics-demo", help="folder to write into (default: crmetrics-demo)")
    parser.add_argument("--customers", type=int, default=50_000, help="number of customers (default 50000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generator (default 7)")
    add_render_options(parser)
    parser.set_defaults(run=run)


def _bar(label: str, fraction: float) -> None:
    """A plain-text progress bar redrawn in place on a terminal; one line per step when stderr is a file or pipe."""
    filled = round(fraction * BAR_WIDTH)
    line = f"  [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%} {label:<26}"
    sys.stderr.write(f"\r{line}" if sys.stderr.isatty() else f"{line.rstrip()}\n")
    sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    import crmetrics
    from crmetrics.demo import build_demo_database
    from crmetrics.demo.writer import DATABASE, write_project
    from crmetrics.errors import QueryError
    from crmetrics.plugins import get_plugin_manager
    from crmetrics.reports import report_format
    from crmetrics.reports.base import write_output
    from crmetrics.reports.builder import build_document, resolve_params
    from crmetrics.reports.render import render_document

    if args.customers < 1:
        raise QueryError(f"--customers must be at least 1, got {args.customers}")
    out = Path(args.out)
    _refuse_a_project_of_yours(out)
    started = time.perf_counter()
    sys.stderr.write(f"Building the demo CRM database ({args.customers:,} customers) in {out / DATABASE}\n")
    counts = build_demo_database(out / DATABASE, customers=args.customers, seed=args.seed, progress=_bar)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    sys.stderr.write(
        f"  {sum(counts.values()):,} rows in {len(counts)} tables ({time.perf_counter() - started:.1f} s)\n"
    )

    skipped: list[str] = []
    registry = get_plugin_manager()[1]
    project_file = write_project(out, registry, lambda name, why: skipped.append(f"{name}: {why}"))
    project = crmetrics.load(project_file)
    sys.stderr.write(f"Wrote the demo project {project_file} ({len(project.model.metrics)} metrics)\n")
    for line in skipped:
        sys.stderr.write(f"  skipped analysis {line}\n")

    sys.stderr.write("Rendering the report\n")
    raw = project.model.reports["overview"]
    document = build_document(project, "overview", resolve_params(raw["parameters"]), keep_going=True)
    html = report_format(project, "html")
    options = {"interactive": args.interactive, "charts": args.charts}
    path = write_output(render_document(document, html, project.model.root, options), out / "report.html")
    project.close()
    _summary(document, time.perf_counter() - started, out)
    sys.stdout.write(f"{path.resolve()}\n")
    return 0


def _summary(document: dict, seconds: float, folder: Path) -> None:
    from crmetrics.demo.generate import LAST_DAY
    from crmetrics.reports.formatting import change_text, fmt

    kpis = next((s for s in document["sections"] if s["type"] == "kpis"), None)
    period = document["parameters"]["period"]
    out = sys.stderr
    out.write(f"\n{document['title']} — {period['label'] if period else 'all time'}\n")
    for tile in (kpis or {}).get("tiles", [])[:8]:
        out.write(f"  {tile['label']:<28} {fmt(tile['value'], tile['format']):>16}  {change_text(tile):>9}\n")
    analyses = [s["title"] for s in document["sections"] if s["type"] == "analysis"]
    charts = sum(
        1 + len(s.get("charts", [])) if s["type"] == "chart" else len(s.get("charts", [])) for s in document["sections"]
    )
    out.write(f"  {len(document['sections'])} sections, {charts} charts, {len(analyses)} analyses\n")
    for warning in document["warnings"]:
        out.write(f"  warning: {warning}\n")
    out.write(f"Done in {seconds:.1f} s. Ask it questions from its folder (the data ends on {LAST_DAY}):\n")
    out.write(f"  cd {shlex.quote(str(folder))} && crmetrics query -m revenue --by metric_time:quarter\n")
    out.write("Open the report:\n")


def _refuse_a_project_of_yours(out: Path) -> None:
    """The demo writes crmetrics.yml and model.yml into `out`: never over a project it did not write itself."""
    from crmetrics.errors import QueryError

    existing = out / "crmetrics.yml"
    if existing.is_file() and "written by `crmetrics demo`" not in existing.read_text(errors="replace")[:500]:
        raise QueryError(
            f"{existing} is a project that `crmetrics demo` did not write; give --out a new or empty folder"
        )
