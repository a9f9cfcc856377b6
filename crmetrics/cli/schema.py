"""`crmetrics schema`: print the JSON Schema of project files, for editors (YAML language server)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("schema", help="print the JSON Schema of crmetrics project files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from crmetrics.dsl.spec import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return 0
