"""Errors are a contract: every code used in crmetrics/ is documented, no two classes share one, all derive from
CrmetricsError, and the CLI shows the code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import crmetrics
from crmetrics.errors import CrmetricsError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "crmetrics"
DOCS = ROOT / "docs" / "errors.md"
CODE = re.compile(r"\bCRM\d{3}\b")
# modules whose import needs an optional driver or service; their error classes are checked when importable
OPTIONAL = ("crmetrics.engines.spark", "crmetrics.engines.clickhouse", "crmetrics.engines.postgres")


def used_codes() -> dict[str, list[str]]:
    """Every CRM### written in the package's (and the example plugins') source and data files, with where."""
    found: dict[str, list[str]] = {}
    plugins = ROOT / "plugins"  # the example third-party plugins use the same codes
    for path in sorted([*PACKAGE.rglob("*"), *(plugins.rglob("*") if plugins.is_dir() else [])]):
        if path.suffix not in (".py", ".yml", ".yaml", ".j2", ".md") or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for code in CODE.findall(line):
                found.setdefault(code, []).append(f"{path.relative_to(ROOT)}:{number}")
    return found


def documented_codes() -> set[str]:
    """Codes that head a row of a table in docs/errors.md."""
    rows = [line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("| `CRM")]
    return {match.group(0) for row in rows if (match := CODE.match(row, 3))}


def error_classes() -> list[type[CrmetricsError]]:
    for module in pkgutil.walk_packages([str(PACKAGE)], prefix="crmetrics."):
        if module.name.endswith("__main__"):  # importing it runs the command line
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:
            if not module.name.startswith(OPTIONAL):
                raise
    seen: list[type[CrmetricsError]] = []
    stack = [CrmetricsError]
    while stack:
        cls = stack.pop()
        if cls not in seen and cls.__module__.startswith("crmetrics"):
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen


def test_every_code_used_is_documented() -> None:
    missing = {code: where[:3] for code, where in used_codes().items() if code not in documented_codes()}
    assert not missing, f"document these codes in docs/errors.md: {missing}"


def test_documented_codes_exist() -> None:
    stale = documented_codes() - set(used_codes())
    assert not stale, f"docs/errors.md documents codes nothing uses: {sorted(stale)}"


def test_no_two_classes_share_a_code() -> None:
    owners: dict[str, list[str]] = {}
    for cls in error_classes():
        if "code" in vars(cls):  # a subclass that does not set its own code is the same kind of error
            owners.setdefault(cls.code, []).append(f"{cls.__module__}.{cls.__qualname__}")
    shared = {code: names for code, names in owners.items() if len(names) > 1}
    assert not shared, shared
    assert all(re.fullmatch(r"CRM\d{3}", code) for code in owners)
    assert set(owners) <= documented_codes()


def test_public_exceptions_derive_from_crmetrics_error() -> None:
    for name in crmetrics.__all__:
        value = getattr(crmetrics, name)
        if inspect.isclass(value) and issubclass(value, BaseException):
            assert issubclass(value, CrmetricsError), name
    for cls in error_classes():
        assert re.fullmatch(r"CRM\d{3}", cls.code), cls


def test_no_exception_class_outside_the_hierarchy() -> None:
    """An exception class defined in crmetrics/ must be a CrmetricsError, so callers can catch one type."""
    error_classes()  # imports every module
    strays = []
    for name, module in list(__import__("sys").modules.items()):
        if not name.startswith("crmetrics.") or module is None:
            continue
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == name
                and not issubclass(value, CrmetricsError)
            ):
                strays.append(f"{name}.{value.__qualname__}")
    assert not strays, f"derive these from a CrmetricsError subclass: {strays}"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["query", "-m", "nope"], "CRM200"),
        (["query", "-m", "revenue", "--where", "customers.region IN (SELECT 1)"], "CRM310"),
        (["query", "-m", "revenue", "--by", "customers.region; x"], "CRM300"),
        (["compile", "-m", "revenue", "--dialect", "nosuchdialect"], "CRM400"),
    ],
)
def test_cli_prints_the_code(tmp_path: Path, argv: list[str], code: str, capsys: pytest.CaptureFixture) -> None:
    from crmetrics.cli import main
    from tests import tenancy_data as td

    path = td.write_project(tmp_path)
    assert main([*argv, "--project", str(path), "--context", "tenant_id=1"]) == 2
    assert code in capsys.readouterr().err
