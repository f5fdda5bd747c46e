"""`bnexp compare` on screen and in files: Rich tables, JSON, CSV and Markdown of a Comparison.

bnexp.compare builds the Comparison (rows, deltas, groups, the t-test); this module only
formats it: values and deltas as text, deltas coloured green (better) or red (worse).
"""

from __future__ import annotations

import csv
import io
import json

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bnexp.compare import ALPHA, COLUMNS, Column, Comparison, Delta, Group, Row, TTest, column, finite
from bnexp.present import markdown_table, number, sparklines, status
from bnexp.present.claims import claims_markdown, claims_tables

VERDICT_STYLE = {1: "green", -1: "red", 0: ""}
# Off a terminal no screen limits the width, and a cut cell loses data.
UNLIMITED_WIDTH = 100_000


def show(comp: Comparison, fmt: str, console: Console, plot: str | None = None,
         claims: list[dict] | None = None) -> None:
    """Write the report in `fmt` (table, json, csv or markdown); `plot` names the
    learning-curves figure, when one was written; `claims` are a sweep's verdicts
    (bnexp.sweep.claims_for), shown apart from the comparisons (not in CSV, which is
    the metrics table)."""
    if fmt == "json":
        doc = json.loads(to_json(comp, plot))
        console.out(json.dumps(doc | {"claims": claims}, indent=2, ensure_ascii=False), highlight=False)
    elif fmt == "csv":
        console.out(to_csv(comp), end="", highlight=False)
        if plot:  # CSV on stdout has no place for a note; say where the figure went on stderr
            Console(stderr=True).print(Text(f"Learning curves written to {plot}"))
    elif fmt == "markdown":
        console.out(to_markdown(comp, with_curves=plot is None, plot=plot), end="", highlight=False)
        if claims:
            console.out("\n" + claims_markdown(claims), highlight=False)
    else:
        render(comp, console, plot)
        for table in claims_tables(claims or []):
            _print(console, table)


# --- text cells, shared by every format ---------------------------------------------------


def format_value(col: Column, value: float | None) -> str:
    return number(value, col.kind)


def format_delta(col: Column, d: Delta | None) -> str:
    """'+0.0042', '-500' or '×0.83'; empty for the baseline or when undefined."""
    if d is None or d.value is None:
        return ""
    if col.delta == "ratio":
        return f"×{d.value:.2f}"
    if col.kind == "count":
        return f"{d.value:+.0f}"
    return f"{d.value:+.4f}"


def format_group_stat(group: Group, key: str) -> str:
    """'0.9785 ± 0.0012', or the mean alone when one run cannot give a spread."""
    mean, std = group.mean(key), group.std(key)
    text = format_value(column(key), mean)
    return text if std is None else f"{text} ± {format_value(column(key), std)}"


def ttest_sentence(t: TTest) -> str:
    if t.distinguishable is None:
        return "cannot be tested: neither group varies across seeds"
    if t.distinguishable:
        return f"distinguishable from seed noise (p = {t.p:.2g} < {ALPHA:g})"
    return f"not distinguishable from seed noise (p = {t.p:.2g} ≥ {ALPHA:g})"


def ttest_line(t: TTest) -> str:
    return f"Final accuracy, {t.a} vs {t.b} (Welch t = {t.t:.3g}): {ttest_sentence(t)}."


def curves(comp: Comparison) -> list[str]:
    """A test-accuracy sparkline per run, on one scale."""
    return sparklines([[m["test_accuracy"] for m in r.run.metrics] for r in comp.rows])


def metrics_table(comp: Comparison, with_curves: bool) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the metrics table ('value (delta)')."""
    header = ["run", "status"] + [comp.label(c) for c in COLUMNS] + (["test acc"] if with_curves else [])
    lines = curves(comp) if with_curves else [None] * len(comp.rows)
    rows = []
    for row, curve in zip(comp.rows, lines):
        cells = [_with_delta(c, row.values[c.key], row.deltas.get(c.key)) for c in COLUMNS]
        rows.append([row.label, row.run.status] + cells + ([curve] if with_curves else []))
    return header, rows


def _with_delta(col: Column, value: float | None, d: Delta | None) -> str:
    delta_text = format_delta(col, d)
    text = format_value(col, value)
    return f"{text} ({delta_text})" if delta_text else text


def groups_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the seed-group table: mean ± sample std per group."""
    header = ["group", "n", "final acc", "best acc", f"steps to {comp.threshold:g}"]
    rows = [[g.label, str(len(g.rows)), format_group_stat(g, "final_test_accuracy"),
             format_group_stat(g, "best_test_accuracy"), _reached(g)]
            for g in comp.groups]
    return header, rows


def _reached(g: Group) -> str:
    """Mean steps to threshold over the runs that reached it, and how many did."""
    reached = len(g.numbers("steps_to_threshold"))
    text = format_value(column("steps_to_threshold"), g.mean("steps_to_threshold"))
    return text if reached in (0, len(g.rows)) else f"{text} ({reached}/{len(g.rows)} reached)"


# --- Rich tables ----------------------------------------------------------------------


def render(comp: Comparison, console: Console, plot: str | None = None) -> None:
    """The report as Rich tables: diff, metrics, seed groups, t-test verdict."""
    if comp.diff:
        _print(console, diff_table(comp))
    else:
        console.print(Text("The configs are identical."))
    _print(console, rich_metrics_table(comp, with_curves=plot is None))
    if comp.groups:
        _print(console, _table("Seed groups (mean ± std)", *groups_table(comp)))
    if comp.ttest:
        console.print(Text(ttest_line(comp.ttest)))
    if plot:
        console.print(Text(f"Learning curves written to {plot}"))


def _print(console: Console, renderable: RenderableType) -> None:
    """Print whole cells: off a terminal, widen the console to the table's natural width."""
    if not console.is_terminal:
        options = console.options.update_width(UNLIMITED_WIDTH)
        console.width = max(console.width, Measurement.get(console, options, renderable).maximum)
    console.print(renderable)


def _table(title: str, header: list[str], rows: list[list[str | Text]]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    return table


def diff_table(comp: Comparison) -> Table:
    """One column per run; values unlike the baseline's in bold, so the eye finds them."""
    rows = [[Text(key)] + [Text(v, style="" if v == values[0] else "bold") for v in values]
            for key, values in comp.diff]
    return _table("Config diff", ["key"] + [r.label for r in comp.rows], rows)


def rich_metrics_table(comp: Comparison, with_curves: bool) -> Table:
    """Metrics per run, each with its delta to the first run in green (better) or red (worse)."""
    header, _ = metrics_table(comp, with_curves)
    lines = curves(comp) if with_curves else [None] * len(comp.rows)
    rows = []
    for row, curve in zip(comp.rows, lines):
        cells = [_value_cell(c, row.values[c.key], row.deltas.get(c.key)) for c in COLUMNS]
        rows.append([Text(row.label), status(row.run.status)] + cells + ([Text(curve, style="cyan")] if with_curves else []))
    return _table("Metrics (baseline: first run)", header, rows)


def _value_cell(col: Column, value: float | None, d: Delta | None) -> Text:
    text = Text(format_value(col, value))
    delta_text = format_delta(col, d)
    if delta_text:
        text.append(f" {delta_text}", style=VERDICT_STYLE[d.verdict])
    return text


# --- JSON, CSV, Markdown ------------------------------------------------------------------


def to_json(comp: Comparison, plot: str | None = None) -> str:
    """One JSON object: runs, diff, groups, ttest; non-finite numbers become null."""
    doc = {
        "threshold": comp.threshold,
        "last": comp.last,
        "runs": [_run_json(r) for r in comp.rows],
        "diff": {key: dict(zip((r.label for r in comp.rows), vs)) for key, vs in comp.diff},
        "groups": [_group_json(g) for g in comp.groups],
        "ttest": _ttest_json(comp.ttest),
        "plot": plot,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _num(x):
    return x if finite(x) else None


def _run_json(row: Row) -> dict:
    return {
        "label": row.label,
        "path": str(row.run.path),
        "status": row.run.status,
        "values": {k: _num(v) for k, v in row.values.items()},
        "deltas": {k: {"kind": column(k).delta, "value": _num(d.value), "verdict": d.verdict}
                   for k, d in row.deltas.items()},
        "config": row.run.config,
    }


def _group_json(g: Group) -> dict:
    stats = {k: {"mean": _num(g.mean(k)), "std": _num(g.std(k)), "n": len(g.numbers(k))}
             for k in ("final_test_accuracy", "best_test_accuracy", "steps_to_threshold")}
    return {"label": g.label, "n": len(g.rows), "runs": [r.label for r in g.rows], **stats}


def _ttest_json(t: TTest | None) -> dict | None:
    if t is None:
        return None
    return {"groups": [t.a, t.b], "metric": "final_test_accuracy", "t": _num(t.t),
            "p": _num(t.p), "alpha": ALPHA, "verdict": ttest_sentence(t)}


def to_csv(comp: Comparison) -> str:
    """The metrics table, one row per run: raw values, then deltas (`_delta`/`_ratio`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "path", "status"] + [c.key for c in COLUMNS]
                    + [f"{c.key}_{c.delta if c.delta == 'ratio' else 'delta'}" for c in COLUMNS])
    for row in comp.rows:
        d = [row.deltas[c.key].value if row.deltas else None for c in COLUMNS]
        writer.writerow([row.label, row.run.path, row.run.status]
                        + [_cell(row.values[c.key]) for c in COLUMNS] + [_cell(x) for x in d])
    return out.getvalue()


def _cell(x) -> str:
    return "" if x is None else f"{x:.10g}"  # full precision, without float noise


def to_markdown(comp: Comparison, *, with_curves: bool = True, plot: str | None = None) -> str:
    """Pipe tables for the diff, the metrics and the groups, to paste into an issue."""
    labels = [r.label for r in comp.rows]
    parts = [f"### Config diff\n\n{markdown_table(['key'] + labels, [[k] + vs for k, vs in comp.diff])}"
             if comp.diff else "### Config diff\n\nThe configs are identical."]
    parts.append("### Metrics (baseline: first run)\n\n" + markdown_table(*metrics_table(comp, with_curves)))
    if comp.groups:
        parts.append("### Seed groups\n\n" + markdown_table(*groups_table(comp)))
    if comp.ttest:
        parts.append(ttest_line(comp.ttest))
    if plot:
        parts.append(f"![learning curves]({plot})")
    return "\n\n".join(parts) + "\n"

