"""`python -m crmetrics` runs the command line."""

from crmetrics.cli import entry

entry()
