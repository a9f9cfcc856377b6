"""The Jinja environment every report template is rendered in: sandboxed, strict, autoescaped for HTML.

Templates may come from a project's own `templates/` folder, i.e. from whoever can write to the project, so they run
in Jinja's `ImmutableSandboxedEnvironment` (no attribute tricks, no mutation of the data they are given),
`StrictUndefined` turns a misspelt variable into an error instead of an empty string, and HTML and XML templates are
autoescaped so a customer called `<script>` is shown, not run.
"""

from __future__ import annotations

from jinja2 import BaseLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["make_environment"]


def make_environment(loader: BaseLoader | None, autoescape_html: bool = True) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment over `loader`; `.html`/`.xml`/`.svg` templates (also `*.html.j2`) autoescape."""
    extensions = ("html", "htm", "xml", "svg", "html.j2", "xml.j2", "svg.j2")
    return ImmutableSandboxedEnvironment(
        loader=loader,
        # strings (narrative text) render as plain text: the HTML template that shows them escapes them once
        autoescape=select_autoescape(
            enabled_extensions=extensions if autoescape_html else (), default=False, default_for_string=False
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
