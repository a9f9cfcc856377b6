"""The demo report in a real browser: headless Chromium (the Debian `chromium` package) opens it offline.

Checks: every chart is an SVG with marks and a non-zero size on the laid-out page, no script or console error, the
interactive mode's script runs; a screenshot is kept (under $CRMETRICS_ARTIFACTS, else the test's tmp folder) and
the page prints to PDF. Skipped, with the reason, when no Chromium is installed; CI installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

import crmetrics
from crmetrics.cli import main
from crmetrics.reports import build_document, report_format, resolve_params
from crmetrics.reports.charts import available_renderer
from crmetrics.reports.render import render_document

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="Chromium is not installed (apt-get install chromium)")

# Runs first in <head>: records script errors and console.error calls, then, once laid out, measures every chart.
PROBE = """<script>
window.__problems = [];
window.addEventListener("error", function (e) { window.__problems.push("error: " + e.message); });
var __consoleError = console.error;
console.error = function () { window.__problems.push("console: " + Array.from(arguments).join(" ")); };
window.addEventListener("load", function () {
  var charts = Array.from(document.querySelectorAll("svg.chart")).map(function (svg) {
    var box = svg.getBoundingClientRect();
    return {label: svg.getAttribute("aria-label"), width: box.width, height: box.height,
            marks: svg.querySelectorAll("rect, path, circle").length};  // data marks, not axes or labels
  });
  var sortable = document.querySelectorAll("th.sortable").length;
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({charts: charts, problems: window.__problems, sortable: sortable});
  document.body.appendChild(out);
});
</script>"""
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh profile folder."""
    command = [BROWSER or "chromium", *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo report rendered with each available chart renderer (interactive mode on)."""
    out = tmp_path_factory.mktemp("browser")
    assert main(["demo", "--out", str(out / "demo"), "--customers", "1500", "--charts", "builtin"]) == 0
    project = crmetrics.load(out / "demo" / "crmetrics.yml")
    raw = project.model.reports["overview"]
    document = build_document(project, "overview", resolve_params(raw["parameters"]), keep_going=True)
    renderers = ["builtin"] + (["vl-convert"] if available_renderer() == "vl-convert" else [])
    found = {}
    for renderer in renderers:
        options = {"charts": renderer, "interactive": True}
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # vl-convert refusing a chart falls back: a failure here
            html = render_document(document, report_format(project, "html"), project.model.root, options)
        path = out / f"report-{renderer}.html"
        path.write_text(html, encoding="utf-8")
        found[renderer] = path
    project.close()
    return found


def probe(page: Path, tmp_path: Path) -> dict:
    probed = tmp_path / f"probed-{page.name}"
    probed.write_text(page.read_text(encoding="utf-8").replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    result = chromium(tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    match = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the probe did not run:\n{result.stderr[-2000:]}"
    return json.loads(
        match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )


@pytest.mark.parametrize("renderer", ["builtin", "vl-convert"])
def test_every_chart_renders_without_errors(pages: dict[str, Path], renderer: str, tmp_path: Path) -> None:
    if renderer not in pages:
        pytest.skip("vl-convert is not installed (pip install 'crmetrics[charts]')")
    report = probe(pages[renderer], tmp_path)
    assert report["problems"] == []
    assert len(report["charts"]) >= 15
    for chart in report["charts"]:
        assert chart["width"] > 100 and chart["height"] > 50, chart
        assert chart["marks"] >= 1, chart  # at least one drawn data mark (a single line is one path)
    assert report["sortable"] > 0  # the interactive script ran


def test_screenshot_and_pdf(pages: dict[str, Path], tmp_path: Path) -> None:
    artifacts = Path(os.environ.get("CRMETRICS_ARTIFACTS") or tmp_path / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    page = pages.get("vl-convert", pages["builtin"])
    shot = artifacts / "demo-report.png"
    result = chromium(tmp_path / "p1", "--window-size=1400,4000", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file() and shot.stat().st_size > 50_000, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = artifacts / "demo-report.pdf"
    result = chromium(tmp_path / "p2", "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    data = pdf.read_bytes() if pdf.is_file() else b""
    assert data.startswith(b"%PDF") and len(data) > 50_000, result.stderr[-2000:]
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 5  # a long report prints to several pages
    print(f"screenshot: {shot}\nPDF: {pdf}")
