"""What crmetrics needs of a database: run one SELECT and return a `Result`."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from crmetrics.result import Result


@runtime_checkable
class Engine(Protocol):
    """A database connection that runs compiled queries. Implementations must be safe to share between threads."""

    dialect: str  # the sqlglot dialect of the SQL it accepts

    def execute(self, sql: str, columns: list[str]) -> Result:
        """Run one SELECT; name the result's columns `columns` (the driver's names are ignored)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...
