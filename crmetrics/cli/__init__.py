"""The `crmetrics` command. Each subcommand lives in its own module with `register(subparsers)`.

Exit codes: 0 success, 2 a user error (a one-paragraph message, never a traceback), 1 a crmetrics bug.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Sequence

from crmetrics.errors import ConfigError, CrmetricsError

COMMANDS = ("validate", "listing", "compile_query", "schema", "analyze", "plugins", "report", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors reported as exit code 2 like every other user error (as argparse does)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sys.stderr.write(f"crmetrics: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crmetrics", description="A CRM metrics layer: KPIs, segments and analyses in YAML.")
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"crmetrics.cli.{name}").register(subparsers)
    return parser


def _version() -> str:
    from crmetrics import __version__

    return f"crmetrics {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(_descending_order(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except CrmetricsError as error:
        text = str(error)  # a ConfigError's text is its issues, each with its own code
        prefix = "" if isinstance(error, ConfigError) or error.code in text else f"{error.code} "
        sys.stderr.write(f"error: {prefix}{text}\n")
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as error:  # a path the user gave cannot be read or written (-o, --out, ...): not a crmetrics bug
        sys.stderr.write(f"error: {CrmetricsError(_os_message(error), code='CRM001')}\n")
        return 2


def _descending_order(argv: list[str]) -> list[str]:
    """`--order-by -revenue` as `--order-by=-revenue`: argparse would take `-revenue` for an option."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--order-by" and arg.startswith("-") and arg != "--":
            joined[-1] = f"--order-by={arg}"
        else:
            joined.append(arg)
    return joined


def _os_message(error: OSError) -> str:
    where = f" '{error.filename}'" if error.filename else ""
    return f"cannot read or write{where}: {error.strerror or error}"


def entry() -> None:
    """The console script (and `python -m crmetrics`): run the command, then end the process without Python's
    teardown. Code that runs the command in its own process calls `main()`, which returns the exit code."""
    leave(main())


def leave(code: int) -> None:
    """Wait for the threads still running, run the exit handlers (temporary-directory clean-up and the like), flush
    the output, end the process: what the interpreter does at exit, in its order, without freeing every object.

    Python's own teardown would then free every module and object one at a time: ~70 ms after a `crmetrics query`,
    a quarter of what the command adds to the query itself, and of no use once the output is out (mypy leaves the
    same way). Every command closes its project, and with it its database connections, before it returns.
    """
    for thread in threading.enumerate():
        if not thread.daemon and thread is not threading.current_thread():
            thread.join()
    atexit._run_exitfuncs()  # CPython and PyPy both have it
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`| head`): nothing is lost that it wanted
        pass
    except OSError as error:  # a full disk or a broken device: the output is incomplete, so say so
        sys.stderr.write(f"error: {CrmetricsError(_os_message(error), code='CRM001')}\n")
        code = 2
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)
