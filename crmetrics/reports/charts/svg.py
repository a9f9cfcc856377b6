"""A dependency-free renderer of the Vega-Lite subset that report charts use, to inline SVG.

Why it exists: vl-convert (the real Vega-Lite compiler) is a 40 MB optional extra, and `crmetrics demo` must give a
complete report after `pip install crmetrics` alone. It handles one view or a `layer` of views with the marks
bar (vertical, horizontal, stacked, grouped with `xOffset`), line (with points), area, point/circle, rect (heatmap),
rule (`datum` lines), text and arc (pie), encodings x, y, color, xOffset, text, theta and tooltip, and the
aggregates sum, mean, count, min and max. Anything else (facets, transforms, selections) returns None and the
report shows the chart's data as a table instead, so a chart is never drawn wrong.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections import Counter, defaultdict
from html import escape
from typing import Any

from crmetrics.reports.charts.scales import (
    PALETTE,
    Scale,
    as_date,
    as_number,
    axis_label,
    color_for,
    nice_ticks,
    ramp,
    text_width,
    time_text,
)
from crmetrics.reports.tables import humanize

__all__ = ["MAX_LINE_POINTS", "render_svg"]

UNSUPPORTED = ("facet", "repeat", "concat", "hconcat", "vconcat", "params", "selection")
MARKS = ("bar", "line", "area", "point", "circle", "square", "rect", "rule", "text", "arc", "tick")
AGGREGATES = {
    "sum": sum,
    "mean": lambda v: sum(v) / len(v),
    "average": lambda v: sum(v) / len(v),
    "count": len,
    "min": min,
    "max": max,
}


def _field(row: dict[str, Any], name: str) -> Any:
    if name in row:
        return row[name]
    return row.get(name.replace("\\.", "."))


class _Layer:
    def __init__(self, mark: Any, encoding: dict[str, Any], data: list[dict[str, Any]]) -> None:
        self.props = mark if isinstance(mark, dict) else {"type": mark}
        self.type = self.props.get("type")
        self.enc = encoding
        # keep only the fields the encoding reads: analysis tables can have a row per customer and many columns
        used = {ch["field"] for ch in encoding.values() if isinstance(ch, dict) and isinstance(ch.get("field"), str)}
        tips = encoding.get("tooltip")
        used |= {t["field"] for t in tips if isinstance(t, dict) and "field" in t} if isinstance(tips, list) else set()
        data = _thin_rows(data, self.type, encoding)
        if data and used:
            data = _project(data, sorted(used))  # fresh dicts: _bin may change them
        self.data = _aggregate(_bin(data, encoding), encoding)

    def channel(self, name: str) -> dict[str, Any]:
        value = self.enc.get(name)
        return value if isinstance(value, dict) else {}

    def value(self, row: dict[str, Any], name: str) -> Any:
        ch = self.channel(name)
        if "datum" in ch:
            return ch["datum"]
        return _field(row, ch["field"]) if "field" in ch else None


def _bin(data: list[dict[str, Any]], enc: dict[str, Any]) -> list[dict[str, Any]]:
    """`bin` on a quantitative channel: values become the start of round-width bins, shown as ordered bands."""
    for ch in enc.values():
        if not (isinstance(ch, dict) and ch.get("bin") and "field" in ch):
            continue
        field = ch["field"]
        values = [v for row in data if (v := as_number(_field(row, field))) is not None]
        if not values:
            continue
        maxbins = ch["bin"].get("maxbins", 10) if isinstance(ch["bin"], dict) else 10
        ticks = nice_ticks(min(values), max(values), max(1, int(maxbins)))
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
        low, kept = ticks[0], []
        for row in data:
            value = row.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool):
                row[field] = low + step * math.floor((value - low) / step)
                kept.append(row)
        data = kept
        ch.update(type="ordinal", sort="ascending")
    return data


def _aggregate(data: list[dict[str, Any]], enc: dict[str, Any]) -> list[dict[str, Any]]:
    aggregated = {k: v for k, v in enc.items() if isinstance(v, dict) and v.get("aggregate")}
    if not aggregated:
        return data
    keys = [v["field"] for k, v in enc.items() if isinstance(v, dict) and "field" in v and k not in aggregated]
    if all(ch["aggregate"] == "count" for ch in aggregated.values()):  # histograms: count without copying rows
        counts = Counter(tuple(_field(row, k) for k in keys) for row in data)
        for ch in aggregated.values():
            ch.setdefault("field", "__count")
        names = [ch["field"] for ch in aggregated.values()]
        return [{**dict(zip(keys, key, strict=True)), **dict.fromkeys(names, n)} for key, n in counts.items()]
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in data:
        groups[tuple(_field(row, k) for k in keys)].append(row)
    out = []
    for key, rows in groups.items():
        new = dict(zip(keys, key, strict=True))
        for ch in aggregated.values():
            fn = AGGREGATES.get(ch["aggregate"])
            if fn is None:
                raise ValueError(f"aggregate {ch['aggregate']}")
            values = [as_number(_field(r, ch["field"])) for r in rows] if "field" in ch else [1.0] * len(rows)
            present = [v for v in values if v is not None]
            name = ch.get("field", "__count")
            ch.setdefault("field", name)
            new[name] = len(rows) if ch["aggregate"] == "count" else (fn(present) if present else None)
        out.append(new)
    return out


def _transform(data: list[dict[str, Any]], steps: Any) -> list[dict[str, Any]]:
    """The `fold` transform (wide to long); any other transform is not drawn by this renderer."""
    for step in steps or []:
        if set(step) - {"fold", "as"}:
            raise ValueError(f"transform {sorted(step)}")
        key, value = step.get("as", ["key", "value"])
        data = [{**row, key: name, value: row.get(name)} for row in data for name in step["fold"]]
    return data


def _layers(spec: dict[str, Any]) -> list[_Layer]:
    if any(key in spec for key in UNSUPPORTED):
        raise ValueError("unsupported composition")
    top_data = _transform((spec.get("data") or {}).get("values", []), spec.get("transform"))
    top_enc = spec.get("encoding") or {}
    parts = spec.get("layer", [spec])
    layers = []
    for part in parts:
        if part is not spec and any(key in part for key in (*UNSUPPORTED, "layer", "transform")):
            raise ValueError("unsupported composition")
        mark = part.get("mark") or spec.get("mark")
        kind = mark.get("type") if isinstance(mark, dict) else mark
        if kind not in MARKS:
            raise ValueError(f"mark {kind}")
        data = (part.get("data") or {}).get("values", top_data) if part is not spec else top_data
        encoding = {**top_enc, **(part.get("encoding") or {})} if part is not spec else dict(top_enc)
        layers.append(_Layer(mark, {k: dict(v) if isinstance(v, dict) else v for k, v in encoding.items()}, data))
    return layers


def _kind(layers: list[_Layer], axis: str) -> str | None:
    for layer in layers:
        ch = layer.channel(axis)
        if "field" in ch:
            if ch.get("type") in ("nominal", "ordinal") or (layer.type == "rect" and ch.get("type") != "quantitative"):
                return "band"
            if ch.get("type") == "temporal" and any(other.type in ("bar", "rect") for other in layers):
                return "band"  # bars over time: one band per period, in time order
            return "time" if ch.get("type") == "temporal" else "linear"
    return None


def _domain(layers: list[_Layer], axis: str) -> list[Any]:
    for layer in layers:
        ch = layer.channel(axis)
        if "field" not in ch:
            continue
        values: list[Any] = []
        for row in layer.data:
            value = _field(row, ch["field"])
            if value not in values:
                values.append(value)
        sort = ch.get("sort", "ascending" if ch.get("type") != "temporal" else "time")
        if sort == "time":
            return sorted(values, key=lambda v: (as_date(v) is None, str(as_date(v) or v)))
        other = "y" if axis == "x" else "x"
        if isinstance(sort, list):
            return [v for v in sort if v in values] + [v for v in values if v not in sort]
        if isinstance(sort, str) and sort.lstrip("-") in ("x", "y") and "field" in layer.channel(other):
            key = layer.channel(other)["field"]
            totals: dict[Any, float] = defaultdict(float)
            for row in layer.data:
                totals[_field(row, ch["field"])] += as_number(_field(row, key)) or 0.0
            return sorted(values, key=lambda v: totals[v], reverse=sort.startswith("-"))
        if sort in ("ascending", "descending"):
            return sorted(values, key=_order, reverse=sort == "descending")
        return values
    return []


def _stacked(layer: _Layer, band_axis: str) -> bool:
    return (
        layer.type in ("bar", "area")
        and "field" in layer.channel("color")
        and "field" not in layer.channel("xOffset")
        and layer.channel("y" if band_axis == "x" else "x").get("stack", True) is not None
    )


def _extent(layers: list[_Layer], axis: str, band_axis: str | None) -> list[float]:
    values: list[float] = []
    for layer in layers:
        if band_axis and _stacked(layer, band_axis):
            sums: dict[Any, float] = defaultdict(float)
            for row in layer.data:
                sums[layer.value(row, band_axis)] += as_number(layer.value(row, axis)) or 0.0
            values += list(sums.values())
        elif "datum" in layer.channel(axis):
            values.append(as_number(layer.channel(axis)["datum"]) or 0.0)
        else:
            values += [v for row in layer.data if (v := as_number(layer.value(row, axis))) is not None]
    return values


def _category(value: Any) -> str:
    """A category as text; a missing one as the em dash tables use."""
    return "—" if value is None else str(value)


def render_svg(spec: dict[str, Any], title: str = "") -> str | None:
    """The chart as an `<svg>` string, or None when the spec uses something this renderer does not draw."""
    try:
        layers = _layers(spec)
        return _Chart(spec, layers, title).draw()
    except (ValueError, KeyError, TypeError, ZeroDivisionError):
        return None


class _Chart:
    def __init__(self, spec: dict[str, Any], layers: list[_Layer], title: str) -> None:
        self.spec, self.layers = spec, layers
        self.title = title or (spec.get("title") if isinstance(spec.get("title"), str) else "") or ""
        self.width = float(spec.get("width", 640)) if not isinstance(spec.get("width"), str) else 640.0
        self.height = float(spec.get("height", 260)) if not isinstance(spec.get("height"), str) else 260.0
        self.out: list[str] = []
        # a fold's keys are column names: the legend shows them as words, like table headers
        steps = spec.get("transform") if isinstance(spec.get("transform"), list) else []
        self.folded = {str(name) for step in steps if isinstance(step, dict) for name in step.get("fold", [])}
        palette = ((spec.get("config") or {}).get("range") or {}).get("category")
        self.palette = tuple(palette) if isinstance(palette, list) and palette else PALETTE

    def draw(self) -> str:
        if any(layer.type == "arc" for layer in self.layers):
            body, width, height = self._pie(), self.width, self.height
        else:
            body, width, height = self._cartesian()
        label = escape(self.title or "chart", quote=True)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
            f'height="{height:.0f}" role="img" aria-label="{label}" class="chart" '
            f'font-family="Inter, Segoe UI, Helvetica, Arial, sans-serif" font-size="11">'
            f"<title>{label}</title>{body}</svg>"
        )

    # -- colour ----------------------------------------------------------------------------------------------

    def _colors(self) -> tuple[str | None, list[Any], tuple[float, float] | None]:
        for layer in self.layers:
            ch = layer.channel("color")
            if "field" in ch:
                if ch.get("type") == "quantitative":
                    values = [v for r in layer.data if (v := as_number(_field(r, ch["field"]))) is not None]
                    return ch["field"], [], (min(values, default=0.0), max(values, default=1.0))
                return ch["field"], _domain([layer], "color") if ch.get("sort") else _unique(layer, ch["field"]), None
        return None, [], None

    def _fill(self, layer: _Layer, row: dict[str, Any]) -> str:
        field, domain, extent = self.color
        ch = layer.channel("color")
        if field and "field" in ch:
            value = _field(row, field)
            if extent:
                number = as_number(value)
                low, high = extent
                return "#f2f4f7" if number is None else ramp((number - low) / (high - low or 1))
            return color_for(domain.index(value) if value in domain else 0, self.palette)
        return str(layer.props.get("color") or self.palette[0])

    # -- cartesian -------------------------------------------------------------------------------------------

    def _cartesian(self) -> tuple[str, float, float]:
        self.color = self._colors()
        xk, yk = _kind(self.layers, "x"), _kind(self.layers, "y")
        band_axis = "x" if xk == "band" else "y" if yk == "band" else None
        y_domain = _domain(self.layers, "y") if yk == "band" else []
        left = 56.0
        if yk == "band":
            left = min(200.0, 16 + max((text_width(str(v)) for v in y_domain), default=20))
        if yk == "band":
            self.height = max(self.height, 13.0 * len(y_domain))
        x_domain = _domain(self.layers, "x") if xk == "band" else []
        rotate = xk == "band" and (sum(text_width(str(v)) + 8 for v in x_domain) > self.width)
        bottom = (48 if self._axis_title("x") and xk != "band" else 34) + (
            min(90.0, max((text_width(str(v)) for v in x_domain), default=0) * 0.7) if rotate else 0
        )
        legend = 26.0 if self.color[0] or (yk != "band" and self._axis_title("y")) else 8.0
        x0, x1, y0, y1 = left, left + self.width, legend + 8 + self.height, legend + 8
        zero = any(layer.type in ("bar", "area") for layer in self.layers)
        self.x = self._scale(xk, x_domain, x0, x1, "x", band_axis, zero)
        # bands run top to bottom (first category on top, as Vega-Lite draws them); values run bottom to top
        self.y = self._scale(yk, y_domain, *((y1, y0) if yk == "band" else (y0, y1)), "y", band_axis, zero)
        self.out = []
        self._axes(x0, x1, y0, y1, rotate)
        for layer in self.layers:
            getattr(self, f"_mark_{'point' if layer.type in ('circle', 'square', 'tick') else layer.type}")(layer)
        self._legend(x0, x1)
        return "".join(self.out), x1 + 16, y0 + bottom

    def _scale(self, kind: str | None, domain: list, start: float, end: float, axis: str, band: str | None, zero: bool):
        if kind == "band":
            rect = any(layer.type == "rect" for layer in self.layers)
            return Scale.band(domain, start, end, 0.04 if rect else 0.22)
        if kind == "time":
            dates = [d for layer in self.layers for r in layer.data if (d := as_date(layer.value(r, axis)))]
            return Scale.time(dates, start, end)
        values = _extent(self.layers, axis, band)
        if band and band != axis and values and any(layer.type == "text" for layer in self.layers):
            values.append(max(values) * 1.18)  # room for the value labels at the end of the bars
        return Scale.linear(values, start, end, zero or kind is None)

    def _axes(self, x0: float, x1: float, y0: float, y1: float, rotate: bool) -> None:
        out = self.out
        for axis, scale in (("x", self.x), ("y", self.y)):
            fmt = self._axis_format(axis)
            if scale.kind == "band":
                room = (x1 - x0) / 42 if axis == "x" and not rotate else abs(y0 - y1) / 12 if axis == "y" else 60
                every = max(1, math.ceil(len(scale.domain) / max(room, 1)))
                for index, value in enumerate(scale.domain):
                    if index % every:
                        continue
                    pos = scale.center(value)
                    text = escape(self._band_label(axis, value, fmt))
                    if axis == "x":
                        anchor = (
                            f'text-anchor="end" transform="rotate(-40 {pos:.1f} {y0 + 14:.1f})"'
                            if rotate
                            else ('text-anchor="middle"')
                        )
                        out.append(f'<text x="{pos:.1f}" y="{y0 + 14:.1f}" fill="#475467" {anchor}>{text}</text>')
                    else:
                        out.append(
                            f'<text x="{x0 - 6:.1f}" y="{pos + 4:.1f}" fill="#475467" text-anchor="end">{text}</text>'
                        )
                continue
            for tick in scale.ticks:
                pos = scale(tick)
                text = time_text(dt.date.fromordinal(int(tick)), fmt) if scale.kind == "time" else axis_label(tick, fmt)
                if axis == "y":
                    out.append(f'<line x1="{x0}" x2="{x1}" y1="{pos:.1f}" y2="{pos:.1f}" stroke="#eaecf0"/>')
                    out.append(f'<text x="{x0 - 6}" y="{pos + 4:.1f}" fill="#475467" text-anchor="end">{text}</text>')
                else:
                    out.append(f'<line x1="{pos:.1f}" x2="{pos:.1f}" y1="{y1}" y2="{y0}" stroke="#f2f4f7"/>')
                    out.append(
                        f'<text x="{pos:.1f}" y="{y0 + 14:.1f}" fill="#475467" text-anchor="middle">{text}</text>'
                    )
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y0}" y2="{y0}" stroke="#d0d5dd"/>')
        x_title = self._axis_title("x")
        if x_title and self.x.kind != "band":
            out.append(
                f'<text x="{x1}" y="{y0 + 32:.1f}" fill="#344054" font-weight="600" text-anchor="end">'
                f"{escape(x_title)}</text>"
            )
        title = self._axis_title("y")
        if title and self.y.kind != "band":
            # above the plot: on the left, or on the right when the colour legend takes the left
            at = f'x="{x1}" text-anchor="end"' if self.color[0] and not self.color[2] else f'x="{x0}"'
            out.append(f'<text {at} y="{y1 - 10:.1f}" fill="#344054" font-weight="600">{escape(title)}</text>')

    def _band_label(self, axis: str, value: Any, fmt: str | None) -> str:
        temporal = any(layer.channel(axis).get("type") == "temporal" for layer in self.layers)
        # an ordinal axis of dates (cohorts) with a time format reads "Jan 2024" too
        day = as_date(value) if temporal or (fmt and "%Y" in fmt) else None
        if day:
            return time_text(day, fmt if fmt and "%" in fmt else "%b %Y")
        binned = any("bin" in layer.channel(axis) for layer in self.layers)
        number = isinstance(value, float) or (binned and isinstance(value, int) and not isinstance(value, bool))
        return axis_label(value, fmt) if number else _category(value)  # bin starts read 5k, not 5000

    def _axis_format(self, axis: str) -> str | None:
        for layer in self.layers:
            fmt = (layer.channel(axis).get("axis") or {}).get("format")
            if fmt:
                return str(fmt)
        return None

    def _axis_title(self, axis: str) -> str:
        for layer in self.layers:
            ch = layer.channel(axis)
            title = (ch.get("axis") or {}).get("title", ch.get("title"))
            if title:
                return str(title)
        return ""

    def _tip(self, layer: _Layer, row: dict[str, Any]) -> str:
        parts = []
        for name in ("x", "y", "color", "text"):
            ch = layer.channel(name)
            if "field" in ch:
                parts.append(f"{ch.get('title') or ch['field']}: {_category(_field(row, ch['field']))}")
        tips = layer.enc.get("tooltip")
        if isinstance(tips, list):
            parts = [f"{t.get('title') or t['field']}: {_field(row, t['field'])}" for t in tips if "field" in t]
        return f"<title>{escape('; '.join(parts))}</title>"

    def _mark_bar(self, layer: _Layer) -> None:
        horizontal = self.y.kind == "band"
        band, value_scale = (self.y, self.x) if horizontal else (self.x, self.y)
        band_axis, value_axis = ("y", "x") if horizontal else ("x", "y")
        offsets = _unique(layer, layer.channel("xOffset")["field"]) if "field" in layer.channel("xOffset") else []
        stacked = _stacked(layer, band_axis)
        base: dict[Any, float] = defaultdict(float)
        for row in layer.data:
            key = layer.value(row, band_axis)
            start = band(key)
            number = as_number(layer.value(row, value_axis))
            if start is None or number is None:
                continue
            size = band.bandwidth
            if offsets:
                size /= len(offsets)
                start += size * offsets.index(_field(row, layer.channel("xOffset")["field"]))
            low = base[key] if stacked else 0.0
            a, b = value_scale(low), value_scale(low + number)
            base[key] = low + number
            lo, hi = min(a, b), max(a, b)
            fill, tip = self._fill(layer, row), self._tip(layer, row)
            if horizontal:
                self.out.append(
                    f'<rect x="{lo:.1f}" y="{start:.1f}" width="{hi - lo:.1f}" height="{size:.1f}" '
                    f'fill="{fill}" rx="2">{tip}</rect>'
                )
            else:
                self.out.append(
                    f'<rect x="{start:.1f}" y="{lo:.1f}" width="{size:.1f}" height="{hi - lo:.1f}" '
                    f'fill="{fill}" rx="2">{tip}</rect>'
                )

    def _series(self, layer: _Layer) -> dict[Any, list[tuple[float, float, dict]]]:
        groups: dict[Any, list[tuple[float, float, dict]]] = defaultdict(list)
        color = layer.channel("color").get("field")
        for row in layer.data:
            x = self.x.center(layer.value(row, "x")) if self.x.kind == "band" else self.x(layer.value(row, "x"))
            y = self.y.center(layer.value(row, "y")) if self.y.kind == "band" else self.y(layer.value(row, "y"))
            if x is not None and y is not None:
                groups[_field(row, color) if color else None].append((x, y, row))
        return groups

    def _mark_line(self, layer: _Layer) -> None:
        for points in self._series(layer).values():
            points.sort(key=lambda p: p[0])
            points = _thin(points)
            fill = self._fill(layer, points[0][2])
            path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y, _) in enumerate(points))
            width = layer.props.get("strokeWidth", 2)
            self.out.append(f'<path d="{path}" fill="none" stroke="{fill}" stroke-width="{width}"/>')
            if layer.props.get("point"):
                for x, y, row in points:
                    self.out.append(
                        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{fill}">{self._tip(layer, row)}</circle>'
                    )

    def _mark_area(self, layer: _Layer) -> None:
        floor = self.y(0.0) if self.y.kind == "linear" else self.y.start
        for points in self._series(layer).values():
            points.sort(key=lambda p: p[0])
            points = _thin(points)
            fill = self._fill(layer, points[0][2])
            path = " ".join(f"L{x:.1f},{y:.1f}" for x, y, _ in points)
            self.out.append(
                f'<path d="M{points[0][0]:.1f},{floor:.1f} {path} L{points[-1][0]:.1f},{floor:.1f} Z" '
                f'fill="{fill}" fill-opacity="0.35" stroke="{fill}"/>'
            )

    def _mark_point(self, layer: _Layer) -> None:
        radius = math.sqrt(float(layer.props.get("size", 50)) / math.pi)
        opacity = layer.props.get("opacity", 0.85)
        for points in self._series(layer).values():
            for x, y, row in points:
                self.out.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{self._fill(layer, row)}" '
                    f'fill-opacity="{opacity}">{self._tip(layer, row)}</circle>'
                )

    def _mark_rect(self, layer: _Layer) -> None:
        for row in layer.data:
            x, y = self.x(layer.value(row, "x")), self.y(layer.value(row, "y"))
            if x is None or y is None:
                continue
            self.out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{self.x.bandwidth:.1f}" '
                f'height="{self.y.bandwidth:.1f}" fill="{self._fill(layer, row)}">'
                f"{self._tip(layer, row)}</rect>"
            )

    def _mark_rule(self, layer: _Layer) -> None:
        color = layer.props.get("color", "#98a2b3")
        dash = " ".join(str(d) for d in layer.props.get("strokeDash", []))
        for axis in ("x", "y"):
            if "datum" not in layer.channel(axis):
                continue
            pos = (self.x if axis == "x" else self.y)(layer.channel(axis)["datum"])
            if pos is None:
                continue
            if axis == "x":
                line = f'x1="{pos:.1f}" x2="{pos:.1f}" y1="{self.y.end:.1f}" y2="{self.y.start:.1f}"'
            else:
                line = f'x1="{self.x.start:.1f}" x2="{self.x.end:.1f}" y1="{pos:.1f}" y2="{pos:.1f}"'
            self.out.append(f'<line {line} stroke="{color}" stroke-dasharray="{dash}"/>')

    def _mark_text(self, layer: _Layer) -> None:
        field = layer.channel("text").get("field")
        dx = float(layer.props.get("dx", 0))
        anchor = {"left": "start", "right": "end"}.get(layer.props.get("align", "center"), "middle")
        color = layer.props.get("color", "#101828")
        ink = layer.channel("color")
        size = layer.props.get("fontSize", 11)
        horizontal_bars = self.y.kind == "band" and self.x.kind == "linear"
        for row in layer.data:
            if field is None:
                continue
            x = self.x.center(layer.value(row, "x")) if self.x.kind == "band" else self.x(layer.value(row, "x"))
            y = self.y.center(layer.value(row, "y")) if self.y.kind == "band" else self.y(layer.value(row, "y"))
            if horizontal_bars and x is None:
                x = self.x(as_number(_field(row, layer.channel("x").get("field", ""))) or 0.0)
            if x is None or y is None:
                continue
            fill = _conditional(ink, row, color)
            self.out.append(
                f'<text x="{x + dx:.1f}" y="{y + 4:.1f}" fill="{fill}" font-size="{size}" '
                f'text-anchor="{anchor}">{escape(str(_field(row, field)))}</text>'
            )

    def _legend(self, x0: float, x1: float) -> None:
        field, domain, extent = self.color
        if not field:
            return
        if extent:
            fmt = next(
                (str(f) for layer in self.layers if (f := (layer.channel("color").get("legend") or {}).get("format"))),
                None,
            )
            stops = "".join(f'<stop offset="{i / 4:.2f}" stop-color="{ramp(i / 4)}"/>' for i in range(5))
            self.out.append(
                f'<defs><linearGradient id="g">{stops}</linearGradient></defs>'
                f'<rect x="{x1 - 120:.1f}" y="6" width="120" height="8" fill="url(#g)"/>'
                f'<text x="{x1 - 126:.1f}" y="14" text-anchor="end" fill="#475467">'
                f"{escape(axis_label(extent[0], fmt))}</text>"
                f'<text x="{x1:.1f}" y="26" text-anchor="end" fill="#475467">'
                f"{escape(axis_label(extent[1], fmt))}</text>"
            )
            return
        x = x0
        for index, value in enumerate(domain[:12]):
            text = humanize(value) if value in self.folded else _category(value)
            label = escape(text)
            self.out.append(
                f'<rect x="{x:.1f}" y="6" width="10" height="10" rx="2" '
                f'fill="{color_for(index, self.palette)}"/>'
                f'<text x="{x + 14:.1f}" y="15" fill="#475467">{label}</text>'
            )
            x += 26 + text_width(text)

    # -- pie -------------------------------------------------------------------------------------------------

    def _pie(self) -> str:
        layer = next(layer for layer in self.layers if layer.type == "arc")
        self.color = self._colors()
        values = [(row, as_number(layer.value(row, "theta")) or 0.0) for row in layer.data]
        total = sum(v for _, v in values) or 1.0
        cx, cy, r = self.height / 2 + 10, self.height / 2 + 10, self.height / 2
        inner = float(layer.props.get("innerRadius", 0))
        angle, out = -math.pi / 2, []
        for row, value in values:
            sweep = value / total * 2 * math.pi
            end = angle + sweep
            large = 1 if sweep > math.pi else 0
            x1, y1 = cx + r * math.cos(angle), cy + r * math.sin(angle)
            x2, y2 = cx + r * math.cos(end), cy + r * math.sin(end)
            path = f"M{cx:.1f},{cy:.1f} L{x1:.1f},{y1:.1f} A{r:.1f},{r:.1f} 0 {large} 1 {x2:.1f},{y2:.1f} Z"
            out.append(f'<path d="{path}" fill="{self._fill(layer, row)}" stroke="#fff">{self._tip(layer, row)}</path>')
            angle = end
        if inner:
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{inner:.1f}" fill="#fff"/>')
        field, domain, _ = self.color
        for index, value in enumerate(domain[:12] if field else []):
            y = 20 + index * 18
            out.append(
                f'<rect x="{cx + r + 30:.1f}" y="{y - 9}" width="10" height="10" rx="2" '
                f'fill="{color_for(index, self.palette)}"/><text x="{cx + r + 46:.1f}" y="{y}" '
                f'fill="#475467">{escape(str(value))}</text>'
            )
        return "".join(out)


PREDICATES = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "equal": lambda a, b: a == b,
}


def _conditional(channel: dict[str, Any], row: dict[str, Any], default: str) -> str:
    """A constant colour with an optional field-predicate `condition` ({"test": {"field", "gt": 5}, "value"})."""
    condition = channel.get("condition")
    if isinstance(condition, dict) and isinstance(condition.get("test"), dict):
        test = condition["test"]
        value = as_number(_field(row, test.get("field", "")))
        for name, check in PREDICATES.items():
            if name in test and value is not None and check(value, test[name]):
                return str(condition.get("value", default))
    return str(channel.get("value", default))


MAX_LINE_POINTS = 800


def _project(data: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """Copies of the rows with only `names` (the fast path when every name is a plain key of the rows)."""
    if all(name in data[0] for name in names):
        if len(names) == 1:
            (name,) = names
            return [{name: row.get(name)} for row in data]
        return [dict(zip(names, (row.get(n) for n in names), strict=True)) for row in data]
    return [{name: _field(row, name) for name in names} for row in data]


def _thin_rows(data: list[dict[str, Any]], mark: Any, enc: dict[str, Any]) -> list[dict[str, Any]]:
    """A long single line (no colour series, no aggregate) is thinned before anything else is computed."""
    x = enc.get("x") if isinstance(enc.get("x"), dict) else {}
    simple = not any(isinstance(ch, dict) and (ch.get("aggregate") or ch.get("bin")) for ch in enc.values())
    if mark not in ("line", "area") or len(data) <= 4 * MAX_LINE_POINTS or "field" in (enc.get("color") or {}):
        return data
    if not simple or "field" not in x:
        return data
    key = x["field"]
    xs = [_field(row, key) for row in data]
    try:
        in_order = all(a <= b for a, b in itertools.pairwise(xs))  # analysis tables usually are
    except TypeError:
        in_order = False
    ordered = data if in_order else sorted(data, key=lambda row: _order(_field(row, key)))
    step = (len(ordered) - 1) / (MAX_LINE_POINTS - 1)
    return [ordered[round(i * step)] for i in range(MAX_LINE_POINTS)]


def _thin(points: list[tuple[float, float, dict]]) -> list[tuple[float, float, dict]]:
    """At most MAX_LINE_POINTS evenly spaced points (first and last kept): a 40,000-point Pareto curve drawn at
    640 pixels looks the same, and the page stays light."""
    if len(points) <= MAX_LINE_POINTS:
        return points
    step = (len(points) - 1) / (MAX_LINE_POINTS - 1)
    return [points[round(i * step)] for i in range(MAX_LINE_POINTS)]


def _order(value: Any) -> tuple:
    """Numbers in numeric order, then text, NULL last."""
    number = as_number(value)
    return (value is None, number is None, number if number is not None else 0.0, str(value))


def _unique(layer: _Layer, field: str) -> list[Any]:
    values: list[Any] = []
    for row in layer.data:
        value = _field(row, field)
        if value not in values:
            values.append(value)
    return values
