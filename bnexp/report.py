"""One self-contained HTML page that shows a study: `bnexp report`'s renderer.

The page opens from a disk or an e-mail attachment and looks the same: no server,
no network, no external script, style sheet, font or image, and no "http://" or
"https://" anywhere in the file (user text that holds one is written with its colon
as a character reference). Plots are inline SVG drawn by `bnexp.svgchart`; a few
lines of inline JavaScript show or hide single runs, and without JavaScript every run
stays visible. Nothing here imports TensorFlow; SciPy's t distribution gives the
95% bands and matplotlib's tick locators the axis ticks.

This module only formats. It takes one plain, JSON-serialisable dict, filled from run
directories by bnexp.report_data, and computes no statistic of its own except the band
drawn around a seed group's mean curve. Every section but the header is optional: a
missing or empty key leaves its section out.

The dict is `bnexp compare --format json`'s object as it is (docs/comparing.md's "Comparing
runs" gives its keys), so that every table holds what compare says, plus three keys
compare does not print (`?` marks a value that may be None):

    header:      {inputs: [str] the paths as named, created: ISO time str,
                  bnexp_version: str, git_commit: str? (of the bnexp writing the page),
                  run_commits: [str] (the git commits that trained the runs)}
    curves:      one per entry of `runs`: {step: [int], test_accuracy: [float?], test_loss: [float?]}
    diagnostics: one per entry of `runs`: {table kind: [row dicts]}, the tables bnexp.rundir
                 declares that the run recorded; drawn: activations {step, layer, unit, p15,
                 p50, p85}, bn {step, layer, mean_gap, variance_gap}, ics {step, layer,
                 ics_l2, ics_cosine}, landscape {step, loss_min, loss_max, grad_change_max,
                 beta_smoothness}

Of compare's object the page reads: `last` and `threshold`; `runs[i]` label, path,
status, group, settings and values (final_test_accuracy, best_test_accuracy, steps,
seconds_per_epoch); `diff` {key: {run label: value}}; `groups[j]` label and runs (the
labels of the runs its statistics count; a run belongs to the group its `group` names);
`comparisons` (a, b, test, n_a, n_b, difference, ci_low, ci_high, effect_size, p,
p_adjusted, verdict, sentence, excluded [{path, why}]); `not_comparable`; `hardware_note`; `pivot`
(metric, row_keys, column_key, columns, rows [{values, cells [{group, mean, std, n}?]}],
or None); `claims` (name, claim, source, metric, direction, verdict, difference,
ci_low, ci_high, p, p_adjusted, n_better, n_than, seeds_needed, family, notes, or None).

Every number shown in a table also sits in its cell's `data-value` attribute as
Python's `repr` of the input (shortest round-trip form), so a reader or a test can
recover it exactly; pivot cells carry `data-mean`, `data-std` and `data-n`.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from bnexp.formats import MISSING, p_value
from bnexp.rundir.guard import write_atomic
from bnexp.svgchart import Band, Chart, Layer, Line, escape_text, render
from bnexp.present.claims import label

# The first six are Okabe & Ito's colour-blind-safe set; four darker hues follow.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
           "#7F3C8D", "#8C564B", "#3B3B3B", "#B8860B")
# Beyond ten groups colours repeat, each round with its own dash pattern.
DASHES = (None, "6 3", "2 2.5", "9 3 2 3")
CURVES = (("test_accuracy", "test accuracy", False), ("test_loss", "test loss", True))


def render_html(data: dict) -> str:
    """The whole report page for `data` (see the module docstring) as one HTML string."""
    runs = _drawn_runs(data)
    groups = _groups(data, runs)
    styles = _run_styles(runs, groups)
    sections = [
        ("config", "Config keys that differ", _config_diff(data)),
        ("pivots", "By grid value", _pivots(data)),
        ("curves", "Learning curves", _curves(runs, groups, styles)),
        ("statistics", "Statistics", _statistics(data)),
        ("claims", "Claims", _claims(data)),
        ("diagnostics", "Diagnostics", _diagnostics(runs, groups, styles)),
        ("runs", "Runs", _runs_table(data, runs, styles)),
    ]
    present = [(key, title, body) for key, title, body in sections if body]
    nav = "".join(f'<a href="#{key}">{title}</a>' for key, title, _ in present)
    body = "".join(f'<section id="{key}"><h2>{title}</h2>{html}</section>' for key, title, html in present)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_title(data)}</title><style>{CSS}</style></head>"
        f'<body><main>{_header(data, runs, groups)}<nav aria-label="sections">{nav}</nav>{body}</main>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )


def _title(data: dict) -> str:
    inputs = (data.get("header") or {}).get("inputs") or []
    return escape_text("bnexp report" + (f": {', '.join(map(str, inputs))}" if inputs else ""))


def write_report(data: dict, path: str | Path) -> Path:
    """Render `data` to `path`, written whole or not at all (rundir.write_atomic)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # write_atomic's temporary file is created exclusively, never through a link planted beside `out`.
    write_atomic(out, render_html(data))
    return out


# --- grouping and colours ---------------------------------------------------------


def _drawn_runs(data: dict) -> list[dict]:
    """compare's runs, each with its `curve` and `diagnostics` (the lists beside `runs`) for drawing."""
    runs = data.get("runs") or []
    curves = data.get("curves") or [{}] * len(runs)
    diagnostics = data.get("diagnostics") or [{}] * len(runs)
    return [run | {"curve": c, "diagnostics": d} for run, c, d in zip(runs, curves, diagnostics)]


def _groups(data: dict, runs: list[dict]) -> list[dict]:
    """Each seed group's `label`, `members` (indices of the runs whose `group` it is) and
    `counted` (those its statistics count, as compare's `groups` list them).

    Without `groups` the runs are grouped by their `group` (each alone without one), all counted.
    """
    members: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        members.setdefault(run.get("group") or run.get("label") or run.get("path") or str(i), []).append(i)
    if not data.get("groups"):
        return [{"label": label, "members": idx, "counted": idx} for label, idx in members.items()]
    index = {run.get("label"): i for i, run in enumerate(runs)}
    return [{"label": g.get("label", ""), "members": members.get(g.get("label"), []),
             "counted": [index[label] for label in g.get("runs") or [] if label in index]}
            for g in data["groups"]]


def _run_styles(runs: list[dict], groups: list[dict]) -> dict[int, tuple[str, str | None, int | None]]:
    """Each run's (colour, dash, group index); a run in no group is grey."""
    styles: dict[int, tuple[str, str | None, int | None]] = {i: ("#999999", None, None) for i in range(len(runs))}
    for g, group in enumerate(groups):
        for i in group["members"]:
            styles[i] = (*_group_style(g), g)
    return styles


def _group_style(index: int) -> tuple[str, str | None]:
    return PALETTE[index % len(PALETTE)], DASHES[index // len(PALETTE) % len(DASHES)]


# --- number formatting ---------------------------------------------------------------


def _number(value, signed: bool = False) -> str:
    """One style for every measured number: four decimals below 1 (accuracies and their
    differences read alike), four significant digits up to 1,000, grouped thousands above."""
    if not _finite(value):
        return MISSING if value is None else str(value)
    sign = "+" if signed else ""
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:{sign},.0f}"
    if magnitude >= 1:
        return f"{value:{sign}#.4g}"
    return f"{value:{sign}.4f}"


def _count(value) -> str:
    return f"{int(value):,}" if _finite(value) else MISSING


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _exact(value) -> str:
    """A number as an attribute value that reads back exactly (repr round-trips a float); "" for None."""
    return "" if value is None else escape_text(repr(value))


def _cell(field: str, value, text: str | None = None, cls: str = "num") -> str:
    """A table cell whose `data-value` keeps the exact input number."""
    shown = escape_text(text if text is not None else _number(value))
    return f'<td class="{cls}" data-field="{field}" data-value="{_exact(value)}">{shown}</td>'


def _text_cell(field: str, text, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<td{klass} data-field="{field}">{escape_text(MISSING if text is None else text)}</td>'


def _pill(kind: str, value) -> str:
    """A coloured label for a status or verdict; its class names the value."""
    value = str(value or "unknown")
    return f'<span class="pill {kind}-{escape_text(value)}">{escape_text(value.replace("_", " "))}</span>'


def _table(header: list[str], rows: list[str], cls: str, caption: str = "") -> str:
    head = "".join(f"<th>{escape_text(h)}</th>" for h in header)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table class="{cls}">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


# --- sections --------------------------------------------------------------------------


def _header(data: dict, runs: list[dict], groups: list[dict]) -> str:
    header = data.get("header") or {}
    inputs = "".join(f"<li><code>{escape_text(p)}</code></li>" for p in header.get("inputs") or []) or f"<li>{MISSING}</li>"
    statuses: dict[str, int] = {}
    for run in runs:
        statuses[run.get("status") or "unknown"] = statuses.get(run.get("status") or "unknown", 0) + 1
    counts = " ".join(f"{_pill('status', s)} {n}" for s, n in statuses.items())
    trained = " ".join(f"<code>{escape_text(c)}</code>" for c in header.get("run_commits") or []) or MISSING
    facts = [
        ("compared", f'<ul class="inputs">{inputs}</ul>'),
        ("created", escape_text(header.get("created") or MISSING)),
        ("bnexp", escape_text(header.get("bnexp_version") or MISSING)),
        ("git commit", f"<code>{escape_text(header.get('git_commit') or MISSING)}</code>"),
        ("runs trained at", trained),
        ("runs", f"{len(runs)} in {len(groups)} seed group{'s' * (len(groups) != 1)} {counts}"),
        *_reading(data),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return f'<header><h1>bnexp report</h1><dl class="facts">{rows}</dl></header>'


def _reading(data: dict) -> list[tuple[str, str]]:
    """How compare read the runs: what a final accuracy is, and the threshold of steps-to."""
    facts = []
    if data.get("last") is not None:
        last = data["last"]
        what = "the last evaluation" if last == 1 else f"the mean of the last {escape_text(last)} evaluations"
        facts.append(("final accuracy", what))
    if data.get("threshold") is not None:
        facts.append(("threshold", f"{escape_text(data['threshold'])} test accuracy (steps to it)"))
    return facts


def _config_diff(data: dict) -> str:
    """Each differing key with its distinct values; the runs table has every run's value."""
    rows = []
    for key, by_run in (data.get("diff") or {}).items():
        distinct = list(dict.fromkeys(_value_text(v) for v in by_run.values()))
        values = " ".join(f"<code>{escape_text(v)}</code>" for v in distinct)
        rows.append(f'<tr><th scope="row"><code>{escape_text(key)}</code></th><td>{values}</td></tr>')
    if not rows:
        return ""
    return _table(["key", "values"], rows, "config-diff")


def _value_text(value) -> str:
    return MISSING if value is None else str(value)


def _pivots(data: dict) -> str:
    """compare's pivots, one per metric: one row per combination of its row keys' values,
    one column per value of its column key (or one column without), each cell a seed
    group's value with the runs it counts, diverged and failed to learn."""
    pivots = data.get("pivots") or ([data["pivot"]] if data.get("pivot") else [])
    return "".join(_pivot(p, "pivot" if k == 0 else "pivot more") for k, p in enumerate(pivots))


def _pivot(pivot: dict, cls: str) -> str:
    row_keys, column_key = pivot.get("row_keys") or [], pivot.get("column_key")
    metric = pivot.get("metric", "")
    columns = [f"{column_key}={v}" for v in pivot.get("columns") or []] if column_key else [metric]
    rows = []
    for row in pivot.get("rows") or []:
        values = row.get("values") or {}
        heads = "".join(f'<th scope="row"><code>{escape_text(_value_text(values.get(k)))}</code></th>' for k in row_keys)
        rows.append(f"<tr>{heads}{''.join(_pivot_cell(c) for c in row.get('cells') or [])}</tr>")
    caption = (f"<code>{escape_text(metric)}</code>: mean ± std (n) over seeds, with the runs not counted, "
               f"diverged or failed to learn, as <code>bnexp compare --pivot</code> gives it")
    return _table([*row_keys, *columns], rows, cls, caption)


def _pivot_cell(cell: dict | None) -> str:
    """A group's mean ± std (n), or compare's text when not every run is counted
    ('0.0940: 1 of 3, 2 diverged'); a dash where the grid has no run."""
    cell = cell or {}
    mean, std, n = cell.get("mean"), cell.get("std"), cell.get("n")
    if cell.get("text"):
        text = cell["text"]
    elif mean is None:
        text = MISSING
    else:
        text = _number(mean) + (f" ± {_number(std)}" if std is not None else "") + f" ({n})"
    counts = (("mean", mean), ("std", std), ("n", n), ("n-diverged", cell.get("n_diverged")),
              ("n-failed", cell.get("n_failed")))
    attrs = "".join(f' data-{k}="{_exact(v)}"' for k, v in counts)
    group = escape_text(cell.get("group") or "")
    return f'<td class="num" data-field="cell" data-group="{group}"{attrs}>{escape_text(text)}</td>'


def _curves(runs: list[dict], groups: list[dict], styles) -> str:
    charts = []
    for key, name, log in CURVES:
        layers = []
        for g, group in enumerate(groups):
            layers += _group_layers(runs, group, g, key, name)
        layers += [_run_layer(runs, i, styles, key, name, seed=False) for i, (_, _, g) in styles.items() if g is None]
        charts.append(render(Chart(f"{name} against step", "step", name, layers, log_y=log and _all_positive(layers))))
    if not any(charts):
        return ""
    note = ("<p class=\"note\">Each seed group's mean over the runs its statistics count (completed, one per "
            "seed), with the 95% confidence interval of that mean (Student's t) shaded at every step that two "
            "or more of them reached; every run of the group, counted or not, is drawn thin. Tick a box to "
            "show or hide a group or a run.</p>")
    return note + f'<div class="charts">{"".join(charts)}</div>' + _legend(runs, groups, styles)


def _group_layers(runs: list[dict], group: dict, g: int, key: str, name: str) -> list[Layer]:
    """The group's runs (thin, toggled one by one) and the mean of its counted runs with the 95% band."""
    colour, dash = _group_style(g)
    counted = group["counted"]
    seeds = [_run_layer(runs, i, {i: (colour, dash, g)}, key, name, seed=len(counted) > 1) for i in group["members"]]
    if len(counted) < 2:
        return seeds
    steps, mean, low, high = _mean_band([runs[i].get("curve") or {} for i in counted], key)
    label = f"{group['label']} (n = {len(counted)}): mean, 95% CI"
    summary = Layer({"class": "group", "data-group": str(g)},
                    bands=[Band(steps, low, high, colour)],
                    lines=[Line(steps, mean, colour, width=2.2, dash=dash, title=label)])
    return seeds + [summary]


def _run_layer(runs: list[dict], i: int, styles, key: str, name: str, seed: bool) -> Layer:
    colour, dash, g = styles[i]
    curve = runs[i].get("curve") or {}
    steps, values = curve.get("step") or [], curve.get(key) or []
    last = next((v for v in reversed(values) if _finite(v)), None)
    title = f"{runs[i].get('label', runs[i].get('path', ''))}: last {name} {_number(last)}"
    width, opacity = (1.0, 0.35) if seed else (1.8, 1.0)
    attrs = {"class": "run seed" if seed else "run", "data-run": str(i)}
    if g is not None:
        attrs["data-group"] = str(g)
    return Layer(attrs, lines=[Line(_floats(steps), _floats(values), colour, width, opacity, dash, title)])


def _mean_band(curves: list[dict], key: str) -> tuple[list[float], list[float], list[float | None], list[float | None]]:
    """Mean over seeds at each step, and the t-based 95% CI of that mean.

    A step counts the seeds that reached it, so a seed still running narrows the
    band instead of ending the curve; a step reached by one seed has no band.
    """
    import numpy as np
    from scipy.stats import t as student_t

    seeds = []
    for curve in curves:
        x, y = np.asarray(_floats(curve.get("step") or [])), np.asarray(_floats(curve.get(key) or []))
        x, y = x[:len(y)], y[:len(x)]
        seeds.append((x[np.isfinite(y)], y[np.isfinite(y)]))
    steps = np.unique(np.concatenate([x for x, _ in seeds] or [np.empty(0)]))
    table = np.full((len(steps), len(seeds)), np.nan)  # steps × seeds, NaN where a seed has no value
    for column, (x, y) in enumerate(seeds):
        table[np.searchsorted(steps, x), column] = y
    n = np.sum(~np.isnan(table), axis=1)
    mean = np.nansum(table, axis=1) / np.maximum(n, 1)
    banded = n >= 2
    squares = np.nansum((table - mean[:, None]) ** 2, axis=1)
    half = np.full(len(steps), np.nan)
    half[banded] = (student_t.ppf(0.975, n[banded] - 1) * np.sqrt(squares[banded] / (n[banded] - 1))
                    / np.sqrt(n[banded]))
    low = [float(m - h) if b else None for m, h, b in zip(mean, half, banded)]
    high = [float(m + h) if b else None for m, h, b in zip(mean, half, banded)]
    return steps.tolist(), mean.tolist(), low, high


def _all_positive(layers: list[Layer]) -> bool:
    """A log axis only when no line's value would vanish from it (a loss is positive).

    A band's lower edge may still fall to zero or below (the t interval of two or three
    seeds is wide): it is left out of the axis where it does, since a loss that spans
    decades (a diverged run's) needs the log axis more than that edge needs drawing.
    """
    values = [y for layer in layers for line in layer.lines for y in line.ys if _finite(y)]
    return bool(values) and min(values) > 0


def _floats(values) -> list[float]:
    """Numbers as floats, a missing one as NaN (which breaks a drawn line)."""
    return [math.nan if v is None else float(v) for v in values]


def _legend(runs: list[dict], groups: list[dict], styles) -> str:
    items = []
    for g, group in enumerate(groups):
        head = _toggle(f"group:{g}", f"{_swatch(*_group_style(g))}<strong>{escape_text(group['label'])}</strong>")
        items.append(f'<li>{head} <span class="n">n = {len(group["counted"])}</span>'
                     f'{_run_toggles(runs, group["members"])}</li>')
    loose = [i for i, (_, _, g) in styles.items() if g is None]
    if loose:
        items.append(f'<li>{_swatch("#999999", None)}<strong>in no seed group</strong>{_run_toggles(runs, loose)}</li>')
    every = f'<p class="toggle-all">{_toggle("seeds", "single seeds of each group")}</p>'
    return f'<div class="legend">{every}<ul>{"".join(items)}</ul></div>'


def _run_toggles(runs: list[dict], members: list[int]) -> str:
    """A folded list of one checkbox per run (shown only where JavaScript runs to act on it)."""
    boxes = "".join(_toggle(f"run:{i}", escape_text(runs[i].get("label") or runs[i].get("path", ""))) for i in members)
    return f'<details class="seeds"><summary>runs</summary><div>{boxes}</div></details>'


def _toggle(key: str, label_html: str) -> str:
    return f'<label><input type="checkbox" data-toggle="{key}" checked>{label_html}</label>'


def _swatch(colour: str, dash: str | None) -> str:
    pattern = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<svg class="swatch" viewBox="0 0 28 10" aria-hidden="true"><line x1="1" y1="5" x2="27" y2="5" '
            f'stroke="{colour}" stroke-width="3"{pattern}/></svg>')


def _statistics(data: dict) -> str:
    comparisons = data.get("comparisons") or []
    reasons = data.get("not_comparable") or []
    parts = [f'<p class="warning">Not comparable: {escape_text(r)}</p>' for r in reasons]
    if data.get("hardware_note"):
        parts.append(f'<p class="warning">Hardware: {escape_text(data["hardware_note"])}</p>')
    if comparisons:
        baselines = list(dict.fromkeys(str(c.get("a")) for c in comparisons))
        one_baseline = len(baselines) == 1
        rows = [_comparison_row(i, c, show_a=not one_baseline) for i, c in enumerate(comparisons)]
        header = ["metric", "group", *([] if one_baseline else ["baseline"]), "test", "n", "diverged / failed",
                  "difference", "CI", "effect size", "p", "adjusted p", "verdict", "reading"]
        against = f"the baseline <strong>{escape_text(baselines[0])}</strong>" if one_baseline else "its baseline"
        caption = (f"Each group against {against} on each metric (difference: group − baseline); n counts the runs "
                   "in the test, and diverged / failed the group's runs that diverged or failed to learn (group vs "
                   "baseline). Adjusted p: Holm's step-down over one metric's comparisons; the verdict and the "
                   "reading use it. CI: at the level the verdict uses (95% alone, 1 − 0.05·p/adjusted p under "
                   "Holm), so it excludes 0 exactly when the verdict is distinguishable.")
        parts.append(_table(header, rows, "statistics", caption))
        excluded = [(c, e) for c in comparisons for e in c.get("excluded") or []]
        if excluded:
            items = "".join(f"<li><code>{escape_text(e.get('path', ''))}</code>: {escape_text(e.get('why', ''))} "
                            f"({escape_text(c.get('b', ''))} against {escape_text(c.get('a', ''))})</li>"
                            for c, e in excluded)
            parts.append(f'<div class="excluded"><h3>Runs left out of a test</h3><ul>{items}</ul></div>')
    return "".join(parts)


def _comparison_row(index: int, c: dict, show_a: bool) -> str:
    """One comparison; the baseline `a` gets a cell only when the comparisons have several."""
    failures = [f"{c.get(f'n_diverged_{k}') or 0} / {c.get(f'n_failed_{k}') or 0}" for k in ("b", "a")]
    cells = [
        f'<td data-field="metric"><code>{escape_text(c.get("metric", ""))}</code></td>',
        _text_cell("b", c.get("b")),
        *([_text_cell("a", c.get("a"))] if show_a else []),
        _text_cell("test", c.get("test")),
        f'<td class="num" data-field="n" data-n-a="{c.get("n_a")}" data-n-b="{c.get("n_b")}">'
        f'{escape_text(c.get("n_b"))}\u00a0vs\u00a0{escape_text(c.get("n_a"))}</td>',
        f'<td class="num" data-field="failures" data-n-diverged="{c.get("n_diverged") or 0}" '
        f'data-n-failed="{c.get("n_failed") or 0}">{escape_text(failures[0])}\u00a0vs\u00a0{escape_text(failures[1])}</td>',
        _cell("difference", c.get("difference"), _number(c.get("difference"), signed=True)),
        _ci_cell(c.get("ci_low"), c.get("ci_high"), c.get("ci_level")),
        _cell("effect_size", c.get("effect_size"), _number(c.get("effect_size"), signed=True)),
        _cell("p", c.get("p"), p_value(c.get("p"))),
        _cell("p_adjusted", c.get("p_adjusted"), p_value(c.get("p_adjusted"))),
        f'<td data-field="verdict">{_pill("verdict", c.get("verdict"))}</td>',
        _text_cell("sentence", c.get("sentence"), "reading"),
    ]
    return f'<tr data-index="{index}" data-a="{escape_text(c.get("a", ""))}">{"".join(cells)}</tr>'


def _ci_cell(low, high, level=None) -> str:
    """The interval, its level (the verdict's: `ci_level`) in data-level and the title."""
    text = MISSING if low is None or high is None else f"[{_number(low, signed=True)}, {_number(high, signed=True)}]"
    title = f' data-level="{_exact(level)}" title="{100 * level:.4g}% CI"' if level is not None else ""
    return (f'<td class="num" data-field="ci" data-low="{_exact(low)}" '
            f'data-high="{_exact(high)}"{title}>{escape_text(text)}</td>')


def _claims(data: dict) -> str:
    families: dict[str, list[tuple[int, dict]]] = {}
    for i, claim in enumerate(data.get("claims") or []):
        families.setdefault(str(claim.get("family") or MISSING), []).append((i, claim))
    header = ["claim", "metric", "verdict", "difference", "CI", "p", "adjusted p", "n", "seeds needed"]
    tables = []
    for family, claims in families.items():
        caption = f"Holm family <code>{escape_text(family)}</code>: p adjusted over these {len(claims)} claims"
        tables.append(_table(header, [_claim_row(i, c) for i, c in claims], "claims", caption))
    return "".join(tables)


def _claim_row(index: int, c: dict) -> str:
    notes = "".join(f'<small class="claim-note">{escape_text(n)}</small>' for n in c.get("notes") or [])
    what = (f'<td data-field="claim"><code class="name">{escape_text(label(c) if "name" in c else "")}</code> '
            f'<span class="claim-text">{escape_text(c.get("claim", ""))}</span>'
            f'<cite data-field="source">{escape_text(c.get("source") or MISSING)}</cite>{notes}</td>')
    metric = (f'<td data-field="metric"><code>{escape_text(c.get("metric", ""))}</code>'
              f'<span class="direction"> {escape_text(c.get("direction", ""))}</span></td>')
    cells = [
        what, metric,
        f'<td data-field="verdict">{_pill("verdict", c.get("verdict"))}</td>',
        _cell("difference", c.get("difference"), _number(c.get("difference"), signed=True)),
        _ci_cell(c.get("ci_low"), c.get("ci_high"), c.get("ci_level")),
        _cell("p", c.get("p"), p_value(c.get("p"))),
        _cell("p_adjusted", c.get("p_adjusted"), p_value(c.get("p_adjusted"))),
        f'<td class="num" data-field="n" data-n-better="{c.get("n_better")}" data-n-than="{c.get("n_than")}">'
        f'{escape_text(c.get("n_better"))}\u00a0vs\u00a0{escape_text(c.get("n_than"))}</td>',
        _cell("seeds_needed", c.get("seeds_needed"), _count(c.get("seeds_needed"))),
    ]
    return f'<tr data-index="{index}">{"".join(cells)}</tr>'


def _diagnostics(runs: list[dict], groups: list[dict], styles) -> str:
    """The recorded diagnostics of each seed group: per-step values averaged over the
    group's seeds that recorded them, with the 95% band of that mean (as the learning
    curves); the activation percentiles of one unit are of its group's first such seed,
    since unit k of one seed is not unit k of another.
    """
    grouped = [(g, [i for i in group["members"] if runs[i].get("diagnostics")]) for g, group in enumerate(groups)]
    grouped += [(None, [i]) for i, (_, _, g) in styles.items() if g is None and runs[i].get("diagnostics")]
    grouped = [(g, members) for g, members in grouped if members]
    if not grouped:
        return ""
    shown = [members[0] for _, members in grouped]
    parts = [
        ("Activation input percentiles (Ioffe & Szegedy 2015, Figure 1(b, c))", _activation_charts(runs, styles, shown)),
        ("BN: batch against moving statistics", _bn_charts(runs, styles, grouped)),
        ("Internal covariate shift per layer (Santurkar et al. 2018, Definition 2.1)", _ics_charts(runs, styles, grouped)),
        ("Loss landscape along the gradient (Santurkar et al. 2018, section 3, Figure 4)", _landscape_charts(runs, styles, grouped)),
    ]
    note = ('<p class="note">Each seed group\'s mean over its seeds with diagnostics recorded, with the 95% '
            'confidence interval of that mean shaded where two or more seeds have a value; the activation '
            'percentiles are of each group\'s first seed with diagnostics.</p>')
    return note + "".join(f'<h3>{title}</h3><div class="charts small">{charts}</div>' for title, charts in parts if charts)


def _rows(run: dict, kind: str) -> list[dict]:
    return (run.get("diagnostics") or {}).get(kind) or []


def _diagnostics_layer(i: int, styles, bands: list[Band] = (), lines: list[Line] = ()) -> Layer:
    _, _, g = styles[i]
    attrs = {"class": "run", "data-run": str(i)} | ({"data-group": str(g)} if g is not None else {})
    return Layer(attrs, list(bands), list(lines))


def _activation_charts(runs, styles, shown) -> str:
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
    values = [r[k] for *_, picked in chosen for r in picked for k in ("p15", "p85") if _finite(r[k])]
    if not values:
        return ""
    y_range = (min(values), max(values))
    charts = []
    for i, layer, unit, picked in chosen:
        colour, dash, _ = styles[i]
        steps = [float(r["step"]) for r in picked]
        band = Band(steps, _floats(r["p15"] for r in picked), _floats(r["p85"] for r in picked), colour, 0.25)
        line = Line(steps, _floats(r["p50"] for r in picked), colour, 1.8, dash=dash, title="50th percentile")
        title = f"{runs[i].get('label', '')}: layer {layer}, unit {unit}"
        charts.append(render(Chart(title, "step", "15th, 50th, 85th pct", [_diagnostics_layer(i, styles, [band], [line])], y_range=y_range)))
    return "".join(charts)


def _mean_over_layers(rows: list[dict], column: str) -> tuple[list[float], list[float]]:
    by_step: dict[float, list[float]] = {}
    for r in rows:
        value = r.get(column)
        if value is not None and math.isfinite(value):
            by_step.setdefault(float(r["step"]), []).append(float(value))
    steps = sorted(by_step)
    return steps, [statistics.fmean(by_step[s]) for s in steps]


def _group_series(runs, members: list[int], kind: str, column: str, select) -> tuple[list, list, list, list]:
    """A group's mean over its seeds of `column` (each seed's mean over the selected rows at a
    step) and the 95% band of that mean, as the learning curves have it."""
    curves = []
    for i in members:
        steps, values = _mean_over_layers([r for r in _rows(runs[i], kind) if select(r)], column)
        if steps:
            curves.append({"step": steps, "value": values})
    return _mean_band(curves, "value") if curves else ([], [], [], [])


def _series_attrs(g: int | None, members: list[int]) -> dict[str, str]:
    """A mean over seeds toggles with its group; a group's single run toggles as that run too."""
    if len(members) > 1:
        return {"class": "group", "data-group": str(g)}
    return {"class": "run", "data-run": str(members[0])} | ({"data-group": str(g)} if g is not None else {})


def _group_chart(runs, styles, grouped, kind: str, column: str, title: str, ylabel: str,
                 select=lambda r: True) -> str:
    """A line per seed group: its mean of `column` over seeds against step, with the band."""
    layers = []
    for g, members in grouped:
        steps, mean, low, high = _group_series(runs, members, kind, column, select)
        if steps:
            colour, dash, _ = styles[members[0]]
            label = runs[members[0]].get("group") or runs[members[0]].get("label", "")
            attrs = _series_attrs(g, members)
            layers.append(Layer(attrs, [Band(steps, low, high, colour)],
                                [Line(steps, mean, colour, 1.8, dash=dash, title=f"{label} (n = {len(members)})")]))
    return render(Chart(title, "step", ylabel, layers)) if layers else ""


def _bn_charts(runs, styles, grouped) -> str:
    return (_group_chart(runs, styles, grouped, "bn", "mean_gap", "mean gap, mean over BN layers", "|batch − moving mean|")
            + _group_chart(runs, styles, grouped, "bn", "variance_gap", "variance gap, mean over BN layers", "|batch − moving var|"))


def _ics_charts(runs, styles, grouped) -> str:
    layers = sorted({r["layer"] for _, members in grouped for i in members for r in _rows(runs[i], "ics")})
    charts = []
    for column, what in (("ics_l2", "ℓ2 distance"), ("ics_cosine", "cosine")):
        for layer in layers:
            charts.append(_group_chart(runs, styles, grouped, "ics", column, f"ICS {what}, layer {layer}", what,
                                       select=lambda r, layer=layer: r["layer"] == layer))
    return "".join(charts)


def _landscape_charts(runs, styles, grouped) -> str:
    """The loss range along the gradient (each group's mean of the minimum and of the maximum
    over seeds, the band between them), and the two smoothness measures as mean with band."""
    layers = []
    for g, members in grouped:
        steps, low, _, _ = _group_series(runs, members, "landscape", "loss_min", lambda r: True)
        steps_high, high, _, _ = _group_series(runs, members, "landscape", "loss_max", lambda r: True)
        if steps and steps == steps_high:
            colour, _, _ = styles[members[0]]
            attrs = _series_attrs(g, members)
            layers.append(Layer(attrs, [Band(steps, low, high, colour, 0.3)]))
    loss_range = render(Chart("loss range along the gradient, mean over seeds", "step", "loss", layers)) if layers else ""
    return (loss_range
            + _group_chart(runs, styles, grouped, "landscape", "grad_change_max",
                           "gradient predictiveness: max ‖Δ gradient‖", "max ‖Δ gradient‖")
            + _group_chart(runs, styles, grouped, "landscape", "beta_smoothness", "effective β-smoothness", "β"))


def _runs_table(data: dict, runs: list[dict], styles) -> str:
    """One row per run: compare's values for it, and its value of each differing config key."""
    if not runs:
        return ""
    keys = list(data.get("diff") or {})
    header = ["#", "run", "status", "final acc", "best acc", "steps", "s/epoch", *keys, "path"]
    rows = []
    for i, run in enumerate(runs):
        colour, dash, _ = styles[i]
        values, settings = run.get("values") or {}, run.get("settings") or {}
        cells = [
            f'<td class="num">{i + 1}</td>',
            f'<td data-field="label">{_swatch(colour, dash)}{escape_text(run.get("label", ""))}</td>',
            f'<td data-field="status">{_pill("status", run.get("status"))}'
            f'{" failed to learn" if run.get("failed_to_learn") else ""}</td>',
            *(_cell(key, values.get(key)) for key in ("final_test_accuracy", "best_test_accuracy")),
            _cell("steps", values.get("steps"), _count(values.get("steps"))),
            _cell("seconds_per_epoch", values.get("seconds_per_epoch")),
            *(_text_cell("config", _value_text(settings.get(key))) for key in keys),
            f'<td data-field="path"><code class="path">{escape_text(run.get("path", ""))}</code></td>',
        ]
        rows.append(f'<tr data-index="{i}">{"".join(cells)}</tr>')
    return _table(header, rows, "runs")


# --- page assets ---------------------------------------------------------------------

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --soft:#f6f8fa; --accent:#0969da;
  --green:#1a7f37; --green-bg:#dafbe1; --red:#cf222e; --red-bg:#ffebe9; --amber:#9a6700; --amber-bg:#fff8c5;
  --blue-bg:#ddf4ff; --grey-bg:#eaeef2; color-scheme: light; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg); background:#fff; font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", "Noto Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width:1180px; margin:0 auto; padding:24px 20px 48px; }
h1 { font-size:1.7em; margin:0 0 12px; letter-spacing:-0.01em; }
h2 { font-size:1.25em; margin:36px 0 12px; padding-bottom:6px; border-bottom:1px solid var(--line); }
h3 { font-size:1em; margin:22px 0 8px; color:var(--muted); font-weight:600; }
code { font:0.88em/1.4 ui-monospace, SFMono-Regular, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; margin:0; }
.facts dt { color:var(--muted); } .facts dd { margin:0; }
.inputs { margin:0; padding:0; list-style:none; }
nav { display:flex; flex-wrap:wrap; gap:6px; margin:18px 0 0; }
nav a { color:var(--accent); text-decoration:none; padding:3px 10px; border:1px solid var(--line);
  border-radius:999px; font-size:0.88em; }
nav a:hover { background:var(--soft); }
.table-wrap { overflow-x:auto; margin:8px 0 16px; border:1px solid var(--line); border-radius:6px; }
table { border-collapse:collapse; width:100%; font-size:0.9em; font-variant-numeric:tabular-nums; }
caption { caption-side:top; text-align:left; padding:8px 10px; color:var(--muted); font-size:0.92em;
  border-bottom:1px solid var(--line); background:var(--soft); }
th, td { padding:6px 10px; text-align:left; vertical-align:top; border-bottom:1px solid var(--line); }
thead th { background:var(--soft); font-weight:600; white-space:nowrap; }
tbody tr:last-child > * { border-bottom:none; }
tbody tr:hover { background:#fafbfc; }
td.num { text-align:right; white-space:nowrap; }
td.reading { min-width:14em; color:var(--muted); }
.statistics td[data-field=b], .statistics td[data-field=a] { min-width:10em; }
.statistics td[data-field=ci] { white-space:normal; min-width:7em; }
.pivot td.num { text-align:center; }
.config-diff code { background:var(--soft); padding:1px 6px; border-radius:4px; margin-right:4px; }
.pill { display:inline-block; padding:1px 9px; border-radius:999px; font-size:0.85em; font-weight:600;
  white-space:nowrap; border:1px solid transparent; }
.status-completed, .verdict-holds { color:var(--green); background:var(--green-bg); border-color:#aceebb; }
.status-diverged, .status-failed, .verdict-contradicted { color:var(--red); background:var(--red-bg); border-color:#ffcecb; }
.status-running, .status-interrupted, .verdict-inconclusive, .verdict-too_few_seeds {
  color:var(--amber); background:var(--amber-bg); border-color:#f5e0a0; }
.verdict-distinguishable { color:var(--accent); background:var(--blue-bg); border-color:#b6e3ff; }
.verdict-not_distinguishable, .status-unknown { color:var(--muted); background:var(--grey-bg); border-color:var(--line); }
.claims td[data-field=claim] { min-width:18em; }
.claims .name { display:block; color:var(--muted); }
.claims cite { display:block; color:var(--muted); font-size:0.9em; margin-top:2px; }
.claims cite::before { content:"Source: "; font-style:normal; }
.claims .claim-note { display:block; color:var(--amber); margin-top:2px; }
.direction { color:var(--muted); }
.path, .runs td[data-field=label] { white-space:nowrap; }
.runs td { padding-top:4px; padding-bottom:4px; }
.note { color:var(--muted); font-size:0.92em; margin:4px 0 8px; }
.warning { background:var(--amber-bg); border:1px solid #f5e0a0; border-radius:6px; padding:8px 12px; }
.excluded ul { margin:4px 0; }
.charts { display:grid; grid-template-columns:repeat(auto-fit, minmax(340px, 1fr)); gap:12px; }
.charts.small { grid-template-columns:repeat(auto-fill, minmax(280px, 1fr)); }
svg.chart { width:100%; height:auto; display:block; border:1px solid var(--line); border-radius:6px; background:#fff; }
svg.chart text { font-family:inherit; fill:var(--muted); font-size:11px; }
svg.chart text.title { fill:var(--fg); font-size:13px; font-weight:600; }
svg.chart text.label { font-size:12px; }
svg.chart .grid { stroke:#eaeef2; stroke-width:1; }
svg.chart .frame { fill:none; stroke:var(--line); }
.swatch { width:28px; height:10px; vertical-align:middle; margin-right:6px; }
.legend { margin:10px 0 0; font-size:0.88em; }
.legend ul { list-style:none; padding:0; margin:0; display:grid; gap:6px;
  grid-template-columns:repeat(auto-fill, minmax(260px, 1fr)); }
.legend li { border:1px solid var(--line); border-radius:6px; padding:6px 8px; }
.legend .n { color:var(--muted); margin-left:4px; white-space:nowrap; }
.legend .seeds { display:inline; margin-left:8px; color:var(--muted); font-size:0.92em; }
.legend .seeds summary { display:inline; cursor:pointer; color:var(--accent); }
.legend .seeds[open] > div { display:flex; flex-direction:column; gap:1px; margin-top:4px; }
.legend label { cursor:pointer; }
.legend input { margin:0 5px 0 0; vertical-align:middle; }
.toggle-all { margin:0 0 6px; }
html:not(.js) .legend input, html:not(.js) .toggle-all, html:not(.js) .legend .seeds { display:none; }
@media (max-width:640px) { main { padding:16px 10px 32px; } body { font-size:14px; }
  .facts { grid-template-columns:1fr; } .facts dt { margin-top:6px; } }
@media print {
  body { font-size:10.5pt; } main { max-width:none; padding:0; }
  nav, .legend input, .legend .seeds, .toggle-all { display:none; }
  .table-wrap { overflow:visible; border:none; }
  table { font-size:8.5pt; } th, td { padding:3px 5px; white-space:normal; min-width:0 !important; }
  thead th, td[data-field=ci] { white-space:normal; }
  .path { word-break:break-all; }
  tbody tr:hover { background:none; }
  section, .charts > svg, tr { break-inside:avoid; }
  h2 { break-after:avoid; }
  .pill { border-color:currentColor; print-color-adjust:exact; -webkit-print-color-adjust:exact; }
  svg.chart { print-color-adjust:exact; -webkit-print-color-adjust:exact; }
}
"""

# Show/hide runs and groups everywhere they are drawn. Without JavaScript the
# checkboxes stay hidden (CSS above) and every run is visible.
SCRIPT = """
(function () {
  document.documentElement.classList.add("js");
  var boxes = document.querySelectorAll("input[data-toggle]");
  var drawn = document.querySelectorAll("g[data-run], g[data-group]");
  function update() {
    var off = {};
    boxes.forEach(function (box) { if (!box.checked) off[box.dataset.toggle] = true; });
    drawn.forEach(function (g) {
      var hide = off["run:" + g.dataset.run] || off["group:" + g.dataset.group] ||
                 (off.seeds && g.classList.contains("seed"));
      g.style.display = hide ? "none" : "";
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", update); });
})();
"""
