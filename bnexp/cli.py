"""The `bnexp` command line: one small function per command, wiring only.

Heavy modules (TensorFlow, the training loop) are imported inside the commands that
need them, so `bnexp --help` and `bnexp compare` answer at once. Every error, a usage
error of Click's or a BnexpError of ours, becomes one line `error: …` on stderr and its
exit code here, and nowhere else.
"""

from __future__ import annotations

import functools
import os
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from typer.core import TyperGroup

try:  # recent Typer carries its own copy of Click, and its Abort apart from it; older ones use Click itself
    from typer._click import exceptions as click_errors
    from typer.exceptions import Abort
except ImportError:
    from click import exceptions as click_errors
    from click.exceptions import Abort


class Stats(str, Enum):
    moving = "moving"
    batch = "batch"
    precise = "precise"
    all = "all"


class Split(str, Enum):
    test = "test"
    train = "train"


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Executor(str, Enum):
    local = "local"
    ray = "ray"


def error_line(message: str) -> None:
    """The one line every error prints on stderr."""
    from rich.markup import escape

    from bnexp.present import console

    console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(' '.join(message.split()))}", highlight=False)


def fail(message: str, code: int) -> None:
    error_line(message)
    raise typer.Exit(code)


class Commands(TyperGroup):
    """bnexp's command group: Click's usage errors (an unknown option, a bad choice, a
    missing argument) become one line `error: …` and exit 2, like every other error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.NoArgsIsHelpError as e:  # bare `bnexp`: the help, as Click gives it
            e.show()
            sys.exit(e.exit_code)
        except click_errors.ClickException as e:
            where = f"{e.ctx.command_path}: " if getattr(e, "ctx", None) else ""
            error_line(where + e.format_message().replace("Value error, ", ""))
            sys.exit(e.exit_code)
        except Abort:
            error_line("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="bnexp",
    cls=Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def show_version(value: bool) -> None:
    if value:
        from bnexp import __version__

        print(f"bnexp {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Batch Normalization experiments on MNIST multilayer perceptrons: train, eval, compare, sweep."""


def reports_errors(command):
    """Turn bnexp's typed errors into one line and an exit code, with no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from bnexp.errors import BnexpError, Stopped, signal_exit_code
        from bnexp.status import Status

        try:
            return command(*args, **kwargs)
        except BnexpError as e:
            fail(str(e), e.exit_code)
        except Stopped as e:  # a second signal stopped training at once
            fail(f"interrupted twice by {e.signal}", signal_exit_code(e.signal))
        except KeyboardInterrupt:
            fail(str(Status.INTERRUPTED), signal_exit_code("SIGINT"))
        except (typer.Exit, typer.Abort):  # our own exit codes, not errors
            raise
        except BrokenPipeError:  # `bnexp ... | head`: the reader left; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            raise typer.Exit(1)
        except Exception as e:  # a bug of ours: one line for the user, the traceback on request
            if os.environ.get("BNEXP_DEBUG"):
                raise
            fail(f"unexpected {type(e).__name__}: {e} (set BNEXP_DEBUG=1 for the traceback; a run's log.txt has it too)", 1)

    return wrapper


def finish_training(run_path: Path, summary, quiet: bool) -> None:
    from bnexp.present import console
    from bnexp.present.training import summary_table
    from bnexp.training import exit_status

    if not quiet:
        console().print(summary_table(summary, run_path))
    print(run_path)
    code, message = exit_status(summary)
    if message:
        fail(message, code)
    if code:
        raise typer.Exit(code)


@app.command()
@reports_errors
def train(
    config: Optional[Path] = typer.Argument(None, help="Experiment config (YAML). Omit with --resume.", show_default=False),
    set_: List[str] = typer.Option([], "--set", help="Override a config key with a YAML value, e.g. [cyan]--set model.hidden=[100,100][/]. Repeatable.", metavar="KEY.PATH=VALUE"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Write the run here (must not exist, or be empty) instead of runs/NAME-TIMESTAMP."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the dataset files (IDX, gzipped or not, or mnist.npz); overrides data.dir."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run from its last checkpoint, under the config it was started with; with [cyan]--set train.epochs=N[/] (or train.steps) extend a run to end as one planned that long."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the run directory; the run's log still gets everything."),
) -> None:
    """Train and test the MLP a config describes; write config, metrics, summary, log and weights to a run directory.

    Exit status: 0 completed; 1 data, divergence or runtime error; 2 config or usage error;
    130/143 interrupted by SIGINT/SIGTERM (a checkpoint is saved: continue with --resume).
    """
    from bnexp.errors import UsageError
    from bnexp.present import console
    from bnexp.present.training import TrainDisplay
    from bnexp.training import train_new, train_resume

    display = TrainDisplay(console(), quiet)
    if resume is not None:
        if config is not None or run_dir is not None:
            raise UsageError("--resume takes no CONFIG or --run-dir: the run's own config rules (--set only its length)")
        run_path, summary = train_resume(str(resume), data_dir, display, set_)
    elif config is None:
        raise UsageError("missing CONFIG: bnexp train CONFIG.yaml (or --resume RUN_DIR)")
    else:
        run_path, summary = train_new(config, set_, run_dir, data_dir, display)
    finish_training(run_path, summary, quiet)


@app.command("eval")
@reports_errors
def eval_(
    run_dir: Path = typer.Argument(..., help="A run directory written by bnexp train.", show_default=False),
    stats: Stats = typer.Option(Stats.moving, "--stats", help="BN statistics: [cyan]moving[/] (saved by training), [cyan]batch[/] (each batch its own, as in training), [cyan]precise[/] (recomputed over training data, Algorithm 2) or [cyan]all[/] three side by side."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=2, help="Batch size for --stats batch and precise (default: the run's train.batch_size)."),
    precise_examples: int = typer.Option(10_000, "--precise-examples", min=2, help="Training examples for --stats precise (all of them if the split is smaller)."),
    split: Split = typer.Option(Split.test, "--split", help="Evaluate on [cyan]test[/] or [cyan]train[/]."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the dataset files; overrides the run's data.dir."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object (accuracy, loss, stats, split, per-class accuracy, confusion) instead of tables; with --stats all, one object holding the three by name."),
) -> None:
    """Re-evaluate a finished (or interrupted) run from its own config and weights.

    Each result is also recorded in the run directory's eval record, keyed by stats and split.
    """
    import json

    from bnexp.evaluate import evaluate_run

    record = evaluate_run(run_dir, stats.value, split.value, batch_size, precise_examples, data_dir)
    if json_:
        print(json.dumps(record))
        return
    from bnexp.present import console
    from bnexp.present.training import eval_sources_table, eval_tables

    out = console()
    for table in [eval_sources_table(record, run_dir)] if stats is Stats.all else eval_tables(record, run_dir):
        out.print(table)


@app.command()
@reports_errors
def compare(
    runs: List[Path] = typer.Argument(..., help="Two or more run directories, or directories holding runs at any depth (a sweep).", show_default=False),
    all_keys: bool = typer.Option(False, "--all", help="Show every config key, not only those that differ."),
    threshold: float = typer.Option(0.97, "--threshold", help="Test accuracy in (0, 1] whose first crossing is reported as steps-to-threshold."),
    last: int = typer.Option(1, "--last", min=1, help="Every metric read from evaluations is the mean of a run's last N; a run with fewer is listed as not counted."),
    metric: List[str] = typer.Option([], "--metric", metavar="NAME", help="Compare this metric (repeatable; default final_test_accuracy), e.g. [cyan]--metric generalization_gap[/], [cyan]--metric eval.precise_accuracy[/], [cyan]--metric ics.ics_l2:layer=0[/]; docs/metrics.md lists them. Each is its own Holm family."),
    baseline: Optional[str] = typer.Option(None, "--baseline", metavar="KEY=VALUE|RUN", help="The baseline group: by grid values, e.g. [cyan]--baseline model.norm.kind=none[/] (several as k=v,k=v), or by a run directory's path."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write learning curves (test accuracy and loss against step) to this .png, .pdf or .svg."),
    fmt: Format = typer.Option(Format.table, "--format", help="[cyan]table[/], [cyan]json[/], [cyan]csv[/] or [cyan]markdown[/]."),
    pivot: Optional[str] = typer.Option(None, "--pivot", metavar="ROW_KEY", help="Show each --metric (mean ± std (n) over seeds; diverged and failed runs counted) in a table of grid values, one row per value of this config key, e.g. [cyan]--pivot model.norm.kind[/]."),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="COL_KEY", help="With --pivot: one column per value of this config key, e.g. [cyan]--columns train.learning_rate[/]."),
) -> None:
    """Show what changed between runs (config diff), how their results differ, and whether it is seed noise.

    The baseline is the first run named (within a folder, the first in natural order;
    within a sweep, the first point in grid order), or the group --baseline picks. Runs
    whose configs differ only in seed form a group (mean ± std over distinct seeds; a
    repeated seed counts once). Each group's final accuracy, or each --metric, is tested
    against the baseline's group: paired t-test on matched seeds, else Welch (Fisher's
    exact test for diverged and failed); Holm-adjusted p within each metric with several
    groups; no p-value below 3 seeds. Diverged and failed-to-learn runs are counted
    wherever a group is shown. Runs on different test sets are never compared. "train-set acc" is a fixed
    training subset evaluated in inference mode (the metrics file's train_accuracy is the
    running mean over training batches in training mode); "train−test gap" is it minus
    the final test accuracy. A sweep directory with claims (`expect:`) gets its verdicts
    judged again from its runs.
    """
    from bnexp import compare as analysis
    from bnexp.errors import UsageError
    from bnexp.present import console
    from bnexp.present.comparison import show

    check_threshold(threshold)
    if plot is not None and plot.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise UsageError(f"--plot {plot}: name a .png, .pdf or .svg file")
    from bnexp.sweep import claims_for

    unreadable: list[tuple[str, str]] = []
    loaded = analysis.load_runs([str(r) for r in runs], unreadable)
    report = analysis.compare(loaded, threshold=threshold, last=last, all_keys=all_keys,
                              pivot_rows=pivot, pivot_columns=columns, metric=metric, baseline=baseline,
                              unreadable=unreadable)
    show(report, fmt.value, console(), write_plot(loaded, plot) if plot else None, claims_for(runs))


def check_threshold(threshold: float) -> None:
    from bnexp.errors import UsageError

    if not 0 < threshold <= 1:
        raise UsageError(f"--threshold is a test accuracy in (0, 1], not {threshold}")


@app.command()
@reports_errors
def report(
    runs: List[Path] = typer.Argument(..., help="Two or more run directories, or directories holding runs at any depth (sweeps), as for compare.", show_default=False),
    out: Path = typer.Option(..., "--out", "-o", help="The HTML file to write (.html): one self-contained page, replaced whole.", show_default=False),
    threshold: float = typer.Option(0.97, "--threshold", help="Test accuracy in (0, 1] whose first crossing is reported as steps-to-threshold (as compare's)."),
    last: int = typer.Option(1, "--last", min=1, help="Every metric read from evaluations is the mean of a run's last N (as compare's)."),
    metric: List[str] = typer.Option([], "--metric", metavar="NAME", help="Metrics to tabulate and test, as compare's --metric (repeatable; default: final test accuracy, train-set accuracy and the train−test gap)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", metavar="KEY=VALUE|RUN", help="The baseline group, as compare's --baseline."),
    pivot: Optional[str] = typer.Option(None, "--pivot", metavar="ROW_KEY", help="Rows of the tables of grid values (default: a sweep's first grid key), as compare's --pivot."),
    columns: Optional[str] = typer.Option(None, "--columns", metavar="COL_KEY", help="With --pivot: its columns (default with neither option: a sweep's second grid key), as compare's --columns."),
) -> None:
    """Write one HTML file that shows the study to someone without bnexp: no server, no network, nothing beside it.

    The page holds what compare says about the same runs with the same options (config
    keys that differ, for a sweep the table of final accuracy by grid value, the
    comparisons' statistics, a sweep's claims, every run), learning curves per seed group
    (mean with a 95% band; single runs can be hidden) and the diagnostics where recorded.
    Prints the file's path.
    """
    from bnexp.errors import UsageError
    from bnexp.report import write_report
    from bnexp.report_data import report_data

    check_threshold(threshold)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"-o {out}: name an .html file")
    data = report_data(runs, threshold=threshold, last=last, pivot_rows=pivot, pivot_columns=columns,
                       metric=metric or None, baseline=baseline)
    try:
        print(write_report(data, out))
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or e}") from e


def write_plot(runs, path: Path) -> str:
    from bnexp.errors import UsageError
    from bnexp.plots import plot_learning_curves  # imports matplotlib: only for --plot

    try:
        return str(plot_learning_curves(runs, path))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot write plot {path}: {e}") from e


@app.command()
@reports_errors
def sweep(
    sweep_file: Path = typer.Argument(..., help="Sweep file (YAML): base config, grid of overrides, seeds.", show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", help="Sweep directory (default runs/NAME-TIMESTAMP). One of the same sweep is continued: points with a result are skipped, the others resumed."),
    executor: Executor = typer.Option(Executor.local, "--executor", help="[cyan]local[/] (warm worker processes here) or [cyan]ray[/] (long-lived Ray actors, each a warm worker; pip install -e .\\[ray])."),
    workers: int = typer.Option(1, "--workers", min=1, help="Points at once, each on a warm worker; TensorFlow's threads are divided among them ($BNEXP_THREADS if set), one count for the whole sweep, reruns included (sweep.json records it). With ray, each worker asks for that many CPUs."),
    address: Optional[str] = typer.Option(None, "--address", help="With --executor ray: a running Ray cluster to join (HOST:PORT from ray start --head, or auto for the one on this machine); default: a new local Ray instance of this sweep's own, whatever else runs here."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the dataset files, for every point; overrides data.dir."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only failures and the sweep directory."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the points, their run directories and status; run nothing."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Replace the file's seeds: [cyan]100-104[/], [cyan]1,5,9[/] or [cyan]1,3-5[/]. With --out of an existing sweep, these seeds' points are added to those it holds, and the claims are judged over all of them."),
    check: bool = typer.Option(False, "--check", help="Exit 1 unless every claim of the file's expect block holds (also when every point already has a result and nothing trains)."),
) -> None:
    """Train every point of a grid of configs × seeds, each in its own run directory under one sweep directory.

    The file's claims (`expect:`) are checked before anything trains and judged at the
    end: a verdict table, and a `claims` list in sweep.json.

    Exit status: 0 every point completed (or diverged: a result); 1 a point failed (the
    others still run), or with --check a claim that does not hold; 2 sweep file, claim or
    config error; 130/143 interrupted by SIGINT/SIGTERM (running points checkpoint: run
    the same command with --out to resume).
    """
    from rich.text import Text

    from bnexp.claims import check_exit_code, design_warnings, parse_seeds
    from bnexp.present import console
    from bnexp.present.sweeping import SweepDisplay, points_table
    from bnexp.sweep import load_sweep
    from bnexp.sweep.run import make_executor, run_sweep

    chosen = parse_seeds(seeds) if seeds is not None else None
    runner = make_executor(executor.value, workers, address, data_dir)
    plan = load_sweep(sweep_file, out, chosen)
    for line in design_warnings(plan.claims, plan.seeds):  # what the design can never decide, before training
        console().print(Text(f"warning: {line}", style="yellow"))
    if dry_run:
        console().print(points_table(plan))
        return
    display = SweepDisplay(console(), quiet)
    run_sweep(plan, runner, display)
    display.summary(plan)
    code = plan.exit_code
    raise typer.Exit(check_exit_code(plan.verdicts) if check and code == 0 else code)


@app.command("claims-report")
@reports_errors
def claims_report(
    sweeps: List[Path] = typer.Argument(..., help="Sweep directories, or folders holding them (such as runs/claims).", show_default=False),
    out: Path = typer.Option(Path("docs/claims.md"), "--out", help="The Markdown file to write; the figures go to the folder beside it of the same name (docs/claims/)."),
) -> None:
    """Write one Markdown report of every claim of the sweeps: source, setup, verdict, difference with its CI, p and adjusted p, and learning-curve figures.

    Each claim is judged again from the sweep directory's runs, so partial results are
    reported as they are (a claim still missing runs is inconclusive, and says which).
    """
    from bnexp.claims.report import write_report

    print(write_report(sweeps, out))


def reflow_help(typer_app: typer.Typer) -> None:
    """Each command's help from its docstring with one line per paragraph: Typer (0.29) keeps
    a docstring's line breaks, which broke the help mid-sentence in an 80-column terminal;
    Rich then wraps each paragraph at the terminal's width, between words."""
    import inspect

    for info in typer_app.registered_commands:
        doc = info.help or inspect.getdoc(info.callback) or ""
        info.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in doc.split("\n\n"))


reflow_help(app)
