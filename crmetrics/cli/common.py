"""Options and output shared by the commands: --project, --connection, --context, --format, row limits."""

from __future__ import annotations

import argparse
import decimal
import math
import sys
from collections.abc import Mapping
from typing import Any

from crmetrics.errors import QueryError
from crmetrics.result import Result, plain

DEFAULT_ROW_LIMIT = 1000
NUMBER_FORMATS = {
    "percent": "{:.1%}",
    "currency": "{:,.2f}",
    "integer": "{:,.0f}",
    "score": "{:,.1f}",
    "decimal": "{:,.2f}",  # one number of decimals down a column: 2,096.30 above 510.25, not 2,096.3
    "id": "{}",  # identifiers without thousands separators
}


def add_project_options(parser: argparse.ArgumentParser, data: bool = True) -> None:
    """--project everywhere; --connection and --context for commands that read data."""
    parser.add_argument(
        "--project", "-p", default="crmetrics.yml", help="project file or its folder (default: crmetrics.yml)"
    )
    if data:
        parser.add_argument("--connection", help="database URL, overrides the project's `connection`")
        parser.add_argument(
            "--timeout", type=float, metavar="SECONDS", help="cancel a query after this long (settings.query_timeout)"
        )
        parser.add_argument(
            "--context",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a context variable for row-level security (repeatable)",
        )


def add_query_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--metric", action="append", default=[], dest="metrics", help="a metric (repeatable)")
    parser.add_argument("--by", action="append", default=[], help="entity.dimension[:grain] or metric_time:grain")
    parser.add_argument("--where", help="a filter over dimension references")
    parser.add_argument("--segment", action="append", default=[], dest="segments", help="a segment (repeatable)")
    parser.add_argument("--order-by", action="append", default=[], help="a metric or reference; -name descends")
    parser.add_argument("--limit", type=int, help="at most this many rows")
    add_time_options(parser)


def add_time_options(parser: argparse.ArgumentParser) -> None:
    """--start/--end/--range/--today/--fill-gaps/--compare (docs/time.md)."""
    time = parser.add_argument_group("time")
    time.add_argument("--start", help="first day of metric_time, YYYY-MM-DD (inclusive)")
    time.add_argument("--end", help="last day of metric_time, YYYY-MM-DD (inclusive)")
    time.add_argument("--range", dest="time_range", help='a relative range: "last 90 days", "this quarter", "ytd"')
    time.add_argument("--today", help="the date relative ranges are resolved against (default: today)")
    time.add_argument("--fill-gaps", action="store_true", help="show periods without data (0 for sums and counts)")
    time.add_argument("--compare", choices=("period", "year"), help="add metric:previous, :change and :growth columns")


def time_options(args: argparse.Namespace) -> dict[str, Any]:
    """The time options given on the command line, as keyword arguments of Project.compile/query."""
    return {
        "start": args.start,
        "end": args.end,
        "time_range": args.time_range,
        "today": args.today,
        "fill_gaps": args.fill_gaps,
        "compare": args.compare,
    }


def load_project(args: argparse.Namespace) -> Any:
    import crmetrics

    project = crmetrics.load(args.project)
    if getattr(args, "timeout", None) is not None:  # --timeout overrides settings.query_timeout for this run
        project.model.settings["query_timeout"] = args.timeout
    return project


def parse_context(pairs: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs; integers and decimals become numbers, so they bind as typed literals."""
    context: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise QueryError(f"--context needs NAME=VALUE, got {pair!r}")
        context[name.strip()] = _typed(value)
    return context


def _typed(value: str) -> Any:
    for kind in (int, float):
        try:
            number = kind(value)
        except ValueError:
            continue
        # "nan", "inf" and "1_000" stay the strings they were typed as: only plain finite numbers become numbers
        if math.isfinite(number) and "_" not in value:
            return number
        break
    return value


def print_result(
    result: Result, fmt: str, row_limit: int | None = None, formats: Mapping[str, str] | None = None
) -> None:
    """Print a result as a table, JSON or CSV; the table view is cut at `row_limit` with a notice and shows each
    column in its metric's `format` (JSON and CSV keep the plain numbers)."""
    if fmt == "json":
        sys.stdout.write(result.to_json() + "\n")
    elif fmt == "csv":
        sys.stdout.write(result.to_csv())
    else:
        sys.stdout.write(format_table(result.columns, result.rows, row_limit or DEFAULT_ROW_LIMIT, formats))


def format_table(
    columns: list[str],
    rows: list[tuple],
    row_limit: int = DEFAULT_ROW_LIMIT,
    formats: Mapping[str, str] | None = None,
) -> str:
    """Rows as an aligned text table; numbers right-aligned."""
    shown = rows[:row_limit]
    kinds = [(formats or {}).get(c, "number") for c in columns]
    cells = [[_cell(v, k) for v, k in zip(row, kinds, strict=True)] for row in shown]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in shown) and bool(shown)
        for i in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))

    out = [line(columns), "  ".join("-" * w for w in widths), *(line(r) for r in cells)]
    if len(rows) > row_limit:
        out.append(
            f"... {len(rows) - row_limit} more rows not shown (showing {row_limit}; use --limit, "
            f"--format csv or settings.row_limit)"
        )
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(o.rstrip() for o in out) + "\n"


def _cell(value: Any, kind: str = "number") -> str:
    value = plain(value)
    if value is None:
        return "NULL"
    if isinstance(value, float):  # finite: plain() made NaN and infinity None
        # the shortest decimal that is this float (what JSON shows): 1000000000123.43 is ...123.4300537 in binary,
        # and formatting the binary value to 4 places would print a digit that is not in the data
        value = decimal.Decimal(repr(value))
    if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool) and kind in NUMBER_FORMATS:
        return _no_negative_zero(NUMBER_FORMATS[kind].format(value))
    if isinstance(value, decimal.Decimal):
        text = f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:.6g}"
        return _no_negative_zero(text)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _no_negative_zero(text: str) -> str:
    """-0.00001 rounded to the shown places is 0, not "-0"."""
    return text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) else text
