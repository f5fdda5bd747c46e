"""The report page's charts: learning curves and diagnostics as inline SVG (bnexp.svgchart).

Each seed group is drawn in its colour (bnexp.bands' palette) as its runs, thin, and the
mean over its seeds with the band of bnexp.bands.seed_band (min–max over seeds), as
`compare --plot` draws it. Every run's and group's lines sit in their own `<g>` carrying
data-run / data-group, so that the page can show or hide them. The charts come back as
markupsafe.Markup: svgchart builds them from numbers and escapes every text it writes.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from markupsafe import Markup

from bnexp.formats import measured
from bnexp.bands import GREY, group_style, seed_band
from bnexp.report_data import ReportData, RunEntry
from bnexp.svgchart import Band, Chart, Layer, Line, render

CURVES = (("test_accuracy", "test accuracy", False), ("test_loss", "test loss", True))


@dataclass
class GroupView:
    """A seed group on the page: `members` (indices of the runs whose `group` it is) and
    `counted` (those its statistics count), in its colour and dash."""

    label: str
    members: list[int]
    counted: list[int]
    colour: str
    dash: str | None


@dataclass
class Style:
    colour: str
    dash: str | None
    group: int | None  # its seed group's index, None for a run in no group


def group_views(data: ReportData) -> list[GroupView]:
    """The seed groups; without `groups` the runs are grouped by their `group` (each alone without one), all counted."""
    members: dict[str, list[int]] = {}
    for i, run in enumerate(data.runs):
        members.setdefault(run.group or run.label or run.path or str(i), []).append(i)
    if not data.groups:
        pairs = [(name, idx, idx) for name, idx in members.items()]
    else:
        index = {run.label: i for i, run in enumerate(data.runs)}
        pairs = [(g.label, members.get(g.label, []), [index[r] for r in g.runs if r in index]) for g in data.groups]
    return [GroupView(name, idx, counted, *group_style(g)) for g, (name, idx, counted) in enumerate(pairs)]


def run_styles(runs: list[RunEntry], groups: list[GroupView]) -> list[Style]:
    """Each run's colour, dash and group; a run in no group is grey."""
    styles = [Style(GREY, None, None) for _ in runs]
    for g, group in enumerate(groups):
        for i in group.members:
            styles[i] = Style(group.colour, group.dash, g)
    return styles


def curve_charts(runs: list[RunEntry], groups: list[GroupView], styles: list[Style]) -> list[Markup]:
    """Test accuracy and test loss against step; none when no run has a finite value."""
    charts = []
    for key, name, log in CURVES:
        layers = []
        for g, group in enumerate(groups):
            layers += _group_layers(runs, group, g, key, name)
        layers += [_run_layer(runs[i], i, style, key, name, seed=False) for i, style in enumerate(styles) if style.group is None]
        charts.append(render(Chart(f"{name} against step", "step", name, layers, log_y=log and _all_positive(layers))))
    return [Markup(c) for c in charts] if any(charts) else []


def _group_layers(runs: list[RunEntry], group: GroupView, g: int, key: str, name: str) -> list[Layer]:
    """The group's runs (thin, toggled one by one) and the mean of its counted runs with its band."""
    counted = group.counted
    style = Style(group.colour, group.dash, g)
    seeds = [_run_layer(runs[i], i, style, key, name, seed=len(counted) > 1) for i in group.members]
    if len(counted) < 2:
        return seeds
    steps, mean, low, high = seed_band([(runs[i].curve.step, getattr(runs[i].curve, key)) for i in counted])
    title = f"{group.label} (n = {len(counted)}): mean, min–max"
    summary = Layer({"class": "group", "data-group": str(g)}, bands=[Band(steps, low, high, group.colour)],
                    lines=[Line(steps, mean, group.colour, width=2.2, dash=group.dash, title=title)])
    return seeds + [summary]


def _run_layer(run: RunEntry, i: int, style: Style, key: str, name: str, seed: bool) -> Layer:
    values = getattr(run.curve, key)
    last = next((v for v in reversed(values) if v is not None and math.isfinite(v)), None)
    width, opacity = (1.0, 0.35) if seed else (1.8, 1.0)
    attrs = {"class": "run seed" if seed else "run", "data-run": str(i)}
    if style.group is not None:
        attrs["data-group"] = str(style.group)
    title = f"{run.label or run.path}: last {name} {measured(last)}"
    return Layer(attrs, lines=[Line(_floats(run.curve.step), _floats(values), style.colour, width, opacity, style.dash, title)])


def _all_positive(layers: list[Layer]) -> bool:
    """A log axis only when no line's value would vanish from it (a loss is positive).

    A band's lower edge may still fall to zero or below: it is left out of the axis where it
    does, since a loss that spans decades (a diverged run's) needs the log axis more.
    """
    values = [y for layer in layers for line in layer.lines for y in line.ys if math.isfinite(y)]
    return bool(values) and min(values) > 0


def _floats(values) -> list[float]:
    """Numbers as floats, a missing one as NaN (which breaks a drawn line)."""
    return [math.nan if v is None else float(v) for v in values]


# --- diagnostics -------------------------------------------------------------------------

DIAGNOSTICS_CHARTS = (
    ("Activation input percentiles (Ioffe & Szegedy 2015, Figure 1(b, c))", "activation"),
    ("BN: batch against moving statistics", "bn"),
    ("Internal covariate shift per layer (Santurkar et al. 2018, Definition 2.1)", "ics"),
    ("Loss landscape along the gradient (Santurkar et al. 2018, section 3, Figure 4)", "landscape"),
)


def diagnostics_charts(runs: list[RunEntry], groups: list[GroupView], styles: list[Style]) -> list[tuple[str, list[Markup]]]:
    """(title, charts) of each diagnostic any run recorded: per-step values averaged over the
    group's seeds that recorded them, with the band over those seeds (as the learning curves);
    the activation percentiles of one unit are of its group's first such seed, since unit k of
    one seed is not unit k of another."""
    grouped = [(g, [i for i in group.members if runs[i].diagnostics]) for g, group in enumerate(groups)]
    grouped += [(None, [i]) for i, style in enumerate(styles) if style.group is None and runs[i].diagnostics]
    grouped = [(g, members) for g, members in grouped if members]
    if not grouped:
        return []
    draw = {"activation": lambda: _activation_charts(runs, styles, [members[0] for _, members in grouped]),
            "bn": lambda: _bn_charts(runs, styles, grouped), "ics": lambda: _ics_charts(runs, styles, grouped),
            "landscape": lambda: _landscape_charts(runs, styles, grouped)}
    parts = [(title, [Markup(c) for c in draw[kind]() if c]) for title, kind in DIAGNOSTICS_CHARTS]
    return [(title, charts) for title, charts in parts if charts]


def _rows(run: RunEntry, kind: str) -> list[dict]:
    return run.diagnostics.get(kind) or []


def _activation_charts(runs: list[RunEntry], styles: list[Style], shown: list[int]) -> list[str]:
    """The paper's Figure 1(b, c): one unit of the last hidden layer (its first recorded unit).

    The panels share their y axis so that the spreads can be read against each other.
    """
    chosen = []
    for i in shown:
        rows = _rows(runs[i], "activations")
        if not rows:
            continue
        layer = max(r["layer"] for r in rows)
        unit = min(r["unit"] for r in rows if r["layer"] == layer)
        picked = sorted((r for r in rows if r["layer"] == layer and r["unit"] == unit), key=lambda r: r["step"])
        chosen.append((i, layer, unit, picked))
    values = [r[k] for *_, picked in chosen for r in picked for k in ("p15", "p85") if math.isfinite(r[k])]
    if not values:
        return []
    charts = []
    for i, layer, unit, picked in chosen:
        style = styles[i]
        steps = [float(r["step"]) for r in picked]
        band = Band(steps, _floats(r["p15"] for r in picked), _floats(r["p85"] for r in picked), style.colour, 0.25)
        line = Line(steps, _floats(r["p50"] for r in picked), style.colour, 1.8, dash=style.dash, title="50th percentile")
        title = f"{runs[i].label}: layer {layer}, unit {unit}"
        charts.append(render(Chart(title, "step", "15th, 50th, 85th pct", [_diagnostics_layer(i, style, [band], [line])],
                                   y_range=(min(values), max(values)))))
    return charts


def _diagnostics_layer(i: int, style: Style, bands: list[Band], lines: list[Line]) -> Layer:
    attrs = {"class": "run", "data-run": str(i)} | ({"data-group": str(style.group)} if style.group is not None else {})
    return Layer(attrs, bands, lines)


def _mean_over_layers(rows: list[dict], column: str) -> tuple[list[float], list[float]]:
    by_step: dict[float, list[float]] = {}
    for r in rows:
        value = r.get(column)
        if value is not None and math.isfinite(value):
            by_step.setdefault(float(r["step"]), []).append(float(value))
    steps = sorted(by_step)
    return steps, [statistics.fmean(by_step[s]) for s in steps]


def group_series(runs: list[RunEntry], members: list[int], kind: str, column: str, select=lambda r: True):
    """A group's mean over its seeds of `column` (each seed's mean over the selected rows at a
    step) and the band over those seeds, as the learning curves have it."""
    return seed_band([_mean_over_layers([r for r in _rows(runs[i], kind) if select(r)], column) for i in members])


def _series_attrs(g: int | None, members: list[int]) -> dict[str, str]:
    """A mean over seeds toggles with its group; a group's single run toggles as that run too."""
    if len(members) > 1:
        return {"class": "group", "data-group": str(g)}
    return {"class": "run", "data-run": str(members[0])} | ({"data-group": str(g)} if g is not None else {})


def _group_chart(runs, styles, grouped, kind: str, column: str, title: str, ylabel: str, select=lambda r: True) -> str:
    """A line per seed group: its mean of `column` over seeds against step, with the band."""
    layers = []
    for g, members in grouped:
        steps, mean, low, high = group_series(runs, members, kind, column, select)
        if steps:
            style = styles[members[0]]
            name = runs[members[0]].group or runs[members[0]].label
            layers.append(Layer(_series_attrs(g, members), [Band(steps, low, high, style.colour)],
                                [Line(steps, mean, style.colour, 1.8, dash=style.dash, title=f"{name} (n = {len(members)})")]))
    return render(Chart(title, "step", ylabel, layers)) if layers else ""


def _bn_charts(runs, styles, grouped) -> list[str]:
    return [_group_chart(runs, styles, grouped, "bn", "mean_gap", "mean gap, mean over BN layers", "|batch − moving mean|"),
            _group_chart(runs, styles, grouped, "bn", "variance_gap", "variance gap, mean over BN layers", "|batch − moving var|")]


def _ics_charts(runs, styles, grouped) -> list[str]:
    layers = sorted({r["layer"] for _, members in grouped for i in members for r in _rows(runs[i], "ics")})
    return [_group_chart(runs, styles, grouped, "ics", column, f"ICS {what}, layer {layer}", what,
                         select=lambda r, layer=layer: r["layer"] == layer)
            for column, what in (("ics_l2", "ℓ2 distance"), ("ics_cosine", "cosine")) for layer in layers]


def _landscape_charts(runs, styles, grouped) -> list[str]:
    """The loss range along the gradient (each group's mean of the minimum and of the maximum
    over seeds, the band between them), and the two smoothness measures as mean with band."""
    layers = []
    for g, members in grouped:
        steps, low, _, _ = group_series(runs, members, "landscape", "loss_min")
        steps_high, high, _, _ = group_series(runs, members, "landscape", "loss_max")
        if steps and steps == steps_high:
            layers.append(Layer(_series_attrs(g, members), [Band(steps, low, high, styles[members[0]].colour, 0.3)]))
    loss_range = render(Chart("loss range along the gradient, mean over seeds", "step", "loss", layers)) if layers else ""
    return [loss_range,
            _group_chart(runs, styles, grouped, "landscape", "grad_change_max",
                         "gradient predictiveness: max ‖Δ gradient‖", "max ‖Δ gradient‖"),
            _group_chart(runs, styles, grouped, "landscape", "beta_smoothness", "effective β-smoothness", "β")]
