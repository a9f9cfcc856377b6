"""The compiler: a `Query` over a `SemanticModel` becomes one SELECT statement in any sqlglot dialect."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError, UnsupportedError

from crmetrics.compiler.build import SelectBuilder
from crmetrics.compiler.dialects import prepare
from crmetrics.compiler.query import Query, build_query
from crmetrics.errors import CompileError
from crmetrics.model.types import SemanticModel

__all__ = ["Query", "build_query", "compile_select", "render"]


def compile_select(model: SemanticModel, query: Query) -> exp.Select:
    """The query as a sqlglot expression tree."""
    return SelectBuilder(model, query).build()


def render(tree: exp.Expression, dialect: str, pretty: bool = False) -> str:
    """SQL text for `dialect`; a feature the dialect lacks is an error, never silently wrong SQL."""
    try:
        tree = prepare(tree, dialect)  # per-dialect rewrites of sqlglot's known traps (compiler/dialects.py)
        # copy=False: the tree was built for this call alone, and copying it costs a third of compile time
        return tree.sql(dialect=dialect, pretty=pretty, unsupported_level=ErrorLevel.RAISE, copy=False)
    except UnsupportedError as error:
        raise CompileError(f"cannot compile for {dialect}: {error}") from None
    except (SqlglotError, ValueError, KeyError) as error:
        raise CompileError(f"cannot compile for {dialect}: {error}") from None
