"""Presentation: Rich consoles, the training progress bar, and result tables.

The work (train, eval) never prints: it calls a Reporter, and this module draws. Output
that is not a terminal gets plain lines and a wide console, so no table cell is cut.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bnexp.train import Reporter

WIDE = 240  # a pipe or file has no width: wide enough that no table cell needs cutting


def console(stderr: bool = False) -> Console:
    """A console that folds nothing away when its output is not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return Console(file=stream, width=None if terminal else WIDE, soft_wrap=not terminal)


class TrainDisplay(Reporter):
    """A live bar (loss, accuracy, examples/s, ETA) on a terminal; one line per evaluation elsewhere."""

    def __init__(self, out: Console, quiet: bool = False):
        self.out, self.quiet = out, quiet
        self.live = out.is_terminal and not quiet
        self.bar: Progress | None = None

    def start(self, total_steps: int, start_step: int) -> None:
        if not self.live:
            return
        self.bar = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[speed]} ex/s"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.out,
            refresh_per_second=4,
        )
        self.task = self.bar.add_task("train", total=total_steps, completed=start_step, loss="-", acc="-", speed="-")
        self.bar.start()

    def progress(self, step: int, loss: float, accuracy: float, examples_per_second: float) -> None:
        if self.bar:
            self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", acc=f"{accuracy:.4f}", speed=f"{examples_per_second:,.0f}")

    def evaluated(self, row: dict) -> None:
        if self.quiet:
            return
        self.out.print(
            f"step {row['step']:>7}  epoch {row['epoch']:6.2f}  train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}"
            f"  test loss {row['test_loss']:.4f} acc [bold]{row['test_accuracy']:.4f}[/]",
            highlight=False,
        )

    def message(self, text: str) -> None:
        if not self.quiet:
            self.out.print(f"[dim]{escape(text)}[/]", highlight=False)

    def stop(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None


def fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_table(summary: dict, run_path) -> Table:
    """The end-of-run table: status, accuracies, losses, speed, where the files are."""
    table = Table(title="bnexp train", show_header=False, title_justify="left")
    table.add_column("what", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")
    status_style = {"completed": "green", "interrupted": "yellow"}.get(summary.get("status"), "red")
    rows = [
        ("status", f"[{status_style}]{summary.get('status')}[/]"),
        ("test accuracy", fmt(summary.get("test_accuracy"))),
        ("best test accuracy", f"{fmt(summary.get('best_test_accuracy'))} (step {fmt(summary.get('best_step'))})"),
        ("test loss", fmt(summary.get("test_loss"))),
        ("steps", f"{fmt(summary.get('steps'))} / {fmt(summary.get('total_steps'))} ({fmt(summary.get('epochs'), 2)} epochs)"),
        ("seconds per epoch", fmt(summary.get("seconds_per_epoch"), 3)),
        ("examples per second", fmt(summary.get("examples_per_second"), 0)),
        ("wall seconds", fmt(summary.get("wall_seconds"), 1)),
        ("run directory", escape(str(run_path))),
    ]
    if summary.get("message"):
        rows.insert(1, ("message", escape(summary["message"])))
    for what, value in rows:
        table.add_row(what, value)
    return table


def eval_tables(record: dict, run_path) -> list[Table]:
    """The eval result: headline numbers, per-class accuracy, confusion matrix."""
    head = Table(title=f"bnexp eval {escape(str(run_path))}", show_header=False, title_justify="left")
    head.add_column("what", style="bold", overflow="fold")
    head.add_column("value", overflow="fold")
    stats = record["stats"] + (f" (batch size {record['batch_size']})" if record["stats"] == "batch" else "")
    if record["stats"] == "precise":
        stats += f" ({record['precise_examples']} training examples, batches of {record['batch_size']})"
    for what, value in [
        ("statistics", stats),
        ("split", record["split"]),
        ("checkpoint step", str(record["step"])),
        ("accuracy", f"{record['accuracy']:.4f} ({record['correct']}/{record['total']})"),
        ("loss", f"{record['loss']:.4f}"),
    ] + [("note", escape(note)) for note in record["notes"]]:
        head.add_row(what, value)
    classes = Table(title="per-class accuracy", title_justify="left")
    for digit in range(len(record["per_class_accuracy"])):
        classes.add_column(str(digit), justify="right")
    classes.add_row(*(f"{a:.3f}" for a in record["per_class_accuracy"]))
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    confusion.add_column("", style="bold")
    for digit in range(len(record["confusion"])):
        confusion.add_column(str(digit), justify="right")
    for digit, row in enumerate(record["confusion"]):
        confusion.add_row(str(digit), *(f"[bold]{n}[/]" if i == digit else (str(n) if n else "[dim]0[/]") for i, n in enumerate(row)))
    return [head, classes, confusion]
