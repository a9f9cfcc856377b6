"""A corpus of broken projects (tests/broken/*.yml): each states the problems it must produce in `# expect:` lines.

    # expect: LINE:COLUMN CODE text that the message contains

Every problem is reported in one run, at its file:line:column, and the CLI exits 2 without a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import crmetrics
from crmetrics.cli import main

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+) (CRM\d+) (.*)$", re.M)


def expectations(path: Path) -> list[tuple[int, int, str, str]]:
    return [(int(line), int(col), code, text) for line, col, code, text in EXPECT.findall(path.read_text())]


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_every_problem_is_reported_where_it_is(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} states no expectation"
    with pytest.raises(crmetrics.ConfigError) as caught:
        crmetrics.load(path)
    issues = caught.value.issues
    assert len(issues) == len(expected), "\n".join(map(str, issues))
    for line, col, code, text in expected:
        matching = [
            i for i in issues if i.code == code and i.location and (i.location.line, i.location.column) == (line, col)
        ]
        assert matching, f"no {code} at {line}:{col} in:\n" + "\n".join(map(str, issues))
        assert text in str(matching[0]), str(matching[0])
        assert matching[0].location.file.endswith(path.name)


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_cli_validate_exits_2_with_locations_and_no_traceback(path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", "--project", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line, col, code, _ in expectations(path):
        assert f"{path.name}:{line}:{col}: {code}" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["query", "-m", "revenu"], "unknown metric 'revenu'; did you mean 'revenue'?"),
        (["query", "-m", "revenue", "--by", "regions.nam"], "did you mean 'regions.name'?"),
        (["query", "-m", "revenue", "--by", "region"], "needs its entity"),
        (["query", "-m", "revenue", "--by", "orders.channel:month"], "not a time dimension"),
        (["query", "-m", "revenue", "--by", "metric_time:fortnight"], "unknown grain 'fortnight'"),
        (["query", "-m", "revenue", "--segment", "high_valu"], "did you mean 'high_value'?"),
        (["query", "-m", "revenue", "--where", "orders.channel = 'x'; DROP TABLE orders"], "CRM310"),
        (["query", "-m", "revenue", "--where", "(SELECT 1) = 1"], "subqueries are not allowed"),
        (["query", "-m", "revenue", "--where", "chanel = 'web'"], "entity.dimension"),
        (["query", "-m", "revenue", "--order-by", "profit"], "unknown order_by column 'profit'"),
        (["compile", "-m", "revenue", "--dialect", "nosuchdb"], "CRM400"),
        (["query", "-m", "ticket_count", "--by", "orders.channel"], "no join path from tickets to orders"),
        (["query", "-m", "revenue", "--context", "tenant"], "NAME=VALUE"),
        (["query", "-m", "revenue", "--project", "does-not-exist.yml"], "no such project file: does-not-exist.yml"),
    ],
)
def test_cli_user_errors_exit_2_with_one_message(crm, monkeypatch, capsys, argv, message) -> None:
    monkeypatch.chdir(crm.root)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
