"""Copy Arrow tables into each engine under test (test-only: the engines themselves are read-only).

Every engine receives the same rows with equivalent column types: DECIMAL stays fixed-point, TIMESTAMP stays
without a time zone (ClickHouse DateTime64 in UTC, Spark TIMESTAMP_NTZ), so the engines are asked identical questions.
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def _sql_type(kind: pa.DataType, dialect: str) -> str:
    types = pa.types
    if types.is_decimal(kind):
        name = {"clickhouse": "Decimal", "sqlite": "REAL"}.get(dialect, "NUMERIC")
        return name if dialect == "sqlite" else f"{name}({kind.precision}, {kind.scale})"
    if types.is_integer(kind):
        return {"clickhouse": "Int64", "sqlite": "INTEGER"}.get(dialect, "BIGINT")
    if types.is_floating(kind):
        return {"clickhouse": "Float64", "sqlite": "REAL"}.get(dialect, "DOUBLE PRECISION")
    if types.is_boolean(kind):
        return {"clickhouse": "Bool", "sqlite": "INTEGER"}.get(dialect, "BOOLEAN")
    if types.is_timestamp(kind):
        return {"clickhouse": "DateTime64(6, 'UTC')", "sqlite": "TEXT"}.get(dialect, "TIMESTAMP")
    if types.is_date(kind):
        return {"clickhouse": "Date32", "sqlite": "TEXT"}.get(dialect, "DATE")
    return {"clickhouse": "String", "sqlite": "TEXT"}.get(dialect, "TEXT")


def _columns(table: pa.Table, dialect: str, quote: str = '"') -> str:
    def column(field: pa.Field) -> str:
        kind = _sql_type(field.type, dialect)
        return f"{quote}{field.name}{quote} {f'Nullable({kind})' if dialect == 'clickhouse' else kind}"

    return ", ".join(column(f) for f in table.schema)


def load_postgres(url: str, tables: dict[str, pa.Table]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for name, table in tables.items():
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
            conn.execute(f'CREATE TABLE "{name}" ({_columns(table, "postgres")})')
            with conn.cursor().copy(f'COPY "{name}" FROM STDIN') as copy:
                for row in _rows(table):
                    copy.write_row(row)


def load_sqlite(path: Path, tables: dict[str, pa.Table]) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        for name, table in tables.items():
            conn.execute(f'CREATE TABLE "{name}" ({_columns(table, "sqlite")})')
            marks = ", ".join("?" for _ in table.schema)
            conn.executemany(f'INSERT INTO "{name}" VALUES ({marks})', [_sqlite_row(r) for r in _rows(table)])
    conn.close()


def _sqlite_row(row: tuple) -> tuple:
    def plain(value: Any) -> Any:
        if isinstance(value, decimal.Decimal):
            return float(value)
        if isinstance(value, dt.datetime):
            return value.isoformat(sep=" ")
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    return tuple(plain(v) for v in row)


def load_chdb(conn: Any, tables: dict[str, pa.Table], folder: Path) -> None:
    for name, table in tables.items():
        path = folder / f"{name}.parquet"
        pq.write_table(table, path)
        conn.query(f"DROP TABLE IF EXISTS `{name}`")
        conn.query(f"CREATE TABLE `{name}` ({_columns(table, 'clickhouse', '`')}) ENGINE = Memory")
        conn.query(f"INSERT INTO `{name}` SELECT * FROM file('{path}', Parquet)")


def _spark_type(kind: pa.DataType) -> str:
    types = pa.types
    if types.is_decimal(kind):
        return f"DECIMAL({kind.precision}, {kind.scale})"
    if types.is_integer(kind):
        return "INT" if kind.bit_width <= 32 else "BIGINT"
    if types.is_floating(kind):
        return "DOUBLE"
    if types.is_boolean(kind):
        return "BOOLEAN"
    if types.is_timestamp(kind):
        return "TIMESTAMP_NTZ"
    if types.is_date(kind):
        return "DATE"
    return "STRING"


def load_spark(session: Any, tables: dict[str, pa.Table], folder: Path) -> None:
    """Temporary views over Parquet files; the schema is given, so no Spark job runs to infer it."""
    for name, table in tables.items():
        path = folder / f"{name}.spark.parquet"
        pq.write_table(table, path)
        schema = ", ".join(f"`{f.name}` {_spark_type(f.type)}" for f in table.schema)
        session.read.schema(schema).parquet(str(path)).createOrReplaceTempView(name)


def _rows(table: pa.Table) -> list[tuple]:
    data = [c.to_pylist() for c in table.columns]
    return list(zip(*data, strict=True)) if data else []
