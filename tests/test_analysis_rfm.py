"""rfm: scores and segments against a pure-Python reference on generated data (ties, NULLs, no events, orphans)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections import defaultdict
from pathlib import Path

import duckdb
import pytest

import crmetrics
from crmetrics.analysis import rfm
from crmetrics.cli import main
from crmetrics.testing import TINY_PROJECT
from tests import cv_fixture
from tests.cv_fixture import Data, min_rank, visible_orders

RFM = {"method": "rfm", "entity": "customers", "events": "orders", "monetary": "orders.revenue"}
ORDER = [
    "Champions",
    "Loyal Customers",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "Can't Lose Them",
    "At Risk",
    "Hibernating",
    "Lost",
]


def default_segment(r: int, f: int, m: int) -> str:
    """The documented default map, restated as plain conditions (first match wins)."""
    fm = (f + m) / 2
    if r >= 4 and fm >= 4:
        return "Champions"
    if r >= 3 and fm >= 3:
        return "Loyal Customers"
    if r >= 4 and fm >= 2:
        return "Potential Loyalist"
    if r == 5:
        return "New Customers"
    if r == 4:
        return "Promising"
    if r == 3:
        return "Need Attention" if fm >= 2 else "About To Sleep"
    if r == 1 and fm >= 4:
        return "Can't Lose Them"
    if fm >= 3:
        return "At Risk"
    return "Hibernating" if fm >= 2 else "Lost"


def reference(data: Data, bins: int = 5, tenant=None, region="*", as_of=None, thresholds=None, segment=None):
    """{customer: (recency_days, frequency, monetary, r, f, m, segment)} computed in plain Python."""
    per = defaultdict(list)
    for order, customer in visible_orders(data, tenant, region):
        if as_of is None or order.day < as_of:
            per[customer.id].append(order)
    if not per:
        return {}
    last = {k: max(o.day for o in v) for k, v in per.items()}
    freq = {k: len(v) for k, v in per.items()}
    money = {k: sum(o.amount for o in v if o.amount is not None) for k, v in per.items()}
    day = as_of or max(last.values()) + dt.timedelta(days=1)
    n = len(per)
    thresholds = thresholds or {}

    def score(letter, values, key, value):
        if letter in thresholds:
            cuts = thresholds[letter]
            return 1 + sum(1 for c in cuts if (value <= c if letter == "r" else value >= c))
        return 1 + (bins * (min_rank(list(values.values()), values[key]) - 1)) // n

    result = {}
    for k in per:
        recency = (day - last[k]).days
        r = score("r", last, k, recency)
        f = score("f", freq, k, freq[k])
        m = score("m", money, k, money[k])
        result[k] = (recency, freq[k], money[k], r, f, m, (segment or default_segment)(r, f, m))
    return result


def check_scores(result, expected) -> None:
    table = result.tables["scores"]
    assert table.columns == [
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "segment",
    ]
    got = {row[0]: tuple(row[1:]) for row in table.rows}
    assert [row[0] for row in table.rows] == sorted(expected)
    for key, want in expected.items():
        assert got[key][:2] == want[:2] and got[key][3:] == want[3:], key
        assert got[key][2] == pytest.approx(want[2])


def check_segments(result, expected, names=ORDER) -> None:
    rows = result.tables["segments"].records()
    assert [r["segment"] for r in rows] == list(names)
    n = len(expected)
    total = sum(v[2] for v in expected.values())
    for row in rows:
        members = [v for v in expected.values() if v[6] == row["segment"]]
        assert row["entities"] == len(members)
        assert row["share"] == (pytest.approx(len(members) / n) if n else None)
        assert row["monetary"] == pytest.approx(sum(v[2] for v in members))
        assert row["monetary_share"] == (pytest.approx(sum(v[2] for v in members) / total) if total else None)
        for index, column in ((3, "mean_r"), (4, "mean_f"), (5, "mean_m")):
            want = sum(v[index] for v in members) / len(members) if members else None
            assert row[column] == (pytest.approx(want) if want is not None else None)


@pytest.fixture(scope="module")
def data() -> Data:
    return cv_fixture.generate(seed=11)


@pytest.fixture(scope="module")
def project(data, tmp_path_factory):
    analyses = {
        "customer_rfm": RFM,
        "rfm_as_of": {**RFM, "as_of": "2024-04-01"},
        "rfm_custom": {
            **RFM,
            "bins": 3,
            "thresholds": {"f": [2, 4]},
            "segments": {"Top": {"r": [3, 3], "fm": [2.5, 3]}, "Frequent": {"f": [3, 3]}, "Rest": {}},
        },
        "rfm_partial": {**RFM, "segments": {"Recent": {"r": [5, 5]}, "Big": {"m": [5, 5]}, "Never": {"r": [5, 5]}}},
    }
    path = cv_fixture.project_file(tmp_path_factory.mktemp("rfm"), data, analyses)
    loaded = crmetrics.load(path)
    yield loaded
    loaded.close()


def test_scores_and_segments_match_the_reference(project, data):
    result = project.analyze("customer_rfm")
    expected = reference(data)
    check_scores(result, expected)
    check_segments(result, expected)
    figures = {f.name: f.value for f in result.figures}
    assert figures["entities"] == len(expected)
    assert str(figures["as_of"]) == str(max(o.day for o, _ in visible_orders(data)) + dt.timedelta(days=1))


def test_ties_share_a_score(project):
    rows = project.analyze("customer_rfm").tables["scores"].records()
    for letter, column in (("r", "recency_days"), ("f", "frequency"), ("m", "monetary")):
        scores = defaultdict(set)
        for row in rows:
            scores[row[column]].add(row[f"{letter}_score"])
        assert all(len(s) == 1 for s in scores.values())
        assert any(len([r for r in rows if r[column] == v]) > 1 for v in scores)  # the data has ties


def test_entities_without_events_and_orphans_are_not_scored(project, data):
    keys = set(project.analyze("customer_rfm").tables["scores"].column("customer_id"))
    ordered = {o.customer for o in data.orders}
    assert keys == ordered & {c.id for c in data.customers}
    assert 999 not in keys and any(c.id not in ordered for c in data.customers)


@pytest.mark.parametrize("segment, region", [("north", "north"), ("solo", "solo"), ("empty", "nowhere")])
def test_segments_restrict_the_scored_population(project, data, segment, region):
    result = project.analyze("customer_rfm", segments=[segment])
    expected = reference(data, region=region)
    check_scores(result, expected)
    check_segments(result, expected)
    if segment == "solo":  # one entity: rank 1 of 1, every score 1
        assert [r[4:7] for r in result.tables["scores"].rows] == [(1, 1, 1)]


def test_where_filters_the_events(project, data):
    result = project.analyze("customer_rfm", where="orders.channel = 'web'")
    kept = Data(data.customers, [o for o in data.orders if o.channel == "web"])
    check_scores(result, reference(kept))


def test_as_of_ignores_later_events(project, data):
    result = project.analyze("rfm_as_of")
    check_scores(result, reference(data, as_of=dt.date(2024, 4, 1)))


def test_thresholds_and_a_custom_segment_map(project, data):
    def segment(r, f, m):
        if r == 3 and 5 <= f + m <= 6:
            return "Top"
        return "Frequent" if f == 3 else "Rest"

    result = project.analyze("rfm_custom")
    expected = reference(data, bins=3, thresholds={"f": [2, 4]}, segment=segment)
    check_scores(result, expected)
    check_segments(result, expected, names=["Top", "Frequent", "Rest"])


PARTIAL = ["Recent", "Big", "Never", None]  # Never: shadowed by Recent; None: what no rule matches


def partial_segment(r: int, f: int, m: int) -> str | None:
    return "Recent" if r == 5 else "Big" if m == 5 else None


def test_entities_no_rule_matches_form_a_last_segment_row(project, data):
    result = project.analyze("rfm_partial")
    expected = reference(data, segment=partial_segment)
    check_scores(result, expected)
    check_segments(result, expected, names=PARTIAL)


def comparable(result) -> tuple:
    """Everything an analysis returned, as plain values."""
    tables = {name: (table.columns, table.rows, len(table)) for name, table in result.tables.items()}
    return tables, result.figures, result.notes


CASES = [("customer_rfm", {}), ("rfm_custom", {}), ("rfm_as_of", {}), ("rfm_partial", {})]
CASES += [("customer_rfm", {"segments": ["solo"]}), ("customer_rfm", {"segments": ["empty"]})]


@pytest.mark.parametrize("name, overrides", CASES)
def test_duckdb_one_pass_gives_what_two_passes_give(project, monkeypatch, name, overrides):
    """DuckDB runs `combined_query` once (Arrow or rows); every other database the two queries."""
    engine = project.engine().engine  # the DuckDB engine inside the read-only guard
    results = []
    for arrow in (True, False):
        monkeypatch.setattr(engine, "arrow", arrow)
        results.append(project.analyze(name, **overrides))
        assert "MATERIALIZED" in results[-1].tables["scores"].sql
    monkeypatch.setattr(rfm, "_one_pass", rfm._two_passes)
    results.append(project.analyze(name, **overrides))
    assert "MATERIALIZED" not in results[-1].tables["scores"].sql
    assert comparable(results[0]) == comparable(results[1]) == comparable(results[2])
    scores = results[0].tables["scores"]
    assert scores.to_arrow().column_names == scores.columns and scores.to_arrow().num_rows == len(scores)


def test_null_monetary_values_rank_first_in_both_passes(data, tmp_path, monkeypatch):
    """A customer whose orders all lack an amount has no largest amount: M ranks NULL first on either path."""
    entities = copy.deepcopy(TINY_PROJECT["entities"])
    entities["orders"]["measures"]["largest"] = {"agg": "max", "expr": "amount"}
    analyses = {"rfm_max": {**RFM, "monetary": "orders.largest"}}
    project = crmetrics.load(cv_fixture.project_file(tmp_path, data, analyses, entities=entities))
    one = project.analyze("rfm_max")
    monkeypatch.setattr(rfm, "_one_pass", rfm._two_passes)
    two = project.analyze("rfm_max")
    project.close()
    assert "MATERIALIZED" in one.tables["scores"].sql and "MATERIALIZED" not in two.tables["scores"].sql
    assert comparable(one) == comparable(two)
    m_scores = {row[3]: row[6] for row in one.tables["scores"].rows}
    assert m_scores[None] == 1 and len(m_scores) > 2


def test_sqlite_runs_the_two_queries_with_the_same_numbers(project, data):
    from crmetrics.engines.dbapi import SQLiteEngine
    from tests.differential import loaders

    root = Path(project.model.root)
    with duckdb.connect(str(root / "tiny.duckdb"), read_only=True) as con:
        names = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        tables = {name: con.sql(f'SELECT * FROM "{name}"').to_arrow_table() for name in names}
    loaders.load_sqlite(root / "rfm.sqlite", tables)
    engine = SQLiteEngine(str(root / "rfm.sqlite"))
    try:
        for name in ("customer_rfm", "rfm_partial"):
            result = project.analyze(name, connection=engine)
            assert "MATERIALIZED" not in result.tables["scores"].sql
            expected = reference(data, segment=None if name == "customer_rfm" else partial_segment)
            check_scores(result, expected)
            check_segments(result, expected, names=ORDER if name == "customer_rfm" else PARTIAL)
    finally:
        engine.close()


def test_overrides_are_validated(project):
    with pytest.raises(crmetrics.ConfigError, match="CRM113"):
        project.analyze("customer_rfm", bins=1)


def test_row_filters_score_each_tenant_alone(data, tmp_path):
    path = cv_fixture.project_file(tmp_path, data, {"customer_rfm": RFM}, tenant_filters=True)
    project = crmetrics.load(path)
    for tenant in (1, 2):
        check_scores(project.analyze("customer_rfm", context={"tenant_id": tenant}), reference(data, tenant=tenant))
    with pytest.raises(crmetrics.ContextError):
        project.analyze("customer_rfm")
    project.close()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"entity": "customerz"}, "unknown entity 'customerz'"),
        ({"monetary": "customers.customer_count"}, "belongs to customers"),
        ({"bins": 4}, "the default segment map is for 5 bins"),
        ({"thresholds": {"r": [30, 10, 5, 1]}}, "strictly ascending"),
        ({"as_of": "yesterday"}, "is not a date"),
        ({"segments": {"A": {"r": [0, 9]}}}, "within 1..5"),
    ],
)
def test_bad_parameters_point_at_the_yaml(data, tmp_path, change, message):
    path = cv_fixture.project_file(tmp_path, data, {"customer_rfm": {**RFM, **change}})
    with pytest.raises(crmetrics.ConfigError, match=message) as error:
        crmetrics.load(path)
    issue = error.value.issues[0]
    assert issue.location is not None and issue.location.file.endswith("crmetrics.yml") and issue.location.line > 1


def test_cli_json_has_one_key_per_table(project, data, capsys):
    path = project.model.root + "/crmetrics.yml"
    assert main(["analyze", "customer_rfm", "--project", path, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["scores", "segments"]
    assert len(out["scores"]) == len(reference(data))
    assert set(out["scores"][0]) == {
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        "r_score",
        "f_score",
        "m_score",
        "segment",
    }
    assert main(["analyze", "customer_rfm", "--project", path, "--format", "csv", "--table", "segments"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith("segment,entities,share")
    assert main(["analyze", "nope", "--project", path]) == 2


def test_cli_table_prints_figures_tables_and_notes(project, capsys):
    path = project.model.root + "/crmetrics.yml"
    assert (
        main(["analyze", "customer_rfm", "--project", path, "--segment", "solo", "--where", "orders.amount > 0"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("RFM analysis of customers")
    assert "Scored customers" in out and "\nscores\n" in out and "\nsegments\n" in out and "note: Scores run" in out


def test_cli_table_shows_amounts_with_cents_and_shares_as_percentages(project, data, capsys):
    path = project.model.root + "/crmetrics.yml"
    assert main(["analyze", "customer_rfm", "--project", path]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines.index("scores") + 1
    columns = lines[header].split()
    expected = reference(data)
    for line in lines[header + 2 : header + 2 + len(expected)]:
        cells = dict(zip(columns, line.split(), strict=False))
        monetary = expected[int(cells["customer_id"])][2]
        assert cells["monetary"] == f"{monetary:,.2f}", line  # 510.30, not 510.3
    assert any(f"{m:,.2f}".endswith("0") for _, _, m, *_ in expected.values())  # a case the old output got wrong
    first_segment = lines[lines.index("segments") + 3]
    assert re.search(r"\s\d+\.\d%(\s|$)", first_segment), first_segment  # shares as percentages
