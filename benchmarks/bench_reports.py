"""Report benchmarks: rendering time per chart (queries excluded) and the demo end to end.

    python benchmarks/bench_reports.py [--customers 50000] [--runs 5] [--demo-runs 1]

Targets (issue 7): rendering excluding the queries <= 100 ms per chart; `crmetrics demo` at 50k customers <= 60 s.
Prints medians; the built-in SVG renderer is the baseline the vl-convert renderer is compared with.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import crmetrics
from crmetrics.cli import main as cli
from crmetrics.reports import build_document, report_format, resolve_params
from crmetrics.reports.charts import available_renderer, to_svg
from crmetrics.reports.render import render_document


def median_time(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def charts_of(document: dict) -> list[dict]:
    found = []
    for section in document["sections"]:
        if section["type"] == "chart":
            found.append(section)
        found += section.get("charts", [])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--demo-runs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo"
        demo_times = []
        for _ in range(args.demo_runs):
            started = time.perf_counter()
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                assert cli(["demo", "--out", str(out), "--customers", str(args.customers)]) == 0
            demo_times.append(time.perf_counter() - started)
        print(
            f"crmetrics demo, {args.customers:,} customers, charts={available_renderer()}: "
            f"median {statistics.median(demo_times):.1f} s over {len(demo_times)} run(s) (target <= 60 s)"
        )

        project = crmetrics.load(out / "crmetrics.yml")
        raw = project.model.reports["overview"]
        started = time.perf_counter()
        document = build_document(project, "overview", resolve_params(raw["parameters"]), keep_going=True)
        print(f"queries and analyses (build_document): {time.perf_counter() - started:.1f} s")
        charts = charts_of(document)
        html = report_format(project, "html")
        renderers = ["builtin"] + (["vl-convert"] if available_renderer() == "vl-convert" else [])
        per_chart = {}
        for renderer in renderers:
            to_svg(charts[0]["spec"], "", renderer)  # warm-up (vl-convert starts its JavaScript engine once)
            page = median_time(
                lambda r=renderer: render_document(document, html, project.model.root, {"charts": r}), args.runs
            )
            singles = [median_time(lambda c=c, r=renderer: to_svg(c["spec"], "", r), args.runs) for c in charts]
            per_chart[renderer] = page / len(charts)
            print(
                f"html render, {renderer:>10}: page median {page * 1000:.0f} ms for {len(charts)} charts = "
                f"{per_chart[renderer] * 1000:.1f} ms per chart (target <= 100 ms); "
                f"single chart median {statistics.median(singles) * 1000:.1f} ms, slowest {max(singles) * 1000:.1f} ms"
            )
        if len(per_chart) == 2:
            print(f"vl-convert / builtin per-chart ratio: {per_chart['vl-convert'] / per_chart['builtin']:.1f}x")
        for name in ("md", "json", "csv"):
            fmt = report_format(project, name)
            took = median_time(lambda f=fmt: render_document(document, f, project.model.root), args.runs)
            print(f"{name:>4} render median: {took * 1000:.0f} ms")
        project.close()


if __name__ == "__main__":
    sys.exit(main())
