"""Query results: column names, rows, and conversions to JSON, CSV, Arrow and pandas."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def plain(value: Any) -> Any:
    """A value as JSON has it: dates as ISO 8601 strings, decimals as numbers, NaN as null."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass
class Result:
    """What a query returned. `columns` are exactly the references and metric names asked for."""

    columns: list[str]
    rows: list[tuple]
    sql: str = ""
    notes: list[str] = field(default_factory=list)
    _arrow: Any = None  # the driver's Arrow table, when it gave one

    def __len__(self) -> int:
        return len(self.rows)

    def records(self) -> list[dict[str, Any]]:
        """One dict per row, keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def to_json(self, indent: int | None = 2) -> str:
        """A JSON array of row objects (dates ISO 8601, NULL as null)."""
        rows = [{c: plain(v) for c, v in zip(self.columns, row, strict=True)} for row in self.rows]
        return json.dumps(rows, indent=indent, ensure_ascii=False)

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([["" if v is None else plain(v) for v in row] for row in self.rows])
        return out.getvalue()

    def to_arrow(self) -> Any:
        """A pyarrow.Table (needs the `arrow` extra)."""
        if self._arrow is not None:
            return self._arrow
        try:
            import pyarrow as pa
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("to_arrow() needs pyarrow: pip install 'crmetrics[arrow]'") from None
        return pa.table(
            {c: list(col) for c, col in zip(self.columns, _transpose(self.rows, len(self.columns)), strict=True)}
        )

    def to_pandas(self) -> Any:
        """A pandas.DataFrame (needs the `pandas` extra)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install 'crmetrics[pandas]'") from None
        if self._arrow is not None:
            return self._arrow.to_pandas()
        return pd.DataFrame.from_records(self.rows, columns=self.columns)


def _transpose(rows: Sequence[tuple], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]
