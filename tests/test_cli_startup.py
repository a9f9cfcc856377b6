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
