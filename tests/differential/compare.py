"""Row comparison for the differential suite: same rows, same NULLs, numbers within 1e-9 relative, same types."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

REL = 1e-9


def same_value(actual: Any, expected: Any) -> bool:
    if expected is None or actual is None:
        return actual is None and expected is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        # ClickHouse and SQLite have no boolean result type: their 0/1 stand for False/True
        return isinstance(actual, bool | int) and isinstance(expected, bool | int) and int(actual) == int(expected)
    if isinstance(expected, float) or isinstance(actual, float):
        if type(actual) is not type(expected):
            return False
        return math.isclose(actual, expected, rel_tol=REL, abs_tol=1e-12)
    return type(actual) is type(expected) and actual == expected


def assert_rows(actual: Sequence[Sequence[Any]], expected: Sequence[Sequence[Any]], label: str = "") -> None:
    """Row by row, value by value; the message names the first difference."""
    prefix = f"{label}: " if label else ""
    assert len(actual) == len(expected), f"{prefix}{len(actual)} rows, expected {len(expected)}"
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert len(got) == len(want), f"{prefix}row {index} has {len(got)} values, expected {len(want)}"
        for column, (a, e) in enumerate(zip(got, want, strict=True)):
            assert same_value(a, e), (
                f"{prefix}row {index} column {column}: {a!r} ({type(a).__name__}), "
                f"expected {e!r} ({type(e).__name__})\n got row {tuple(got)!r}\nwant row {tuple(want)!r}"
            )
