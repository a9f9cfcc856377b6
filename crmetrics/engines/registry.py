"""Database backends: which engine opens which connection URL or connection object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crmetrics.engines.base import Engine


@dataclass(frozen=True)
class Backend:
    """A database crmetrics can run on, registered through the `register_backends` hook."""

    name: str
    dialect: str
    schemes: tuple[str, ...]  # URL schemes it opens, e.g. ("postgresql", "postgres")
    open: Callable[[str, str, Mapping[str, Any]], Engine]  # (url, project folder, settings) -> Engine
    wraps: Callable[[Any], Engine | None] | None = None  # a connection object -> Engine, or None if not its kind
    description: str = ""
    extras: tuple[str, ...] = field(default_factory=tuple)  # pip extras that install its driver
