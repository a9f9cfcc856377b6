"""Which `table:` and `sql:` entity sources would read files, so that they stay inside the project folder.

DuckDB reads a file wherever a table name looks like a path (`FROM "/etc/data.csv"`, a "replacement scan") and
through table functions such as `read_csv` or `glob`. A project may only read files through `file:` entities, whose
paths are checked against the project folder, unless it is loaded with `allow_outside=True`.
"""

from __future__ import annotations

from sqlglot import exp

# DuckDB table and scalar functions that open files, list folders or reach other databases
_FILE_FUNCTIONS = frozenset({"glob", "sniff_csv", "getenv", "query_table", "query", "postgres_query", "mysql_query"})
_FILE_PREFIXES = ("read_", "parquet_", "iceberg_", "delta_")
_PATH_CHARACTERS = frozenset("/\\.:~")


def file_access(tree: exp.Expression) -> str | None:
    """Why `tree` (a table reference or a SELECT) would read a file or another database, or None if it does not."""
    for node in tree.walk():
        if isinstance(node, exp.Table):
            for part in node.parts if isinstance(node.this, exp.Identifier) else ():  # functions: checked below
                if _PATH_CHARACTERS & set(part.name):
                    return f"table name '{part.name}' looks like a file path (declare it with `file:`)"
        if isinstance(node, exp.Func):
            name = (str(node.this) if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in _FILE_FUNCTIONS or name.startswith(_FILE_PREFIXES) or name.endswith("_scan"):
                return f"function {name} reads files or other databases (declare files with `file:`)"
    return None


def is_plain_table(tree: exp.Expression) -> bool:
    """A `table:` source is a (catalog.)(schema.)name of identifiers, never a function or a file path."""
    return isinstance(tree, exp.Table) and isinstance(tree.this, exp.Identifier) and file_access(tree) is None
