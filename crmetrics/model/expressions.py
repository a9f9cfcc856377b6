"""User expressions (dimension and measure expressions, filters, segment conditions, row filters).

Each one is parsed once by sqlglot and checked against an allow-list: column references, literals, operators and a
fixed set of scalar functions. Statements, subqueries, comments, aggregates, window functions and unknown functions
are refused, so no string a user writes can become anything but a scalar expression.
"""

from __future__ import annotations

import functools
import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from crmetrics.errors import UnsafeExpressionError

_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Placeholder,
    exp.Tuple,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.Xor,
    exp.EQ,
    exp.NEQ,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.RegexpLike,
    exp.RegexpILike,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.DPipe,
    exp.Concat,
    exp.ConcatWs,
    exp.Case,
    exp.If,
    exp.Coalesce,
    exp.Nullif,
    exp.Cast,
    exp.TryCast,
    exp.DataType,
    exp.DataTypeParam,
    exp.Var,
    exp.Interval,
    exp.Unit if hasattr(exp, "Unit") else exp.Var,
    exp.Lower,
    exp.Upper,
    exp.Trim,
    exp.Length,
    exp.Substring,
    exp.Left,
    exp.Right,
    exp.StrPosition,
    exp.Abs,
    exp.Round,
    exp.Floor,
    exp.Ceil,
    exp.Sqrt,
    exp.Ln,
    exp.Log,
    exp.Pow,
    exp.Sign,
    exp.Greatest,
    exp.Least,
    exp.StartsWith,
    exp.DateTrunc,
    exp.TimestampTrunc,
    exp.DatetimeTrunc,
    exp.Extract,
    exp.CurrentDate,
    exp.CurrentTimestamp,
    exp.DateAdd,
    exp.DateSub,
    exp.DateDiff,
    exp.TimestampAdd,
    exp.TimestampSub,
    exp.TimestampDiff,
    exp.TsOrDsToDate,
    exp.TsOrDsAdd,
    exp.TsOrDsDiff,
    exp.StrToDate,
    exp.StrToTime,
    exp.Date,
    exp.Year,
    exp.Quarter,
    exp.Month,
    exp.Week,
    exp.Day,
    exp.DayOfWeek,
    exp.DayOfWeekIso,
    exp.DayOfMonth,
    exp.DayOfYear,
    exp.Hour if hasattr(exp, "Hour") else exp.Var,
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALLOWED_ANONYMOUS = frozenset({"date_part", "datepart", "strftime", "replace", "lpad", "rpad", "md5"})


def _forbidden(node: exp.Expression) -> str | None:
    if node.comments:
        return "comments are not allowed"
    if isinstance(node, exp.Placeholder) and not (isinstance(node.this, str) and _NAME.fullmatch(node.this)):
        return "only named context variables (:name) are allowed as placeholders"
    if isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
        return None if name in _ALLOWED_ANONYMOUS else f"function '{node.this}' is not allowed"
    if isinstance(node, _ALLOWED_NODES):
        return None
    if isinstance(node, exp.Query | exp.Subquery):
        return "subqueries are not allowed"
    if isinstance(node, exp.AggFunc):
        return f"aggregate function {node.sql_name()} is not allowed here (declare a measure instead)"
    if isinstance(node, exp.Window):
        return "window functions are not allowed"
    if isinstance(node, exp.Func):
        return f"function {node.sql_name()} is not allowed"
    if isinstance(node, exp.Star):
        return "'*' is not allowed"
    return f"{node.key.upper()} is not allowed in an expression"


def parse_expression(text: str, dialect: str = "duckdb") -> exp.Expression:
    """Parse one scalar expression and check it against the allow-list; raise UnsafeExpressionError otherwise.

    Parses are cached (the same filter is asked again and again): the tree returned is shared, so callers copy it
    before changing it, as the compiler always does.
    """
    if not isinstance(text, str) or not isinstance(dialect, str):
        raise UnsafeExpressionError("expected a non-empty SQL expression")
    # exact str values as the cache key: a str subclass could fake equality with another filter
    return _parse_checked(str.__str__(text), str.__str__(dialect))


@functools.lru_cache(maxsize=4096)
def _parse_checked(text: str, dialect: str) -> exp.Expression:
    """The parse and allow-list check behind `parse_expression`'s cache."""
    if not text.strip():
        raise UnsafeExpressionError("expected a non-empty SQL expression")
    bare = _outside_strings(text)
    if "--" in bare or "/*" in bare or ";" in bare:
        raise UnsafeExpressionError(f"comments and ';' are not allowed in an expression: {text!r}")
    if _paren_depth(bare) > MAX_PAREN_DEPTH:  # the same limit whether or not sqlglot's parser is compiled
        raise UnsafeExpressionError(
            f"expression nested too deeply (more than {MAX_PAREN_DEPTH} levels of parentheses): {text[:80]!r}..."
        )
    try:
        statements = sqlglot.parse(text, read=dialect)
    except (ParseError, TokenError) as error:
        raise UnsafeExpressionError(f"cannot parse {text!r}: {_first_line(error)}") from None
    except RecursionError:  # sqlglot's parser recurses once per nesting level
        raise UnsafeExpressionError(f"expression nested too deeply: {text[:80]!r}...") from None
    if len(statements) != 1 or statements[0] is None:
        raise UnsafeExpressionError(f"expected exactly one expression, got {text!r}")
    tree = statements[0]
    for node in tree.walk():
        reason = _forbidden(node)
        if reason:
            raise UnsafeExpressionError(f"{reason}: {text!r}")
    return without_positions(tree)


_POSITIONS = frozenset({"line", "col", "start", "end"})


def without_positions(tree: exp.Expression) -> exp.Expression:
    """`tree` without the parser's token positions, in place.

    Positions only serve sqlglot's own error messages, and every copy of a model tree made while compiling would
    deep-copy them dict by dict (the largest single cost of compiling once sqlglot's compiled build is installed).
    """
    for node in tree.walk():
        meta = node._meta
        if meta is not None and meta.keys() <= _POSITIONS:
            node._meta = None
    return tree


MAX_PAREN_DEPTH = 100


def _paren_depth(bare: str) -> int:
    """The deepest nesting of parentheses in `bare` (text outside string literals)."""
    depth = deepest = 0
    for ch in bare:
        if ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def _outside_strings(text: str) -> str:
    """`text` without its quoted string literals, so a ';' inside a string value is not mistaken for a statement."""
    out, quote = [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        else:
            out.append(ch)
    return "".join(out)


_INCOMPLETE = re.compile(r"Required keyword: '\w+' missing for .*?\. Line (\d+), Col: (\d+)")


def _first_line(error: Exception) -> str:
    """sqlglot's reason, in the user's terms where it speaks of its own classes."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    incomplete = _INCOMPLETE.search(text)
    if incomplete:
        return f"the expression is incomplete: an operand is missing near column {incomplete.group(2)}"
    return text


def column_refs(tree: exp.Expression) -> list[exp.Column]:
    """Every column reference in `tree`, in reading order."""
    return list(tree.find_all(exp.Column))


def placeholders(tree: exp.Expression) -> list[str]:
    """Names of the `:name` context variables that `tree` uses."""
    return [str(p.this) for p in tree.find_all(exp.Placeholder)]
