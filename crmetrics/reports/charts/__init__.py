"""Charts: Vega-Lite specifications rendered to inline SVG.

`to_svg` uses the built-in renderer in `svg.py` by default (fast, no dependency); on request (`--charts
vl-convert`, or `auto` when it is installed) vl-convert, the reference Vega-Lite compiler from the `charts` extra.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from typing import Any

from crmetrics.reports.charts.svg import _thin_rows, render_svg

__all__ = ["RENDERERS", "available_renderer", "to_svg"]

RENDERERS = ("auto", "vl-convert", "builtin")


def available_renderer(choice: str = "auto") -> str:
    """The renderer `choice` resolves to on this machine."""
    if choice == "auto":
        return "vl-convert" if importlib.util.find_spec("vl_convert") is not None else "builtin"
    return choice


def to_svg(spec: dict[str, Any], title: str = "", renderer: str = "builtin") -> str | None:
    """The chart as inline SVG; None when the built-in renderer cannot draw the spec (the data is shown instead)."""
    if available_renderer(renderer) == "vl-convert":
        import vl_convert

        try:
            svg = vl_convert.vegalite_to_svg(_lighter(spec))
        except ValueError as error:
            # a spec this Vega-Lite version rejects: the built-in renderer may still draw it, and the report goes on
            warnings.warn(f"vl-convert could not render chart {title!r}: {str(error).splitlines()[0]}", stacklevel=2)
            return render_svg(spec, title)
        # responsive: the page's CSS sizes the chart; the viewBox keeps its proportions
        svg = re.sub(r'<svg ([^>]*?)width="([\d.]+)" height="([\d.]+)"', _viewbox, svg, count=1)
        label = title or "chart"
        return svg.replace("<svg ", f'<svg role="img" aria-label="{_attr(label)}" class="chart" ', 1)
    return render_svg(spec, title)


def _lighter(spec: dict[str, Any]) -> dict[str, Any]:
    """A single long line thinned as the built-in renderer thins it (same picture, a fraction of the time)."""
    values = (spec.get("data") or {}).get("values")
    mark = spec.get("mark")
    kind = mark.get("type") if isinstance(mark, dict) else mark
    if not isinstance(values, list) or "layer" in spec or "transform" in spec:
        return spec
    thinned = _thin_rows(values, kind, spec.get("encoding") or {})
    return spec if thinned is values else {**spec, "data": {"values": thinned}}


def _viewbox(match: re.Match[str]) -> str:
    rest, width, height = match.group(1), match.group(2), match.group(3)
    box = "" if "viewBox" in rest else f' viewBox="0 0 {width} {height}"'
    return f'<svg {rest}width="{width}" height="{height}"{box}'


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
