"""`bnexp compare` on screen and in files: Rich tables, JSON, CSV and Markdown of a Comparison.

bnexp.compare builds the Comparison (rows, deltas, groups, their statistics, the pivot);
this module only formats it: values and deltas as text, deltas coloured green (better)
or red (worse) only where the run's seed group is distinguishable from the baseline's.
The text cells every format shares are bnexp.present.comparison_text's; JSON, CSV and
Markdown are bnexp.present.comparison_files'; both are importable from here too.
"""

from __future__ import annotations

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bnexp.compare import COLUMNS, Column, Comparison, Row
from bnexp.metrics import FAILED_TO_LEARN
from bnexp.present import console as present_console, status
from bnexp.present.claims import claims_markdown, claims_tables
from bnexp.present.comparison_files import json_doc, pivot_csv, to_csv, to_json, to_markdown
from bnexp.present.comparison_text import (DIFF_COLUMNS, DIFF_VALUES, GROUP_KEYS, PIVOT_TITLE, comparison_line,
                                           comparison_lines, curves, diff_columns, format_delta, format_group_stat,
                                           format_value, groups_table, metric_title, metrics_table, metrics_title,
                                           pivot_cell, pivot_table, pivot_title, run_status, show_groups,
                                           warning_lines)

VERDICT_STYLE = {1: "green", -1: "red", 0: ""}
# Off a terminal no screen limits the width, and a cut cell loses data.
UNLIMITED_WIDTH = 100_000

__all__ = ["COLUMNS", "DIFF_COLUMNS", "DIFF_VALUES", "GROUP_KEYS", "PIVOT_TITLE", "comparison_line", "comparison_lines",
           "curves", "diff_columns", "diff_table", "format_delta", "format_group_stat", "format_value", "groups_table",
           "json_doc", "metric_title", "metrics_table", "metrics_title", "pivot_cell", "pivot_csv", "pivot_table",
           "pivot_title", "render", "rich_metrics_table", "run_status", "show", "show_groups", "to_csv", "to_json",
           "to_markdown", "warning_lines"]


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
