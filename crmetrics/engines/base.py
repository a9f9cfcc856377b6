"""What crmetrics needs of a database: run one SELECT and return a `Result`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from crmetrics.errors import MissingDriver
from crmetrics.result import Result


@runtime_checkable
class Engine(Protocol):
    """A database connection that runs compiled queries. Implementations must be safe to share between threads.

    `execute` receives only statements that passed the read-only guard (`crmetrics.engines.guard`). An engine should
    accept a keyword `timeout` (seconds, None for no limit) and cancel the query on the database when it runs longer;
    an engine without it can only be used when no timeout is configured.
    """

    dialect: str  # the sqlglot dialect of the SQL it accepts

    def execute(self, sql: str, columns: list[str]) -> Result:
        """Run one SELECT; name the result's columns `columns` (the driver's names are ignored)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


def require(module: str, extra: str, what: str) -> object:
    """Import a driver module lazily, or say which `pip install 'crmetrics[extra]'` provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDriver(
            f"{what} needs the Python package that provides '{module}' ({error}); "
            f"install it with: pip install 'crmetrics[{extra}]'"
        ) from None


def timeout_message(seconds: float, dialect: str) -> str:
    return f"the query ran longer than the {seconds:g} s timeout and was cancelled on {dialect}"
