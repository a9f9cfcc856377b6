"""The report-format contract: what a format plugin registers and what it is given to render.

A format receives a `RenderRequest`: the report as plain data (`document`: dicts, lists, strings, numbers, None —
never a connection or an engine), a sandboxed template renderer, the chart renderer and the user's options. It
returns the output instead of writing it, so formats are pure and easy to test:

- `str` — a text file (html, md, json);
- `bytes` — a binary file (xlsx);
- `dict[str, str | bytes]` — a folder of files keyed by relative file name (csv).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmetrics.errors import PluginError, RenderError

Output = str | bytes | dict[str, str | bytes]

__all__ = ["Output", "RenderRequest", "ReportFormat", "write_output"]


@dataclass(frozen=True)
class RenderRequest:
    """Everything a format may use. `template(name, **data)` renders a (project-overridable) sandboxed template."""

    document: dict[str, Any]
    template: Callable[..., str]
    chart_svg: Callable[[dict[str, Any]], str]
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportFormat:
    """A report format: `name` is what `--format` selects; `extension` is the file suffix, "" for a folder."""

    name: str
    description: str
    extension: str
    render: Callable[[RenderRequest], Output]

    def validate(self) -> None:
        """Called when the format is registered: a broken contract is reported as a plugin problem."""
        if not callable(self.render):
            raise PluginError(f"report format '{self.name}': render must be callable")
        if self.extension and not self.extension.startswith("."):
            raise PluginError(f"report format '{self.name}': extension must start with '.', got {self.extension!r}")


def write_output(output: Output, path: Path) -> Path:
    """Write what a format returned to `path` (a file, or a folder for a dict of files); return the path."""
    if isinstance(output, dict):
        path.mkdir(parents=True, exist_ok=True)
        for name, content in output.items():
            target = (path / name).resolve()
            if not target.is_relative_to(path.resolve()):
                raise RenderError(f"a report format tried to write outside {path}: {name!r}")
            _write(target, content)
        return path
    if not isinstance(output, str | bytes):
        raise RenderError(f"a report format returned {type(output).__name__}, expected str, bytes or a dict of files")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, output)
    return path


def _write(path: Path, content: str | bytes) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
