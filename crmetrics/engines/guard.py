"""The last check before SQL reaches a database: a single read-only query, and a per-query timeout.

Every engine a `Project` hands out is wrapped in `SafeEngine`, so built-in, third-party and bring-your-own engines
all go through the same check. The SQL text that is about to be sent is parsed again by sqlglot in the engine's
dialect and its AST must be exactly one SELECT (or a set operation of SELECTs, with or without WITH) containing no
statement of any other kind: no INSERT/UPDATE/DELETE/MERGE (PostgreSQL allows those inside WITH), no DDL, no
SELECT ... INTO, no row locks, no SET, no commands. SQL that sqlglot cannot parse is refused (fail closed).
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Callable
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from crmetrics.engines.base import Engine
from crmetrics.errors import ConnectionFailed, UnsafeStatement
from crmetrics.result import Result

_FORBIDDEN: tuple[type, ...] = (
    exp.DDL,
    exp.DML,
    exp.Command,
    exp.Into,
    exp.Lock,
    exp.Set,
    exp.Pragma,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.Use,
    exp.TruncateTable,
    exp.Analyze,
)


def check_read_only(sql: str, dialect: str) -> exp.Expression:
    """Parse `sql` and return its tree if it is one read-only query; raise UnsafeStatement otherwise."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except SqlglotError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnsafeStatement(f"refusing to send SQL that cannot be checked as a single SELECT: {first}") from None
    if len(statements) != 1:
        raise UnsafeStatement(f"refusing to send {len(statements)} statements: only a single SELECT is allowed")
    tree = statements[0]
    if not isinstance(tree, exp.Select | exp.SetOperation):
        raise UnsafeStatement(f"refusing to send a {tree.key.upper()} statement: only a single SELECT is allowed")
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN):
            raise UnsafeStatement(f"refusing to send a SELECT that contains {node.key.upper()}: it must be read-only")
    return tree


class Watchdog:
    """Calls `cancel` once `seconds` have passed, and again every `repeat` seconds until the block ends.

    Repeating matters where a cancel can arrive before the database has started the work it would cancel (Spark
    plans a query before its jobs exist, and interrupting a tag with no jobs yet does nothing). `fired` says whether
    the time ran out.
    """

    def __init__(self, seconds: float | None, cancel: Callable[[], Any], repeat: float = 0.5) -> None:
        self.seconds, self.cancel, self.repeat, self.fired = seconds, cancel, repeat, False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.fired = True
        while True:
            # the query may have just finished; what it returned or raised is reported instead
            with contextlib.suppress(Exception):
                self.cancel()
            if self._done.wait(self.repeat):
                return

    def __enter__(self) -> Watchdog:
        if self.seconds:
            self._thread = threading.Thread(target=self._watch, name="crmetrics-timeout", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def accepts_timeout(engine: Any) -> bool:
    """Whether `engine.execute` takes the `timeout` keyword."""
    try:
        parameters = inspect.signature(engine.execute).parameters
    except (TypeError, ValueError):
        return False
    return "timeout" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


class SafeEngine:
    """Wraps any engine: checks each statement with `check_read_only` and passes the query timeout on."""

    def __init__(self, engine: Engine, timeout: float | None = None) -> None:
        self.engine = engine.engine if isinstance(engine, SafeEngine) else engine
        self.timeout = timeout

    @property
    def dialect(self) -> str:
        return self.engine.dialect

    def execute(self, sql: str, columns: list[str], timeout: float | None = None) -> Result:
        """Run `sql` after the read-only check, cancelled after `timeout` (default: the project's) seconds."""
        check_read_only(sql, self.engine.dialect)
        seconds = timeout if timeout is not None else self.timeout
        if not seconds:
            return self.engine.execute(sql, columns)
        if not accepts_timeout(self.engine):
            raise ConnectionFailed(
                f"the {type(self.engine).__name__} engine cannot cancel a query, so the configured query timeout "
                f"({seconds:g} s) cannot be honoured; remove settings.query_timeout / --timeout or use an engine "
                f"that supports it"
            )
        return self.engine.execute(sql, columns, timeout=seconds)  # type: ignore[call-arg]

    def close(self) -> None:
        self.engine.close()

    def __getattr__(self, name: str) -> Any:  # the wrapped engine's own extras (e.g. `connection`)
        return getattr(self.engine, name)
