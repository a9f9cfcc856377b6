"""One set of Python types for query results, whatever engine and driver produced them.

Rules (docs/databases.md, "Types"):

- integers (any width, signed or unsigned, NumPy or Python) and DECIMALs of scale 0 are `int`;
- every other number (DOUBLE, REAL, DECIMAL/NUMERIC with a fractional scale) is `float`: PostgreSQL's NUMERIC
  average and DuckDB's DOUBLE average must compare equal, so fixed-point values never arrive as `Decimal`;
- dates are `datetime.date`, timestamps naive `datetime.datetime` (time-zone aware ones are converted to UTC);
- strings, booleans and NULL (None) pass through.

The rule looks at the declared scale of a DECIMAL, not at its value, so `SUM(amount)` over a DECIMAL(12,2) column is
a float on every engine even when the total happens to be a whole number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any


def value(item: Any) -> Any:
    """One value in its canonical Python type."""
    kind = type(item)
    if kind in (int, float, str, bool, type(None), dt.date):
        return item
    if kind is dt.datetime:
        return _naive(item)
    if isinstance(item, decimal.Decimal):
        exponent = item.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= 0:
            return int(item)
        return float(item)
    if isinstance(item, bool):
        return bool(item)
    if isinstance(item, int):  # NumPy integers and int subclasses
        return int(item)
    if isinstance(item, float):
        return float(item)
    if isinstance(item, dt.datetime):  # pandas.Timestamp
        return _naive(item.to_pydatetime() if hasattr(item, "to_pydatetime") else item)
    if hasattr(item, "item") and callable(item.item):  # other NumPy scalars (float32, bool_, datetime64)
        return value(item.item())
    return item


def _naive(stamp: dt.datetime) -> dt.datetime:
    if stamp.tzinfo is None:
        return stamp
    return stamp.astimezone(dt.UTC).replace(tzinfo=None)


def rows(records: Iterable[Sequence[Any]]) -> list[tuple]:
    """Rows of canonical values, each column's numbers of one type.

    Drivers without column types (PostgreSQL's NUMERIC, SQLite) are judged by the whole column: a column holding a
    Decimal with a fractional scale, or a float, is all float, so `COALESCE(SUM(amount), 0)` does not give an int 0
    in a column of float totals.
    """
    out = [tuple(row) for row in records]
    if not out:
        return out
    converters = [_converter([row[i] for row in out]) for i in range(len(out[0]))]
    if not any(converters):
        return out
    return [tuple(c(v) if c is not None and v is not None else v for c, v in zip(converters, row)) for row in out]  # noqa: B905


def _is_number(kind: type) -> bool:
    return issubclass(kind, int | float | decimal.Decimal) and not issubclass(kind, bool)


def _fractional(item: Any) -> bool:
    if isinstance(item, float):
        return True
    exponent = item.as_tuple().exponent if isinstance(item, decimal.Decimal) else 0
    return not isinstance(exponent, int) or exponent < 0


def _converter(column: list[Any]) -> Callable[[Any], Any] | None:
    """What turns each value of one result column into its canonical type; None when they already are."""
    kinds = {type(v) for v in column if v is not None}
    if kinds <= {int, str, bool, dt.date} or kinds == {float}:
        return None
    if all(_is_number(k) for k in kinds):
        return float if any(_fractional(v) for v in column if v is not None) else int
    return value


def arrow_table(table: Any, columns: list[str]) -> Any:
    """An Arrow table with canonical column types and names `columns` (its rows: `crmetrics.result.arrow_rows`)."""
    import pyarrow as pa

    fields, arrays = [], []
    for name, array in zip(columns, table.columns, strict=True):
        target = _arrow_type(array.type, pa)
        if target == pa.float64() and pa.types.is_decimal(array.type):
            # Arrow's DECIMAL -> DOUBLE cast is not correctly rounded (917.56 becomes 917.5600000000001); through
            # the decimal's text it is, exactly as Python's float(Decimal) on the row path
            array = array.cast(pa.string())
        if target is not None:
            # a whole number too large for int64 stays a DECIMAL (its values still become int)
            with contextlib.suppress(pa.ArrowInvalid):
                array = array.cast(target)
        arrays.append(array)
        fields.append(pa.field(name, array.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _arrow_type(kind: Any, pa: Any) -> Any:
    """The canonical Arrow type for `kind`, or None to keep it."""
    types = pa.types
    if types.is_decimal(kind):
        return pa.int64() if kind.scale == 0 else pa.float64()
    if types.is_integer(kind) and kind != pa.int64():
        return pa.int64()
    if types.is_floating(kind) and kind != pa.float64():
        return pa.float64()
    if types.is_timestamp(kind) and kind.tz is not None:
        return pa.timestamp(kind.unit)
    if types.is_large_string(kind) or types.is_string_view(kind):
        return pa.string()
    return None


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?")


def text_dates(records: list[tuple]) -> list[tuple]:
    """SQLite keeps dates as ISO text: a column whose every non-NULL value is an ISO date (or timestamp) becomes one.

    SQLite has no DATE type, so the column's values are the only evidence; a text column holding nothing but ISO
    dates is therefore read as dates on SQLite (documented in docs/databases.md).
    """
    if not records:
        return records
    converters: dict[int, Callable[[str], Any]] = {}
    for index in range(len(records[0])):
        texts = [row[index] for row in records if row[index] is not None]
        if not texts or not all(isinstance(t, str) for t in texts):
            continue
        if all(_ISO_DATE.fullmatch(t) for t in texts):
            converters[index] = dt.date.fromisoformat
        elif all(_ISO_STAMP.fullmatch(t) for t in texts):
            converters[index] = dt.datetime.fromisoformat
    if not converters:
        return records
    return [
        tuple(converters[i](v) if i in converters and v is not None else v for i, v in enumerate(row))
        for row in records
    ]
