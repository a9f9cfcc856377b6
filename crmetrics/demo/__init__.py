"""A deterministic, realistic CRM sample database for `crmetrics demo`, tests and benchmarks."""

from pathlib import Path

from crmetrics.demo.generate import TABLES, build_demo_database

PROJECT_FILE = Path(__file__).with_name("project.yml")
"""The crmetrics project describing the demo tables (no `connection`: point it at the built file)."""

__all__ = ["PROJECT_FILE", "TABLES", "build_demo_database"]
