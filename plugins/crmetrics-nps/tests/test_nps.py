"""The nps method: numbers against a pure-Python reference on the tiny CRM of crmetrics.testing, and end to end
through the installed entry point and the `crmetrics` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from crmetrics.testing import TINY_ROWS, isolated_plugin_manager, write_project

import crmetrics_nps

BY_REGION = {"method": "nps", "responses": "nps_responses", "score": "nps_responses.score", "by": ["customers.region"]}
MONTHLY = {"method": "nps", "responses": "nps_responses", "score": "nps_responses.score", "grain": "month"}


def answers(tenant=None):
    """(region, month, score, tenant) of every answer, the customer's region joined in Python."""
    customers = {row[0]: row for row in TINY_ROWS["customers"][1]}
    found = []
    for _, customer_id, day, score, answer_tenant in TINY_ROWS["nps_responses"][1]:
        customer = customers.get(customer_id)
        if tenant is not None and (answer_tenant != tenant or (customer and customer[3] != tenant)):
            continue
        found.append((customer[2] if customer else None, day.replace(day=1), score))
    return found


def expected(scores):
    valid = [s for s in scores if s is not None and s == int(s) and 0 <= s <= 10]
    promoters = sum(1 for s in valid if s >= 9)
    detractors = sum(1 for s in valid if s <= 6)
    nps = 100 * (promoters - detractors) / len(valid) if valid else None
    return len(valid), promoters, len(valid) - promoters - detractors, detractors, nps


def grouped(rows, key):
    groups = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row[2])
    return {k: expected(v) for k, v in groups.items()}


def check(table, want, key_column):
    got = {r[key_column]: (r["responses"], r["promoters"], r["passives"], r["detractors"], r["nps"]) for r in table}
    assert got.keys() == want.keys()
    for key, values in want.items():
        assert got[key][:4] == values[:4]
        assert got[key][4] == (pytest.approx(values[4]) if values[4] is not None else None)


def test_registers_through_the_hook():
    _, registry = isolated_plugin_manager(crmetrics_nps)
    assert "nps" in registry.of("analysis method")
    assert not registry.problems


def test_by_region_and_overall(tiny_project):
    project = tiny_project(analyses={"by_region": BY_REGION}, plugins=[crmetrics_nps])
    result = project.analyze("by_region")
    check(result.tables["nps"].records(), grouped(answers(), lambda r: r[0]), "customers.region")
    (overall,) = result.tables["overall"].records()
    assert (overall["responses"], overall["nps"]) == (7, pytest.approx(100 * (3 - 2) / 7))  # 10, 9, 10 vs 6, 0
    figures = {f.name: f.value for f in result.figures}
    assert figures["invalid"] == 1  # the NULL answer


def test_over_time_with_row_filters(tiny_project):
    project = tiny_project(analyses={"monthly": MONTHLY}, plugins=[crmetrics_nps], tenant_filters=True)
    for tenant in (1, 2):
        result = project.analyze("monthly", context={"tenant_id": tenant})
        check(result.tables["nps"].records(), grouped(answers(tenant), lambda r: r[1]), "period")


def test_segment_and_where(tiny_project):
    project = tiny_project(analyses={"monthly": MONTHLY}, plugins=[crmetrics_nps])
    north = project.analyze("monthly", segments=["north"]).tables["nps"].records()
    check(north, grouped([a for a in answers() if a[0] == "north"], lambda r: r[1]), "period")
    high = project.analyze("monthly", where="nps_responses.score >= 9").tables["nps"].records()
    assert all(r["detractors"] == 0 and r["nps"] == 100 for r in high)


def test_fractional_answers_are_not_responses(tiny_project):
    """A 0-10 integer scale: 6.5 and 8.5 are invalid like 11 or -1, while 9.0 is the answer 9."""
    columns, rows = TINY_ROWS["nps_responses"]
    scores = [6.5, 8.5, 10.0, 9.0, 0.0, 6.0, 7.0, 7.25, 11.0, None]
    answers_ = [(i, 1, rows[0][2], score, 1) for i, score in enumerate(scores, 1)]
    project = tiny_project(
        analyses={"monthly": MONTHLY}, plugins=[crmetrics_nps], rows={**TINY_ROWS, "nps_responses": (columns, answers_)}
    )
    result = project.analyze("monthly")
    valid = [s for s in scores if s is not None and s == int(s) and 0 <= s <= 10]  # 10, 9, 0, 6, 7
    (overall,) = result.tables["overall"].records()
    assert (overall["responses"], overall["promoters"], overall["passives"], overall["detractors"]) == (5, 2, 1, 2)
    assert overall["nps"] == pytest.approx(100 * (2 - 2) / len(valid))
    assert {f.name: f.value for f in result.figures}["invalid"] == len(scores) - len(valid)
    check(result.tables["nps"].records(), {rows[0][2].replace(day=1): expected(valid)}, "period")


def test_bad_score_reference_points_at_the_yaml(tmp_path):
    import crmetrics

    path = write_project(tmp_path, {"x": {**MONTHLY, "score": "nps_responses.scor"}})
    with pytest.raises(crmetrics.ConfigError, match=r"crmetrics.yml:\d+:\d+: CRM702 unknown dimension"):
        crmetrics.load(path, plugins=[crmetrics_nps])


installed = pytest.mark.skipif(
    not any(ep.value == "crmetrics_nps" for ep in entry_points(group="crmetrics")),
    reason="crmetrics-nps is not installed (pip install -e plugins/crmetrics-nps)",
)


@installed
def test_end_to_end_through_the_installed_entry_point_and_the_cli(tmp_path):
    path = write_project(tmp_path, {"by_region": BY_REGION})
    command = [shutil.which("crmetrics") or sys.executable, "analyze", "by_region", "-p", str(path), "-f", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    tables = json.loads(done.stdout)
    assert list(tables) == ["nps", "overall"]
    check(tables["nps"], grouped(answers(), lambda r: r[0]), "customers.region")
    listing = subprocess.run([command[0], "plugins"], capture_output=True, text=True, check=True).stdout
    assert "crmetrics-nps:nps" in listing
