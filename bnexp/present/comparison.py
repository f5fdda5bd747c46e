"""`bnexp compare` on screen and in files: Rich tables, JSON, CSV and Markdown of a Comparison.

bnexp.compare builds the Comparison (rows, deltas, groups, their statistics, the pivot);
this module only formats it: values and deltas as text, deltas coloured green (better)
or red (worse) only where the run's seed group is distinguishable from the baseline's.
"""

from __future__ import annotations

import csv
import io
import json

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bnexp.compare import COLUMNS, METRIC, Column, Comparison, Delta, Group, GroupComparison, Pivot, Row, column, finite
from bnexp.present import console as present_console, markdown_table, number, sparklines, status
from bnexp.present.claims import claims_markdown, claims_tables
from bnexp.metrics import FAILED_TO_LEARN
from bnexp.status import Status

VERDICT_STYLE = {1: "green", -1: "red", 0: ""}
# Off a terminal no screen limits the width, and a cut cell loses data.
UNLIMITED_WIDTH = 100_000
DIFF_COLUMNS = 8  # runs beyond which the config diff folds to key → values
DIFF_VALUES = 12  # values of one key shown when folded
GROUP_KEYS = ("final_test_accuracy", "best_test_accuracy", "final_train_set_accuracy", "generalization_gap",
              "steps_to_threshold")


def show(comp: Comparison, fmt: str, console: Console, plot: str | None = None,
         claims: list[dict] | None = None) -> None:
    """Write the report in `fmt` (table, json, csv or markdown); `plot` names the
    learning-curves figure, when one was written; `claims` are a sweep's verdicts
    (bnexp.sweep.claims_for), shown apart from the comparisons (not in CSV, which is
    the metrics table, or with a pivot the pivot)."""
    if fmt == "json":
        console.out(to_json(comp, plot, claims), highlight=False)
    elif fmt == "csv":
        text = "\n".join(pivot_csv(p) for p in comp.pivots or [comp.pivot]) if comp.pivot else to_csv(comp)
        console.out(text, end="", highlight=False)
        if plot:  # CSV on stdout has no place for a note; say where the figure went on stderr
            present_console(stderr=True).print(Text(f"Learning curves written to {plot}"))
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


def metric_title(name: str, last: int = 1) -> str:
    """'Final accuracy' for the default metric, else the metric's name and its `last`."""
    if name == METRIC:
        return "Final accuracy" + (f" (last {last})" if last > 1 else "")
    uses_last = column(name).ref.metric.uses_last
    return name + (f" (last {last})" if uses_last and last > 1 else "")


def comparison_line(c: GroupComparison, last: int = 1) -> str:
    """`Final accuracy, B vs A: difference …, Holm-adjusted p = …: distinguishable from seed noise (runs counted …).`"""
    return f"{metric_title(c.metric, last)}, {c.group.label} vs {c.baseline.label}: {c.sentence()}."


def comparison_lines(comp: Comparison) -> list[str]:
    lines = [comparison_line(c, comp.last) for c in comp.comparisons]
    if len(comp.refs) > 1 and lines:
        lines.insert(0, "Each metric's comparisons on one test set are one Holm family, adjusted apart from"
                        " the other metrics': " + ", ".join(r.name for r in comp.refs) + ".")
    return lines


def warning_lines(comp: Comparison) -> list[str]:
    """The warnings: runs that could not be read, test sets that can't be compared, and
    runs from different hardware."""
    hardware = [f"Hardware: {comp.hardware_note}."] if comp.hardware_note else []
    unread = [f"Not counted: {why}." for _, why in comp.unreadable]
    return unread + [f"Not comparable: {line}." for line in comp.not_comparable] + hardware


def curves(comp: Comparison) -> list[str]:
    """A test-accuracy sparkline per run, on one scale."""
    return sparklines([[m["test_accuracy"] for m in r.run.metrics] for r in comp.rows])


def metrics_title(comp: Comparison) -> str:
    return "Metrics (baseline: first run" + (" of each test set)" if comp.families > 1 else ")")


def metrics_table(comp: Comparison, with_curves: bool) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the metrics table ('value (delta)')."""
    columns = [*COLUMNS, *comp.extra_columns]
    header = ["run", "status"] + [comp.label(c) for c in columns] + (["test acc"] if with_curves else [])
    lines = curves(comp) if with_curves else [None] * len(comp.rows)
    rows = []
    for row, curve in zip(comp.rows, lines):
        cells = [_with_delta(c, row.values.get(c.key), row.deltas.get(c.key)) for c in columns]
        rows.append([row.label, run_status(row)] + cells + ([curve] if with_curves else []))
    return header, rows


def run_status(row: Row) -> str:
    """The run's status, and 'failed to learn' for a completed run that did."""
    return f"{Status.COMPLETED}, failed to learn" if row.run.outcome == FAILED_TO_LEARN else row.run.status


def _with_delta(col: Column, value: float | None, d: Delta | None) -> str:
    delta_text = format_delta(col, d)
    text = format_value(col, value)
    return f"{text} ({delta_text})" if delta_text else text


def show_groups(comp: Comparison) -> bool:
    """The group table says something only when some group holds more than one run."""
    return any(len(g.rows) > 1 for g in comp.groups)


def groups_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the seed-group table: n distinct seeds, mean ± sample std, what was left out."""
    extra = [r.name for r in comp.refs if r.name not in GROUP_KEYS]
    header = ["group", "n", "final acc", "best acc", "train-set acc", "train−test gap",
              f"steps to {comp.threshold:g}", *extra, "diverged", "failed to learn", "not counted"]
    rows = [[g.label, str(g.n), *(format_group_stat(g, k) for k in GROUP_KEYS[:4]), _reached(g),
             *(format_group_stat(g, k) for k in extra), str(g.n_diverged), str(g.n_failed),
             "; ".join(dict.fromkeys(f"{e.row.label} ({e.why})" for s in g.samples.values() for e in s.excluded))]
            for g in comp.groups]
    return header, rows


def _reached(g: Group) -> str:
    """Mean steps to threshold over the runs that reached it, and how many did."""
    reached = len(g.numbers("steps_to_threshold"))
    text = format_value(column("steps_to_threshold"), g.mean("steps_to_threshold"))
    return text if reached in (0, g.n) else f"{text} ({reached}/{g.n} reached)"


def pivot_table(p: Pivot) -> tuple[list[str], list[list[str]]]:
    """Header and cells: 'mean ± std (n)' of the metric per grid cell, '—' where none ran;
    'mean ± std: k of n, d diverged' where not every run is counted."""
    name = "final acc" if p.metric == METRIC else p.metric
    header = [*p.row_keys, *([f"{p.column_key}={v}" for v in p.column_values] if p.column_key else [name])]
    rows = [[*values, *(pivot_cell(g, p.metric) for g in cells)] for values, cells in zip(p.row_values, p.cells)]
    return header, rows


def pivot_cell(g: Group | None, metric: str = METRIC) -> str:
    """'0.9785 ± 0.0012 (3)', or '0.0940: 1 of 3, 2 diverged' when runs are not counted."""
    if g is None or not g.rows:
        return "—"
    s = g.sample(metric)
    value = format_group_stat(g, metric) if s.n else "—"
    if s.n == g.n_seeds and not g.failures():
        return f"{value} ({s.n})"
    details = [f"{s.n} of {g.n_seeds}", g.failures()]
    return f"{value}: " + ", ".join(d for d in details if d)


def pivot_title(p: Pivot, last: int = 1) -> str:
    return f"{'Final test accuracy' if p.metric == METRIC else metric_title(p.metric, last)}, mean ± std (n seeds)"


PIVOT_TITLE = "Final test accuracy, mean ± std (n seeds)"


# --- Rich tables ----------------------------------------------------------------------


def render(comp: Comparison, console: Console, plot: str | None = None) -> None:
    """The report as Rich tables: diff, metrics, seed groups, comparisons; or, with a pivot,
    the pivot and the comparisons."""
    if comp.pivot:
        for p in comp.pivots or [comp.pivot]:
            _print(console, _table(pivot_title(p, comp.last), *pivot_table(p)))
    else:
        if comp.diff:
            _print(console, diff_table(comp))
        else:
            console.print(Text("The configs are identical."))
        _print(console, rich_metrics_table(comp, with_curves=plot is None))
        if show_groups(comp):
            _print(console, _table("Seed groups (mean ± std over distinct seeds)", *groups_table(comp)))
    # One line each, never wrapped by us: readers copy these sentences whole.
    for line in warning_lines(comp):
        console.print(Text(line, style="yellow"), soft_wrap=True)
    for line in comparison_lines(comp):
        console.print(Text(line), soft_wrap=True)
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
    """One column per run, values unlike the baseline's in bold, so the eye finds them; past
    DIFF_COLUMNS runs, folded to one row per key with its values (diff_columns)."""
    header, rows = diff_columns(comp)
    if len(header) == 2:
        return _table("Config diff", header, rows)
    styled = [[Text(key)] + [Text(v, style="" if v == values[0] else "bold") for v in values] for key, *values in rows]
    return _table("Config diff", header, styled)


def diff_columns(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """The config diff as a table: a column per run, or, for more than DIFF_COLUMNS runs (a
    60-run sweep made lines of 9,753 characters), key → its values, each with its number of
    runs, in the order the runs first show them."""
    if len(comp.rows) <= DIFF_COLUMNS:
        return ["key"] + [r.label for r in comp.rows], [[key, *values] for key, values in comp.diff]
    folded = []
    for key, values in comp.diff:
        counts = {v: values.count(v) for v in dict.fromkeys(values)}
        shown = [f"{v} ({n} run{'s' if n > 1 else ''})" for v, n in list(counts.items())[:DIFF_VALUES]]
        more = len(counts) - DIFF_VALUES
        folded.append([key, ", ".join(shown) + (f", and {more} more (--format json lists each run's)" if more > 0 else "")])
    return ["key", f"values over {len(comp.rows)} runs"], folded


def rich_metrics_table(comp: Comparison, with_curves: bool) -> Table:
    """Metrics per run with their deltas, coloured where the run's group is distinguishable."""
    header, _ = metrics_table(comp, with_curves)
    lines = curves(comp) if with_curves else [None] * len(comp.rows)
    rows = []
    for row, curve in zip(comp.rows, lines):
        cells = [_value_cell(c, row) for c in [*COLUMNS, *comp.extra_columns]]
        state = status(row.run.status)
        if row.run.outcome == FAILED_TO_LEARN:
            state.append(", failed to learn", style="red")
        rows.append([Text(row.label), state] + cells + ([Text(curve, style="cyan")] if with_curves else []))
    return _table(metrics_title(comp), header, rows)


def _value_cell(col: Column, row: Row) -> Text:
    d = row.deltas.get(col.key)
    text = Text(format_value(col, row.values.get(col.key)))
    delta_text = format_delta(col, d)
    if delta_text:
        text.append(f" {delta_text}", style=VERDICT_STYLE[d.verdict] if row.distinguishable else "")
    return text


# --- JSON, CSV, Markdown ------------------------------------------------------------------


def to_json(comp: Comparison, plot: str | None = None, claims: list[dict] | None = None) -> str:
    """One JSON object (docs/comparing.md: "Comparing runs"); non-finite numbers become null."""
    doc = {
        "threshold": comp.threshold,
        "last": comp.last,
        "metrics": [r.name for r in comp.refs],
        "baseline": comp.rows[0].label,
        "baseline_groups": comp.baselines,
        "runs": [_run_json(i, r, comp) for i, r in enumerate(comp.rows)],
        "diff": {key: dict(zip((r.label for r in comp.rows), vs)) for key, vs in comp.diff},
        "groups": [_group_json(g) for g in comp.groups],
        "comparisons": [_clean(c.to_dict()) for c in comp.comparisons],
        "not_comparable": comp.not_comparable,
        "hardware_note": comp.hardware_note,
        "not_counted": [{"path": path, "why": why} for path, why in comp.unreadable],
        "pivot": _pivot_json(comp.pivot) if comp.pivot else None,
        "pivots": [_pivot_json(p) for p in comp.pivots or ([comp.pivot] if comp.pivot else [])],
        "plot": plot,
        "claims": claims,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def json_doc(comp: Comparison, plot: str | None = None, claims: list[dict] | None = None) -> dict:
    """What `compare --format json` prints, read back from its text: a caller holds exactly
    what a reader of that output gets (`bnexp report` shows it)."""
    return json.loads(to_json(comp, plot, claims))


def _num(x):
    return x if finite(x) else None


def _clean(entry: dict) -> dict:
    return {k: _num(v) if isinstance(v, float) else v for k, v in entry.items()}


def _run_json(index: int, row: Row, comp: Comparison) -> dict:
    return {
        "label": row.label,
        "path": str(row.run.path),
        "status": row.run.status,
        "failed_to_learn": row.run.outcome == FAILED_TO_LEARN,
        "group": row.group,
        "test_set": row.run.test_set,
        "settings": {key: values[index] for key, values in comp.diff},  # the differing config keys
        "values": {k: _num(v) for k, v in row.values.items()},
        "deltas": {k: {"kind": column(k).delta, "value": _num(d.value), "verdict": d.verdict}
                   for k, d in row.deltas.items()},
        "config": row.run.config,
    }


def _group_json(g: Group) -> dict:
    stats = {k: {"mean": _num(g.mean(k)), "std": _num(g.std(k)), "n": len(g.numbers(k))} for k in GROUP_KEYS}
    samples = {k: {"mean": _num(g.mean(k)), "std": _num(g.std(k)), "n": s.n, "censored": s.censored,
                   "not_counted": [{"run": e.row.label, "path": str(e.row.run.path), "why": e.why} for e in s.excluded]}
               for k, s in g.samples.items()}
    first = g.primary.ref.name
    return {"label": g.label, "test_set": g.test_set, "runs": [r.label for r in g.used], "n": g.n,
            "n_runs": g.n_runs, "n_diverged": g.n_diverged, "n_failed": g.n_failed,
            "metric": first, "mean": _num(g.mean(first)), "std": _num(g.std(first)), "metrics": samples,
            "duplicates": [{"run": e.row.label, "why": e.why} for e in g.duplicates],
            "excluded": [{"run": e.row.label, "path": str(e.row.run.path), "why": e.why} for e in g.excluded],
            **stats}


def _pivot_json(p: Pivot) -> dict:
    def cell(g: Group | None) -> dict | None:
        return None if g is None else {"group": g.label, "mean": _num(g.mean(p.metric)), "std": _num(g.std(p.metric)),
                                       "n": g.sample(p.metric).n, "n_runs": g.n_runs, "n_diverged": g.n_diverged,
                                       "n_failed": g.n_failed, "text": pivot_cell(g, p.metric)}

    return {"metric": p.metric, "row_keys": p.row_keys, "column_key": p.column_key,
            "columns": p.column_values if p.column_key else [],
            "rows": [{"values": dict(zip(p.row_keys, values)), "cells": [cell(g) for g in cells]}
                     for values, cells in zip(p.row_values, p.cells)]}


def to_csv(comp: Comparison) -> str:
    """One row per run: its group, the differing config keys, raw values, then deltas (`_delta`/`_ratio`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [key for key, _ in comp.diff]
    columns = [*COLUMNS, *comp.extra_columns]
    writer.writerow(["run", "path", "status", "failed_to_learn", "group"] + keys + [c.key for c in columns]
                    + [f"{c.key}_{c.delta if c.delta == 'ratio' else 'delta'}" for c in columns])
    for i, row in enumerate(comp.rows):
        d = [row.deltas[c.key].value if row.deltas else None for c in columns]
        writer.writerow([row.label, row.run.path, row.run.status, int(row.run.outcome == FAILED_TO_LEARN), row.group]
                        + [vs[i] for _, vs in comp.diff]
                        + [_cell(row.values.get(c.key)) for c in columns] + [_cell(x) for x in d])
    return out.getvalue()


def pivot_csv(p: Pivot) -> str:
    """The pivot, one line per row of grid values: mean, std, n (counted), n_runs,
    n_diverged and n_failed per column value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [f"{p.column_key}={v}" if p.column_key else p.metric for v in p.column_values]
    stat_names = ("mean", "std", "n", "n_runs", "n_diverged", "n_failed")
    writer.writerow(p.row_keys + [f"{name} {stat}" for name in names for stat in stat_names])
    for values, cells in zip(p.row_values, p.cells):
        stats = [x for g in cells for x in ((_cell(g.mean(p.metric)), _cell(g.std(p.metric)), g.sample(p.metric).n,
                                             g.n_runs, g.n_diverged, g.n_failed) if g else ("", "", 0, 0, 0, 0))]
        writer.writerow([*values, *stats])
    return out.getvalue()


def _cell(x) -> str:
    return "" if x is None else f"{x:.10g}"  # full precision, without float noise


def to_markdown(comp: Comparison, *, with_curves: bool = True, plot: str | None = None) -> str:
    """Pipe tables for the diff, the metrics and the groups (or the pivot), to paste into an issue."""
    if comp.pivot:
        parts = [f"### {pivot_title(p, comp.last)}\n\n" + markdown_table(*pivot_table(p))
                 for p in comp.pivots or [comp.pivot]]
    else:
        parts = [f"### Config diff\n\n{markdown_table(*diff_columns(comp))}"
                 if comp.diff else "### Config diff\n\nThe configs are identical."]
        parts.append(f"### {metrics_title(comp)}\n\n" + markdown_table(*metrics_table(comp, with_curves)))
        if show_groups(comp):
            parts.append("### Seed groups\n\n" + markdown_table(*groups_table(comp)))
    lines = warning_lines(comp) + comparison_lines(comp)
    if lines:
        parts.append("\n".join(f"- {line}" for line in lines))
    if plot:
        parts.append(f"![learning curves]({plot})")
    return "\n\n".join(parts) + "\n"

