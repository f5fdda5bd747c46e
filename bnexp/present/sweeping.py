"""`bnexp sweep` on screen: the live progress over all points, the plan, the results table.

bnexp.sweep runs the points and calls a SweepReporter; this module draws. Output that
is not a terminal gets one plain line per finished point.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from bnexp.config import yaml_flow
from bnexp.present import console, number, progress_bar, status
from bnexp.present.claims import claims_tables
from bnexp.status import Status
from bnexp.sweep import Point, Sweep
from bnexp.sweep.run import SweepReporter


class SweepDisplay(SweepReporter):
    """A live bar over the sweep (points done, running, failed; ETA) on a terminal, and a line per
    finished point. Quiet: only failures (on stderr), then the sweep directory."""

    def __init__(self, out: Console, quiet: bool = False):
        self.out, self.quiet = out, quiet
        self.bar: Progress | None = None
        self.running: set[Point] = set()
        self.failed = 0

    def start(self, sweep: Sweep, to_run: int) -> None:
        done = len(sweep.points) - to_run
        if not self.quiet:
            self.out.print(f"sweep {escape(sweep.name)}: {len(sweep.points)} points in {escape(str(sweep.out))}"
                           + (f" ({done} already have a result)" if done else ""), highlight=False)
        if not (self.out.is_terminal and not self.quiet and to_run):
            return
        self.bar = progress_bar(self.out, "sweep", "running {task.fields[running]}  failed {task.fields[failed]}", 2)
        self.task = self.bar.add_task("sweep", total=to_run, running=0, failed=0)
        self.bar.start()

    def started(self, point: Point) -> None:
        self.running.add(point)
        self._update()

    def finished(self, point: Point) -> None:
        self.running.discard(point)
        self.failed += point.status == Status.FAILED
        self._update(advance=1)
        if self.quiet:
            if point.status == Status.FAILED:
                console(stderr=True, soft_wrap=True).print(point_line(point), highlight=False)
            return
        self.out.print(point_line(point), highlight=False)

    def _update(self, advance: int = 0) -> None:
        if self.bar:
            self.bar.update(self.task, advance=advance, running=len(self.running), failed=self.failed)

    def stop(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None

    def summary(self, sweep: Sweep) -> None:
        """The end: a table of every point, the claims' verdicts, what to do next, and the sweep directory."""
        if self.quiet:
            print(sweep.out)
            return
        self.out.print(results_table(sweep))
        for table in claims_tables(sweep.verdicts or []):
            self.out.print(table)
        if sweep.stopped_by:
            self.out.print(f"[yellow]interrupted by {sweep.stopped_by}[/]: continue with "
                           f"bnexp sweep {escape(str(sweep.file))} --out {escape(str(sweep.out))}", highlight=False)
        self.out.print(f"compare them: bnexp compare {escape(str(sweep.out))}", highlight=False)


def point_line(point: Point) -> Text:
    line = Text.assemble(status(point.status, width=11), " ", point.run_dir)
    if point.test_accuracy is not None:
        line.append(f"  test acc {number(point.test_accuracy)}")
    if point.failed_to_learn:
        line.append("  failed to learn", style="red")
    if point.message and point.status != Status.COMPLETED:
        line.append(f"  {point.message}")
    return line


def points_table(sweep: Sweep) -> Table:
    """--dry-run: every point, its run directory, its overrides and where it stands now."""
    table = Table(title=f"bnexp sweep {sweep.name}: {len(sweep.points)} points in {escape(str(sweep.out))}", title_justify="left")
    table.add_column("run directory", overflow="fold")
    table.add_column("overrides", overflow="fold")
    table.add_column("status")
    for p in sweep.points:
        overrides = " ".join(f"{k}={yaml_flow(v)}" for k, v in p.overrides.items())
        table.add_row(Text(p.run_dir), Text(overrides), status(p.status))
    return table


def results_table(sweep: Sweep) -> Table:
    table = Table(title=f"bnexp sweep {sweep.name}", title_justify="left")
    table.add_column("run directory", overflow="fold")
    table.add_column("status")
    table.add_column("test acc", justify="right")
    table.add_column("message", overflow="fold")
    for p in sweep.points:
        table.add_row(Text(p.run_dir), status(p.status), number(p.test_accuracy), Text(p.message or ""))
    return table
