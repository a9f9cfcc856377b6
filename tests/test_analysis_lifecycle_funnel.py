"""funnel (three input shapes) and pipeline against pure-Python references on the fixture's opportunities."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator

import pytest

import crmetrics
from crmetrics.errors import ConfigError, CrmetricsError
from tests import lifecycle_fixture
from tests.lifecycle_fixture import OPEN_STAGES, STAGES, LifecycleData
from tests.test_analysis_lifecycle_cohort import percentile

SHAPES = ["stage_funnel", "time_funnel", "history_funnel"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> LifecycleData:
    return lifecycle_fixture.build(tmp_path_factory.mktemp("lifecycle_funnel"))


@pytest.fixture(scope="module")
def project(data: LifecycleData) -> Iterator[crmetrics.Project]:
    loaded = crmetrics.load(data.root / "crmetrics.yml")
    yield loaded
    loaded.close()


def furthest(opp: dict) -> int | None:
    return max(opp["times"]) if opp["times"] else None


def status(opp: dict) -> str | None:
    if opp["stage"] == "closed_won":
        return "won"
    if opp["stage"] == "closed_lost":
        return "lost"
    return "open" if opp["stage"] in STAGES else None


def reference_funnel(data: LifecycleData, skipped: str = "reached", by=None, window: float | None = None) -> dict:
    groups: dict = defaultdict(list)
    for opp in data.opportunities:
        groups[by(opp) if by else None].append(opp)
    out = {}
    for group, opps in groups.items():

        def reached(opp: dict, i: int) -> bool:
            if skipped == "reached":
                top = furthest(opp)
                return top is not None and top >= i
            return i in opp["times"]

        def passed(opp: dict, i: int) -> dt.datetime | None:
            later = [opp["times"][j] for j in range(i, 6) if j in opp["times"]]
            return (later[0] if later else None) if skipped == "reached" else opp["times"].get(i)

        counts = {i: sum(reached(o, i) for o in opps) for i in range(1, 6)}
        rows = {}
        open_opps = [o for o in opps if status(o) == "open"]
        for i, stage in enumerate(STAGES, 1):
            gaps = [
                (o["times"][i] - o["times"][i - 1]).total_seconds() / 86400
                for o in opps
                if i > 1 and i in o["times"] and i - 1 in o["times"]
            ]
            row = {
                "stage": stage,
                "reached": counts[i],
                "conversion_step": counts[i] / counts[i - 1] if i > 1 and counts[i - 1] else None,
                "conversion_overall": counts[i] / counts[1] if counts[1] else None,
                "drop_off": counts[i - 1] - counts[i] if i > 1 else None,
                "median_days_from_previous": percentile(gaps, 0.5) if i > 1 else None,
            }
            if window is not None:
                within = sum(
                    1 for o in opps if reached(o, i) and (passed(o, i) - passed(o, 1)).total_seconds() / 86400 <= window
                )
                row["reached_within_window"] = within
                row["conversion_within_window"] = within / counts[1] if counts[1] else None
            if i < 5:
                here = [o for o in open_opps if furthest(o) == i]
                amounts = [o["amount"] for o in here if o["amount"] is not None]
                row["open"] = (len(here), len(here) / len(open_opps) if open_opps else None, sum(amounts) or None)
            rows[stage] = row
        out[group] = rows
    return out


def approx(value):
    return pytest.approx(value) if isinstance(value, float) else value


def compare(result: crmetrics.AnalysisResult, expected: dict, group_column: str | None = None) -> None:
    funnel = result.tables["funnel"].records()
    assert len(funnel) == 5 * len(expected)
    for row in funnel:
        want = expected[row[group_column] if group_column else None][row["stage"]]
        for name, value in want.items():
            if name != "open":
                assert row[name] == approx(value), (row, name)
    for row in result.tables["open_pipeline"].records():
        records, share, amount = expected[row[group_column] if group_column else None][row["stage"]]["open"]
        assert (row["records"], row["share"]) == (records, approx(share))
        if "amount" in row:
            assert row["amount"] == approx(amount)


def test_fixture_has_skipped_stages_ties_and_open_records(data: LifecycleData) -> None:
    skipping = [o for o in data.opportunities if o["times"] and len(o["times"]) < max(o["times"])]
    tied = [o for o in data.opportunities if len(set(o["times"].values())) < len(o["times"])]
    assert skipping and tied and any(status(o) == "open" for o in data.opportunities)


@pytest.mark.parametrize("shape", SHAPES)
def test_three_input_shapes_agree_with_reference(project: crmetrics.Project, data: LifecycleData, shape: str) -> None:
    result = project.analyze(shape)
    expected = reference_funnel(data)
    if shape == "stage_funnel":  # a stage column records no times
        for rows in expected.values():
            for row in rows.values():
                row["median_days_from_previous"] = None
        assert result.notes
    compare(result, expected)
    figures = {f.name: f.value for f in result.figures}
    assert figures["won"] == expected[None]["closed_won"]["reached"]


@pytest.mark.parametrize("shape", ["time_funnel", "history_funnel"])
def test_skipped_stages_not_counted_when_asked(project: crmetrics.Project, data: LifecycleData, shape: str) -> None:
    result = project.analyze(shape, skipped="not_reached")
    compare(result, reference_funnel(data, skipped="not_reached"))


@pytest.mark.parametrize("shape", ["time_funnel", "history_funnel"])
@pytest.mark.parametrize("skipped", ["reached", "not_reached"])
def test_breakdown_window_and_open_amounts(
    project: crmetrics.Project, data: LifecycleData, shape: str, skipped: str
) -> None:
    result = project.analyze(
        shape, by="opportunities.owner", window_days=7, amount="opportunities.amount", skipped=skipped
    )
    expected = reference_funnel(data, skipped=skipped, by=lambda o: o["owner"], window=7)
    assert None in expected and "Zoë" in expected
    compare(result, expected, "opportunities.owner")


def test_history_tie_between_loss_and_stage_counts_as_lost(project: crmetrics.Project, data: LifecycleData) -> None:
    # a loss recorded at the same instant as the last stage: the record is lost, not open at that stage
    tied = [o for o in data.opportunities if o["lost_at"] is not None and o["lost_at"] in o["times"].values()]
    assert tied
    result = project.analyze("history_funnel", where=f"opportunities.opportunity_id = {tied[0]['opportunity_id']}")
    assert all(r["records"] == 0 for r in result.tables["open_pipeline"].records())


@pytest.mark.parametrize("shape", SHAPES)
def test_stage_column_that_keeps_the_last_stage_with_a_lost_condition(project: crmetrics.Project, shape: str) -> None:
    # lost records keep the last stage they reached in the stage column; a condition says they were lost
    standard = project.analyze("stage_funnel")
    kept = project.analyze(
        "stage_funnel",
        stage="opportunities.kept_stage",
        last_stage="opportunities.kept_stage",
        lost_stages=[],
        lost_when="opportunities.is_lost",
    )
    assert kept.tables["funnel"].rows == standard.tables["funnel"].rows
    assert kept.tables["open_pipeline"].rows == standard.tables["open_pipeline"].rows
    if shape != "stage_funnel":  # the other shapes accept the condition on top of their own loss marks
        both = project.analyze(shape, lost_when="opportunities.is_lost")
        assert both.tables["open_pipeline"].rows == project.analyze(shape).tables["open_pipeline"].rows


def test_funnel_parameter_errors(project: crmetrics.Project) -> None:
    with pytest.raises(ConfigError):
        project.analyze("stage_funnel", stage_times=["opportunities.t_won"])  # two shapes at once
    with pytest.raises(CrmetricsError):
        project.analyze("time_funnel", stage_times=["opportunities.t_won"])  # one time per stage


# pipeline


def reference_pipeline(data: LifecycleData, declared: dict | None = None, by=None) -> tuple[dict, dict]:
    def index(opp: dict) -> int | None:
        return OPEN_STAGES.index(opp["stage"]) + 1 if opp["stage"] in OPEN_STAGES else None

    def reach(opp: dict) -> int | None:
        if opp["stage"] == "closed_won":
            return 4
        if index(opp) is not None:
            return index(opp)
        return OPEN_STAGES.index(opp["last_stage"]) + 1 if opp["last_stage"] in OPEN_STAGES else None

    closed = [o for o in data.opportunities if o["stage"] in ("closed_won", "closed_lost")]
    rates = {}
    for i, stage in enumerate(OPEN_STAGES, 1):
        there = [o for o in closed if (reach(o) or 0) >= i]
        won = [o for o in there if o["stage"] == "closed_won"]
        rates[i] = (declared or {}).get(stage, len(won) / len(there) if there else None)
    groups: dict = defaultdict(list)
    for opp in data.opportunities:
        month = dt.date(opp["created_at"].year, opp["created_at"].month, 1)
        groups[(by(opp), month) if by else month].append(opp)
    out = {}
    for group, opps in groups.items():
        open_ = [o for o in opps if index(o) is not None]
        won = [o for o in opps if o["stage"] == "closed_won"]
        lost = [o for o in opps if o["stage"] == "closed_lost"]
        won_amounts = [o["amount"] for o in won if o["amount"] is not None]
        cycles = [(o["closed_at"] - o["created_at"]).total_seconds() / 86400 for o in won]
        out[group] = {
            "opportunities": len(opps),
            "open": len(open_),
            "open_amount": sum(o["amount"] or 0 for o in open_),
            "weighted_forecast": sum(
                o["amount"] * rates[index(o)] for o in open_ if o["amount"] is not None and rates[index(o)] is not None
            ),
            "won": len(won),
            "lost": len(lost),
            "win_rate": len(won) / (len(won) + len(lost)) if won or lost else None,
            "won_amount": sum(won_amounts),
            "average_deal_size": sum(won_amounts) / len(won_amounts) if won_amounts else None,
            "average_cycle_days": sum(cycles) / len(cycles) if cycles else None,
            "median_cycle_days": percentile(cycles, 0.5),
        }
    return rates, out


@pytest.mark.parametrize("declared", [None, {"proposal": 0.5, "negotiation": 0.9}])
def test_pipeline_by_month_matches_reference(project: crmetrics.Project, data: LifecycleData, declared) -> None:
    overrides = {"probabilities": declared} if declared else {}
    result = project.analyze("forecast", **overrides)
    rates, expected = reference_pipeline(data, declared)
    probabilities = result.tables["stage_probabilities"].records()
    assert [r["probability"] for r in probabilities] == [approx(rates[i]) for i in range(1, 5)]
    assert [r["source"] for r in probabilities] == [
        "declared" if declared and s in declared else "learned" for s in OPEN_STAGES
    ]
    rows = result.tables["pipeline"].records()
    assert {r["period"] for r in rows} == set(expected)
    for row in rows:
        for name, value in expected[row["period"]].items():
            assert row[name] == approx(value), (row["period"], name)


def test_pipeline_by_owner_and_overall_figures(project: crmetrics.Project, data: LifecycleData) -> None:
    result = project.analyze("forecast", by="opportunities.owner")
    _, expected = reference_pipeline(data, by=lambda o: o["owner"])
    rows = result.tables["pipeline"].records()
    assert {(r["opportunities.owner"], r["period"]) for r in rows} == set(expected)
    for row in rows:
        for name, value in expected[(row["opportunities.owner"], row["period"])].items():
            assert row[name] == approx(value), name
    figures = {f.name: f.value for f in result.figures}
    won = sum(v["won"] for v in expected.values())
    lost = sum(v["lost"] for v in expected.values())
    assert figures["win_rate"] == pytest.approx(won / (won + lost))
    assert figures["weighted_forecast"] == pytest.approx(sum(v["weighted_forecast"] for v in expected.values()))


def test_pipeline_with_a_stage_column_that_keeps_the_last_stage(project: crmetrics.Project) -> None:
    standard = project.analyze("forecast")
    kept = project.analyze(
        "forecast",
        stage="opportunities.kept_stage",
        last_stage="opportunities.kept_stage",
        lost_stages=[],
        lost_when="opportunities.is_lost",
    )
    for table in ("pipeline", "stage_probabilities"):
        assert kept.tables[table].rows == standard.tables[table].rows


def test_pipeline_rejects_probabilities_of_unknown_stages(project: crmetrics.Project) -> None:
    with pytest.raises(CrmetricsError):
        project.analyze("forecast", probabilities={"closing": 0.5})


@pytest.mark.parametrize("shape", SHAPES)
def test_funnel_over_no_records(project: crmetrics.Project, shape: str) -> None:
    result = project.analyze(shape, where="opportunities.region = 'nowhere'")
    rows = result.tables["funnel"].records()
    assert [r["reached"] for r in rows] == [0] * 5
    assert all(r["conversion_overall"] is None and r["median_days_from_previous"] is None for r in rows)
    assert [r["records"] for r in result.tables["open_pipeline"].records()] == [0] * 4


def test_pipeline_over_no_records(project: crmetrics.Project) -> None:
    result = project.analyze("forecast", where="opportunities.region = 'nowhere'")
    assert result.tables["pipeline"].rows == []
    assert [r["probability"] for r in result.tables["stage_probabilities"].records()] == [None] * 4
    assert result.notes
