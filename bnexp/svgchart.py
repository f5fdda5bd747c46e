"""Small line charts as inline SVG text, for the offline HTML report.

Drawn by hand rather than by matplotlib's SVG backend because the report must
stay small and quick for a hundred runs, must not reference any URL (matplotlib's
SVG carries the SVG namespace and Dublin Core addresses), and needs every run's
lines in their own `<g>` so that the page can show or hide a run. matplotlib's
tick locators still choose the tick values: they are the well-kept part.

Coordinates are in a fixed viewBox; the page scales the SVG to its column width.
Text takes its font from the page's CSS. Non-finite values (a diverged run's
loss) and, on a log axis, values ≤ 0 break a line instead of ruining its axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

WIDTH, HEIGHT = 520, 300
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 58, 14, 30, 42
# A line of more points than this is thinned evenly: the screen has fewer pixels.
MAX_POINTS = 500


@dataclass(frozen=True)
class Line:
    """A polyline; `title` becomes its hover text."""

    xs: list[float]
    ys: list[float]
    colour: str
    width: float = 1.5
    opacity: float = 1.0
    dash: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class Band:
    """A shaded area between `lows` and `highs` over `xs` (a confidence band, a percentile range)."""

    xs: list[float]
    lows: list[float]
    highs: list[float]
    colour: str
    opacity: float = 0.18


@dataclass
class Layer:
    """Bands then lines drawn in one `<g>` carrying `attrs` (e.g. class="run" data-run="3")."""

    attrs: dict[str, str] = field(default_factory=dict)
    bands: list[Band] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)


@dataclass(frozen=True)
class Chart:
    title: str
    xlabel: str
    ylabel: str
    layers: list[Layer]
    log_y: bool = False
    # Shared limits for small multiples that must be read against each other.
    y_range: tuple[float, float] | None = None


def render(chart: Chart) -> str:
    """The chart as an `<svg>` element, or "" when it has nothing finite to draw."""
    layers = [_thinned(layer) for layer in chart.layers]
    xs, ys = _extent(layers, chart.log_y)
    if not xs or not ys:
        return ""
    x_ticks, x_lo, x_hi = _ticks(min(xs), max(xs), log=False)
    lo, hi = chart.y_range or (min(ys), max(ys))
    y_ticks, y_lo, y_hi = _ticks(lo, hi, log=chart.log_y)
    scale = _Scale(x_lo, x_hi, y_lo, y_hi, chart.log_y)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape_text(chart.title)}">',
        f"<title>{escape_text(chart.title)}</title>",
        _axes(scale, x_ticks, y_ticks, chart),
    ]
    for layer in layers:
        attrs = "".join(f' {k}="{escape_text(v)}"' for k, v in layer.attrs.items())
        body = [_band(scale, b) for b in layer.bands] + [_line(scale, ln) for ln in layer.lines]
        parts.append(f"<g{attrs}>{''.join(body)}</g>")
    parts.append("</svg>")
    return "".join(parts)


def _thinned(layer: Layer) -> Layer:
    lines = [Line(*_thin(line.xs, line.ys), line.colour, line.width, line.opacity, line.dash, line.title)
             for line in layer.lines]
    bands = [Band(*_thin(band.xs, band.lows, band.highs), band.colour, band.opacity) for band in layer.bands]
    return Layer(layer.attrs, bands, lines)


def _extent(layers: list[Layer], log: bool) -> tuple[list[float], list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for layer in layers:
        for line in layer.lines:
            for x, y in zip(line.xs, line.ys):
                if _usable(y, log) and math.isfinite(x):
                    xs.append(x)
                    ys.append(y)
        for band in layer.bands:
            for x, low, high in zip(band.xs, band.lows, band.highs):
                if _usable(low, log) and _usable(high, log) and math.isfinite(x):
                    xs.append(x)
                    ys += [low, high]
    return xs, ys


def _usable(y: float | None, log: bool) -> bool:
    return y is not None and math.isfinite(y) and (y > 0 or not log)


# A spread of values below this fraction of their size is float rounding (1 ± 1e-16, as the
# first layer's ICS is), not a range: an axis over it would repeat one label at every tick.
NOISE = 1e-9


def _ticks(lo: float, hi: float, log: bool) -> tuple[list[float], float, float]:
    """Tick values and the axis limits they span (the outermost ticks that enclose the data)."""
    from matplotlib.ticker import LogLocator, MaxNLocator

    if hi - lo <= NOISE * max(abs(lo), abs(hi)):  # one value, or one value and its rounding noise
        lo = hi = (lo + hi) / 2
    if hi <= lo:  # one value: give it room above and below
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = (lo / 2, hi * 2) if log else (lo - pad, hi + pad)
    if log:
        ticks = [t for t in LogLocator(base=10).tick_values(lo, hi)]
        if len([t for t in ticks if lo <= t <= hi]) < 3:
            ticks = list(LogLocator(base=10, subs=(1.0, 2.0, 5.0)).tick_values(lo, hi))
    else:
        ticks = list(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi))
    below = [t for t in ticks if t <= lo]
    above = [t for t in ticks if t >= hi]
    axis_lo = max(below) if below else lo
    axis_hi = min(above) if above else hi
    return [float(t) for t in ticks if axis_lo <= t <= axis_hi], float(axis_lo), float(axis_hi)


class _Scale:
    """Data coordinates to viewBox pixels."""

    def __init__(self, x_lo: float, x_hi: float, y_lo: float, y_hi: float, log: bool):
        self.log = log
        self.x_lo, self.x_span = x_lo, (x_hi - x_lo) or 1.0
        self.y_lo = math.log10(y_lo) if log else y_lo
        self.y_span = ((math.log10(y_hi) if log else y_hi) - self.y_lo) or 1.0
        self.left, self.right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
        self.top, self.bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def x(self, value: float) -> float:
        return self.left + (value - self.x_lo) / self.x_span * (self.right - self.left)

    def y(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.bottom - (v - self.y_lo) / self.y_span * (self.bottom - self.top)


def _axes(s: _Scale, x_ticks: list[float], y_ticks: list[float], chart: Chart) -> str:
    big_x = max((abs(t) for t in x_ticks), default=0) >= 10_000
    out = ['<g class="axes">']
    for t, label in zip(y_ticks, _tick_labels(y_ticks)):
        y = s.y(t)
        out.append(f'<line class="grid" x1="{s.left}" x2="{s.right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{s.left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for t, label in zip(x_ticks, _tick_labels(x_ticks)):
        x = s.x(t)
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{s.top}" y2="{s.bottom}"/>')
        label = f"{t / 1000:g}k" if big_x and t else label
        out.append(f'<text class="tick" x="{x:.1f}" y="{s.bottom + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<rect class="frame" x="{s.left}" y="{s.top}" width="{s.right - s.left}" height="{s.bottom - s.top}"/>')
    middle_x, middle_y = (s.left + s.right) / 2, (s.top + s.bottom) / 2
    out.append(f'<text class="title" x="{s.left}" y="18">{escape_text(chart.title)}</text>')
    out.append(f'<text class="label" x="{middle_x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape_text(chart.xlabel)}</text>')
    ylabel = chart.ylabel + (" (log)" if chart.log_y else "")
    out.append(f'<text class="label" x="14" y="{middle_y:.1f}" text-anchor="middle" '
               f'transform="rotate(-90 14 {middle_y:.1f})">{escape_text(ylabel)}</text>')
    out.append("</g>")
    return "".join(out)


SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _tick_labels(ticks: list[float]) -> list[str]:
    """One label per tick, with as many digits as it takes for distinct ticks to read distinct."""
    for digits in range(6, 18):
        labels = [_tick_label(t, digits) for t in ticks]
        if len(set(labels)) == len(set(ticks)):
            return labels
    return labels


def _tick_label(value: float, digits: int = 6) -> str:
    """Plain numbers, except powers of ten beyond 0.001–1000 as 10ⁿ (a log axis of a diverged loss)."""
    if value and not 1e-3 <= abs(value) <= 1e3:
        exponent = math.log10(abs(value))
        if exponent == round(exponent):
            return "10" + str(round(exponent)).translate(SUPERSCRIPT)
    return f"{value:.{digits}g}".replace("-", "−")


def _line(s: _Scale, line: Line) -> str:
    d = _path(s, line.xs, line.ys)
    if not d:
        return ""
    style = f' stroke-dasharray="{line.dash}"' if line.dash else ""
    if line.opacity < 1:
        style += f' stroke-opacity="{line.opacity:g}"'
    title = f"<title>{escape_text(line.title)}</title>" if line.title else ""
    return (f'<path d="{d}" fill="none" stroke="{line.colour}" stroke-width="{line.width:g}"'
            f' stroke-linejoin="round"{style}>{title}</path>')


def _band(s: _Scale, band: Band) -> str:
    """One closed polygon per stretch where both edges are drawable."""
    xs, lows, highs = band.xs, band.lows, band.highs
    paths = []
    for run in _stretches(xs, lows, highs, s.log):
        upper = [f"{s.x(xs[i]):.1f},{s.y(highs[i]):.1f}" for i in run]
        lower = [f"{s.x(xs[i]):.1f},{s.y(lows[i]):.1f}" for i in reversed(run)]
        paths.append("M" + "L".join(upper + lower) + "Z")
    if not paths:
        return ""
    return f'<path d="{"".join(paths)}" fill="{band.colour}" fill-opacity="{band.opacity:g}" stroke="none"/>'


def _stretches(xs: list[float], lows: list[float], highs: list[float], log: bool) -> list[list[int]]:
    runs: list[list[int]] = [[]]
    for i, x in enumerate(xs):
        if math.isfinite(x) and _usable(lows[i], log) and _usable(highs[i], log):
            runs[-1].append(i)
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if len(r) > 1]


def _path(s: _Scale, xs: list[float], ys: list[float]) -> str:
    """M/L path data; a gap in the data starts a new M."""
    out = []
    pen_down = False
    for x, y in zip(xs, ys):
        if not (math.isfinite(x) and _usable(y, s.log)):
            pen_down = False
            continue
        out.append(f"{'L' if pen_down else 'M'}{s.x(x):.1f},{s.y(y):.1f}")
        pen_down = True
    return "".join(out)


def _thin(*columns: list) -> tuple[list, ...]:
    """At most MAX_POINTS evenly spaced rows of the columns, keeping the first and the last."""
    n = len(columns[0])
    if n <= MAX_POINTS:
        return tuple(list(c) for c in columns)
    keep = sorted({round(i * (n - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)})
    return tuple([c[i] for i in keep] for c in columns)


def escape_text(value: object) -> str:
    """HTML-escaped text that also spells no URL scheme.

    The report must not contain "http://" or "https://" anywhere, so that a test can
    prove it references nothing online; a user's text (a claim's source, a path) may
    hold one, so its colon is written as a character reference: it reads the same.
    """
    return escape(str(value)).replace("://", "&#58;//")
