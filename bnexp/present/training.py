"""`bnexp train` and `bnexp eval` on screen: the progress bar, the end-of-run table, the eval tables."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from bnexp.present import number, progress_bar, status
from bnexp.rundir import Summary
from bnexp.status import Status
from bnexp.training import Reporter


class TrainDisplay(Reporter):
    """A live bar (loss, accuracy, examples/s, ETA) on a terminal; one line per evaluation elsewhere."""

    def __init__(self, out: Console, quiet: bool = False):
        self.out, self.quiet = out, quiet
        self.live = out.is_terminal and not quiet
        self.bar: Progress | None = None

    def start(self, total_steps: int, start_step: int) -> None:
        if not self.live:
            return
        self.bar = progress_bar(self.out, "train", "loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[speed]} ex/s", 4)
        self.task = self.bar.add_task("train", total=total_steps, completed=start_step, loss="-", acc="-", speed="-")
        self.bar.start()

    def progress(self, step: int, loss: float, accuracy: float, examples_per_second: float) -> None:
        if self.bar:
            self.bar.update(self.task, completed=step, loss=number(loss, "loss"), acc=number(accuracy),
                            speed=number(examples_per_second, "rate"))

    def evaluated(self, row: dict) -> None:
        if self.quiet:
            return
        self.out.print(
            f"step {row['step']:>7}  epoch {number(row['epoch'], 'epochs'):>6}  train loss {number(row['train_loss'], 'loss')} "
            f"acc {number(row['train_accuracy'])}  test loss {number(row['test_loss'], 'loss')} acc [bold]{number(row['test_accuracy'])}[/]",
            highlight=False,
        )

    def message(self, text: str) -> None:
        if not self.quiet:
            self.out.print(f"[dim]{escape(text)}[/]", highlight=False)

    def stop(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None


def _pairs(title: str) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("what", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")
    return table


def summary_table(summary: Summary, run_path) -> Table:
    """The end-of-run table: status, accuracies, losses, speed, where the files are."""
    s = summary
    rows = [
        ("status", _status_cell(s)),
        ("test accuracy", number(s.test_accuracy)),
        ("best test accuracy", f"{number(s.best_test_accuracy)} (step {number(s.best_step, 'count')})"),
        ("test loss", number(s.test_loss, "loss")),
        ("steps", f"{number(s.steps, 'count')} / {number(s.total_steps, 'count')} ({number(s.epochs, 'epochs')} epochs)"),
        ("seconds per epoch", number(s.seconds_per_epoch, "seconds")),
        ("examples per second", number(s.examples_per_second, "rate")),
        ("wall seconds", number(s.wall_seconds, "seconds")),
        ("run directory", escape(str(run_path))),
    ]
    if s.message and s.status != Status.DIVERGED:  # a diverged run's message is train's error line, printed below
        rows.insert(1, ("message", escape(s.message)))
    table = _pairs("bnexp train")
    for what, value in rows:
        table.add_row(what, value)
    return table


def _status_cell(s: Summary) -> Text:
    """The status, and a completed run's failure to learn (a diverged run's step is in the steps row)."""
    from bnexp.metrics import learning_threshold

    cell = status(s.status)
    counts = (s.data or {}).get("test_class_counts")
    if s.failed_to_learn and counts:
        cell.append(f", failed to learn: test accuracy {number(s.test_accuracy)} is not above"
                    f" {learning_threshold(counts):.4f}, the most frequent class's share plus the rarest's",
                    style="red")
    return cell


def statistics_label(record: dict) -> str:
    """Which statistics an eval record used, with their batch size and examples."""
    if not record.get("applicable", True):
        return record["stats"]
    if record["stats"] == "batch":
        return f"batch (batch size {record['batch_size']})"
    if record["stats"] == "precise":
        return f"precise ({record['precise_examples']} training examples, batches of {record['batch_size']})"
    return record["stats"]


def eval_tables(record: dict, run_path) -> list[Table]:
    """The eval result: headline numbers, per-class accuracy, confusion matrix."""
    head = _pairs(f"bnexp eval {escape(str(run_path))}")
    for what, value in [
        ("statistics", statistics_label(record)),
        ("split", record["split"]),
        ("checkpoint step", str(record["step"])),
        ("accuracy", f"{number(record['accuracy'])} ({record['correct']}/{record['total']})"),
        ("loss", number(record["loss"], "loss")),
    ] + [("note", escape(note)) for note in record["notes"]]:
        head.add_row(what, value)
    classes = Table(title="per-class accuracy", title_justify="left")
    for digit in range(len(record["per_class_accuracy"])):
        classes.add_column(str(digit), justify="right")
    classes.add_row(*(number(a, "class") for a in record["per_class_accuracy"]))
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    confusion.add_column("", style="bold")
    for digit in range(len(record["confusion"])):
        confusion.add_column(str(digit), justify="right")
    for digit, row in enumerate(record["confusion"]):
        confusion.add_row(str(digit), *(f"[bold]{n}[/]" if i == digit else (str(n) if n else "[dim]0[/]") for i, n in enumerate(row)))
    return [head, classes, confusion]


def eval_sources_table(records: dict[str, dict], run_path) -> Table:
    """`bnexp eval --stats all`: each source of BN statistics in a column, its numbers in rows."""
    first = next(iter(records.values()))
    table = Table(title=f"bnexp eval {escape(str(run_path))}: {first['split']} split, checkpoint step {first['step']}",
                  title_justify="left")
    table.add_column("", style="bold")
    for record in records.values():
        table.add_column(escape(statistics_label(record)), justify="right", overflow="fold")
    na = "not applicable"  # a source the run's norm kind has no statistics for (layer, group, none)

    def row(cell) -> list[str]:
        return [cell(r) if r.get("applicable", True) else na for r in records.values()]

    table.add_row("accuracy", *row(lambda r: f"{number(r['accuracy'])} ({r['correct']}/{r['total']})"))
    table.add_row("loss", *row(lambda r: number(r["loss"], "loss")))
    for digit in range(len(first["per_class_accuracy"])):
        table.add_row(f"class {digit}", *row(lambda r: number(r["per_class_accuracy"][digit], "class")))
    notes = dict.fromkeys(note for r in records.values() for note in r["notes"])
    if notes:
        table.caption = escape("; ".join(notes))
    return table
