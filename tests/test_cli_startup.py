"""`crmetrics query` starts fast: the commands that read data import no report, analysis or Arrow machinery."""

from __future__ import annotations

import subprocess
import sys

from crmetrics.cli import report
from crmetrics.reports.charts import RENDERERS


def test_report_options_list_every_renderer() -> None:
    assert set(report.RENDERERS) == set(RENDERERS)


def test_a_query_imports_nothing_heavy(crm) -> None:
    code = (
        "import sys\n"
        "from crmetrics.cli import main\n"
        f"main(['query', '-m', 'revenue', '--by', 'regions.name', '--project', {str(crm.root / 'crmetrics.yml')!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jinja2', 'pyarrow', 'pandas', 'numpy')"
        " or m.startswith(('crmetrics.reports', 'crmetrics.analysis.rfm')))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def _run(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, **kwargs)


def test_leaving_keeps_the_exit_code_the_output_and_the_exit_handlers() -> None:
    code = (
        "import atexit, sys, threading, time\n"
        "from crmetrics.cli import leave\n"
        "atexit.register(print, 'handler ran')\n"
        "threading.Thread(target=lambda: (time.sleep(0.2), print('thread done', end=' '))).start()\n"
        "print('table', end=' ')\n"
        "sys.stderr.write('warning')\n"
        "leave(3)\n"
    )
    done = _run(code)
    assert (done.returncode, done.stdout, done.stderr) == (3, "table thread done handler ran\n", "warning")


def test_the_console_script_leaves_with_the_commands_exit_code(crm) -> None:
    project = str(crm.root / "crmetrics.yml")
    ok = subprocess.run(
        [sys.executable, "-m", "crmetrics", "query", "-m", "revenue", "--project", project, "--format", "csv"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and ok.stdout.startswith("revenue\n"), ok
    typo = subprocess.run(
        [sys.executable, "-m", "crmetrics", "query", "-m", "revenu", "--project", project],
        capture_output=True,
        text=True,
    )
    assert typo.returncode == 2 and "did you mean 'revenue'" in typo.stderr and "Traceback" not in typo.stderr


def test_a_reader_that_goes_away_early_is_no_error(tmp_path) -> None:
    (tmp_path / "crmetrics.yml").write_text(
        "version: 1\nname: many_rows\nentities:\n"
        "  ids: {sql: 'SELECT range AS id FROM range(100000)', key: id, dimensions: {id: {}},"
        " measures: {n: {agg: count}}}\n"
        "metrics: {n: {measure: ids.n}}\n"
    )
    project = tmp_path / "crmetrics.yml"
    query = f"{sys.executable} -m crmetrics query -m n --by ids.id --format csv --project '{project}'"
    for reader in ("head -c 1", "true"):  # gone while rows are written; gone before the first write
        limit = "" if reader.startswith("head") else " --limit 3"
        command = f"{query}{limit} | {reader}"
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True)
        assert done.returncode == 0 and done.stderr == "", done
    written = subprocess.run(["bash", "-c", query], capture_output=True, text=True).stdout
    assert len(written) > 100_000  # well over a pipe's buffer


def test_output_that_cannot_be_written_is_a_user_error(crm) -> None:
    project = str(crm.root / "crmetrics.yml")
    command = f"{sys.executable} -m crmetrics query -m revenue --project '{project}' > /dev/full"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert done.returncode == 2 and "CRM001" in done.stderr and "Traceback" not in done.stderr, done
