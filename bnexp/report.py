"""One self-contained HTML page that shows a study: `bnexp report`'s renderer.

The page opens from a disk or an e-mail attachment and looks the same: no server,
no network, no external script, style sheet, font or image, and no "http://" or
"https://" anywhere in the file (user text that holds one is written with its colon
as a character reference). It is rendered by Jinja2 with autoescaping on from
bnexp/report_assets (the template, its style sheet and its script, package data),
the style sheet and script inlined. Plots are inline SVG built by bnexp.report_charts;
a few lines of inline JavaScript show or hide single runs, and without JavaScript every
run stays visible. Nothing here imports TensorFlow.

This module only lays out. Its input is a bnexp.report_data.ReportData, filled from run
directories and compare's analysis; it computes no statistic (the band around a seed
group's mean curve is bnexp.bands.seed_band's, as `compare --plot` draws it). Every
section but the header is optional: an empty one is left out.

Every number shown in a table also sits in its cell's `data-value` attribute as
Python's `repr` of the input (shortest round-trip form), so a reader or a test can
recover it exactly; pivot cells carry `data-mean`, `data-std` and `data-n`, CI cells
`data-low` and `data-high`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jinja2
from markupsafe import Markup

from bnexp.bands import GREY
from bnexp.formats import MISSING, measured, p_value, word
from bnexp.report_charts import curve_charts, diagnostics_charts, group_views, run_styles
from bnexp.report_data import ReportData
from bnexp.rundir.guard import write_atomic
from bnexp.svgchart import escape_text

SECTIONS = (("config", "Config keys that differ"), ("pivots", "By grid value"), ("curves", "Learning curves"),
            ("statistics", "Statistics"), ("claims", "Claims"), ("diagnostics", "Diagnostics"), ("runs", "Runs"))


def render_html(data: ReportData) -> str:
    """The whole report page for `data` as one HTML string."""
    groups = group_views(data)
    styles = run_styles(data.runs, groups)
    curves = curve_charts(data.runs, groups, styles)
    diagnostics = diagnostics_charts(data.runs, groups, styles)
    statuses: dict[str, int] = {}
    for run in data.runs:
        statuses[run.status or "unknown"] = statuses.get(run.status or "unknown", 0) + 1
    families: dict[str, list] = {}
    for i, claim in enumerate(data.claims):
        families.setdefault(str(claim.family or MISSING), []).append((i, claim))
    present = {"config": data.diff, "pivots": data.pivots, "curves": curves,
               "statistics": data.comparisons or data.not_comparable or data.hardware_note,
               "claims": data.claims, "diagnostics": diagnostics, "runs": data.runs}
    env = _environment()
    return env.get_template("report.html.j2").render(
        data=data, groups=groups, styles=styles, curves=curves, diagnostics=diagnostics, statuses=statuses,
        families=list(families.items()), sections=[(key, title) for key, title in SECTIONS if present[key]],
        diff=[(key, list(dict.fromkeys(_shown(v) for v in by_run.values()))) for key, by_run in data.diff.items()],
        baselines=list(dict.fromkeys(str(c.a) for c in data.comparisons)),
        excluded=[(c, e) for c in data.comparisons for e in c.excluded],
        loose=[i for i, style in enumerate(styles) if style.group is None], grey=GREY, missing=MISSING,
        css=Markup(_asset("report.css")), script=Markup(_asset("report.js")),
    ) + "\n"


def write_report(data: ReportData, path: str | Path) -> Path:
    """Render `data` to `path`, written whole or not at all (rundir.write_atomic)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    # write_atomic's temporary file is created exclusively, never through a link planted beside `out`.
    write_atomic(out, render_html(data))
    return out


@functools.cache
def _environment() -> jinja2.Environment:
    """Jinja2 over bnexp/report_assets, autoescaping every value it writes (escape_text's rule:
    HTML-escaped, and no URL scheme spelled out)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("bnexp", "report_assets"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined,
                             finalize=lambda value: value if isinstance(value, Markup) else Markup(escape_text(value)))
    env.filters.update(measured=measured, signed=functools.partial(measured, signed=True), p_value=p_value, word=word,
                       exact=_exact, count=_count, shown=_shown)
    env.globals.update(pivot_header=_pivot_header)
    return env


@functools.cache
def _asset(name: str) -> str:
    return _environment().loader.get_source(_environment(), name)[0]


def _exact(value) -> str:
    """A number as an attribute value that reads back exactly (repr round-trips a float); "" for None."""
    return "" if value is None else repr(value)


def _count(value) -> str:
    return f"{int(value):,}" if value is not None and math.isfinite(value) else MISSING


def _shown(value) -> str:
    return MISSING if value is None else str(value)


def _pivot_header(pivot) -> list[str]:
    columns = [f"{pivot.column_key}={v}" for v in pivot.columns] if pivot.column_key else [pivot.metric]
    return [*pivot.row_keys, *columns]
