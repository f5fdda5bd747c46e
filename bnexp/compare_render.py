"""`bnexp compare` on screen: Rich tables for the report `bnexp.compare` builds.

`run_compare` is the single entry point the CLI calls. The work (loading,
deltas, groups, statistics, text formats) lives in `bnexp.compare`; this module
only chooses the format, colours deltas and writes to the console it is given.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bnexp import compare as cmp
from bnexp.errors import UsageError

FORMATS = ("table", "json", "csv", "markdown")
VERDICT_STYLE = {1: "green", -1: "red", 0: ""}
STATUS_STYLE = {"completed": "green", "running": "cyan", "interrupted": "yellow",
                "diverged": "red", "failed": "red"}
# Off a terminal no screen limits the width, and a cut cell loses data.
UNLIMITED_WIDTH = 100_000


def run_compare(paths: list[str], *, all_keys: bool = False, threshold: float = 0.97,
                plot: str | None = None, fmt: str = "table", last: int = 1,
                console: Console | None = None) -> int:
    """Compare the runs under `paths` and write the report in `fmt`; returns exit code 0.

    Raises RunDirError (exit 2) when a path is missing, holds no run, or fewer
    than two runs are found; RunFileError (exit 1) for a corrupt run file;
    UsageError (exit 2) for a bad option value or an unwritable plot path.
    """
    _check_options(fmt, threshold, last, plot)
    console = console or Console()
    runs = cmp.load_runs(paths)
    comp = cmp.compare(runs, threshold=threshold, last=last, all_keys=all_keys)
    written = _write_plot(runs, plot) if plot else None
    if fmt == "json":
        console.out(cmp.to_json(comp, written), highlight=False)
    elif fmt == "csv":
        console.out(cmp.to_csv(comp), end="", highlight=False)
    elif fmt == "markdown":
        console.out(cmp.to_markdown(comp, curves=written is None, plot=written), end="",
                    highlight=False)
    else:
        render(comp, console, written)
    if written and fmt == "csv":
        # CSV on stdout has no place for a note; say where the figure went on stderr.
        Console(stderr=True).print(Text(f"Learning curves written to {written}"))
    return 0


def _check_options(fmt: str, threshold: float, last: int, plot: str | None) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if not 0 < threshold <= 1:
        raise UsageError(f"--threshold is a test accuracy in (0, 1], not {threshold}")
    if last < 1:
        raise UsageError(f"--last must be at least 1, not {last}")
    if plot is not None and Path(plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UsageError(f"--plot {plot}: name a .png, .pdf or .svg file")


def _write_plot(runs: list[cmp.Run], path: str) -> str:
    from bnexp.plots import plot_learning_curves  # imports matplotlib: only for --plot

    try:
        return str(plot_learning_curves(runs, Path(path)))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot write plot {path}: {e}") from e


def render(comp: cmp.Comparison, console: Console, plot: str | None = None) -> None:
    """The report as Rich tables: diff, metrics, seed groups, t-test verdict."""
    if comp.diff:
        _print(console, diff_table(comp))
    else:
        console.print(Text("The configs are identical."))
    _print(console, metrics_table(comp, curves=plot is None))
    if comp.groups:
        _print(console, _table("Seed groups (mean ± std)", *cmp.groups_table(comp)))
    if comp.ttest:
        console.print(Text(cmp.ttest_line(comp.ttest)))
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


def diff_table(comp: cmp.Comparison) -> Table:
    """One column per run; values unlike the baseline's in bold, so the eye finds them."""
    rows = [[Text(key)] + [Text(v, style="" if v == values[0] else "bold") for v in values]
            for key, values in comp.diff]
    return _table("Config diff", ["key"] + [r.label for r in comp.rows], rows)


def metrics_table(comp: cmp.Comparison, curves: bool) -> Table:
    """Metrics per run, each with its delta to the first run in green (better) or red (worse)."""
    header, _ = cmp.metrics_table(comp, curves)
    rows = []
    for row in comp.rows:
        cells = [_value_cell(c, row.values[c.key], row.deltas.get(c.key)) for c in cmp.COLUMNS]
        status = Text(row.run.status, style=STATUS_STYLE.get(row.run.status, ""))
        curve = [Text(row.curve, style="cyan")] if curves else []
        rows.append([Text(row.label), status] + cells + curve)
    return _table("Metrics (baseline: first run)", header, rows)


def _value_cell(column: cmp.Column, value: float | None, delta: cmp.Delta | None) -> Text:
    text = Text(cmp.format_value(column, value))
    delta_text = cmp.format_delta(column, delta)
    if delta_text:
        text.append(f" {delta_text}", style=VERDICT_STYLE[delta.verdict])
    return text
