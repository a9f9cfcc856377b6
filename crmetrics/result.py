"""Query results: column names, rows, and conversions to JSON, CSV, Arrow and pandas."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
from collections.abc import Sequence
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


class Result:
    """What a query returned. `columns` are exactly the references and metric names asked for.

    A result may hold the driver's Arrow table instead of rows: `rows` then turns it into Python tuples the first
    time they are asked for, so an analysis returning a million-row table does not pay for a million tuples that a
    caller reading `to_arrow()`, `to_pandas()` or `len()` never looks at. Setting `rows` drops the Arrow table.
    """

    def __init__(
        self,
        columns: list[str],
        rows: list[tuple] | None = None,
        sql: str = "",
        notes: list[str] | None = None,
        _arrow: Any = None,
    ) -> None:
        """`rows`, or `_arrow`: the driver's Arrow table with canonical column types, rows made from it on demand."""
        if rows is None and _arrow is None:
            rows = []
        self.columns = columns
        self._rows = rows
        self.sql = sql
        self.notes = notes if notes is not None else []
        self._arrow = _arrow

    @property
    def has_arrow(self) -> bool:
        """Whether the driver's Arrow table is held, so that `to_arrow()` costs nothing."""
        return self._arrow is not None

    @property
    def rows(self) -> list[tuple]:
        """One tuple per row, values in their canonical Python types (crmetrics.engines.normalise)."""
        if self._rows is None:
            self._rows = arrow_rows(self._arrow)
        return self._rows

    @rows.setter
    def rows(self, rows: list[tuple]) -> None:
        self._rows = rows
        self._arrow = None  # the Arrow table no longer says the same

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return (self.columns, self.rows, self.sql, self.notes) == (other.columns, other.rows, other.sql, other.notes)

    def __repr__(self) -> str:
        return f"Result(columns={self.columns!r}, rows={len(self)} rows, sql={self.sql[:60]!r})"

    def __len__(self) -> int:
        return len(self._rows) if self._rows is not None else self._arrow.num_rows

    def records(self) -> list[dict[str, Any]]:
        """One dict per row, keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]

    def column(self, name: str) -> list[Any]:
        """The values of one column, in row order."""
        index = self.columns.index(name)
        if self._rows is None:  # one column of the Arrow table, without making every row
            return _arrow_values(self._arrow.column(index), self._arrow.schema.field(index).type)
        return [row[index] for row in self.rows]

    def subset(self, names: list[str], indices: list[int], start: int = 0, stop: int | None = None) -> Result:
        """Rows `start` to `stop` of the columns at `indices`, renamed `names`; an Arrow table is sliced, not copied."""
        if self._rows is None:
            stop = self._arrow.num_rows if stop is None else stop
            table = self._arrow.slice(start, max(stop - start, 0)).select(indices).rename_columns(names)
            return Result(names, None, self.sql, list(self.notes), _arrow=table)
        return Result(names, _pick(self._rows[start:stop], indices), self.sql, list(self.notes))

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
        """A pandas.DataFrame (needs the `pandas` extra). DATE columns become datetime64 (NULL: NaT), as TIMESTAMP
        columns are, so a time axis resamples and plots like any pandas time series."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install 'crmetrics[pandas]'") from None
        if self._arrow is not None:  # typed by the database: Arrow converts it column by column
            return self._arrow.to_pandas(date_as_object=False)
        frame = pd.DataFrame.from_records(self.rows, columns=self.columns)
        for index in range(len(self.columns)):  # only columns of dates alone: one mixing dates and times keeps both
            values = [row[index] for row in self.rows if row[index] is not None]
            if values and all(type(v) is dt.date for v in values):
                frame.isetitem(index, pd.to_datetime(frame.iloc[:, index]))
        return frame


def _pick(rows: list[tuple], indices: list[int]) -> list[tuple]:
    if indices and indices == list(range(indices[0], indices[-1] + 1)):  # adjacent columns: one slice per row
        first, last = indices[0], indices[-1] + 1
        return [row[first:last] for row in rows]
    return [tuple(row[i] for i in indices) for row in rows]


def _transpose(rows: Sequence[tuple], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _arrow_values(array: Any, kind: Any) -> list[Any]:
    """The Python values of one column of a normalised Arrow table (crmetrics.engines.normalise.arrow_table).

    Its types are canonical already except a DECIMAL that did not fit the canonical type (a whole number too
    large for int64): its values become int, as crmetrics.engines.normalise.rows makes them.
    """
    values = array.to_pylist()
    if getattr(kind, "scale", None) is None:  # not a DECIMAL
        return values
    return [None if v is None else int(v) for v in values]


def arrow_rows(table: Any) -> list[tuple]:
    """The rows of a normalised Arrow table, converted a batch at a time: the per-column lists stay small."""
    if not table.num_columns:
        return [() for _ in range(table.num_rows)]
    rows: list[tuple] = []
    for batch in table.to_batches(max_chunksize=65536):
        data = [_arrow_values(array, kind) for array, kind in zip(batch.columns, table.schema.types, strict=True)]
        rows.extend(zip(*data, strict=True))
    return rows
