"""The `bnexp` command line: one small function per command, wiring only.

Heavy modules (TensorFlow, the training loop) are imported inside the commands that
need them, so `bnexp --help` and `bnexp compare` answer at once. Every BnexpError becomes
one line on stderr and its exit code here, and nowhere else.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="bnexp",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


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


def fail(message: str, code: int) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def reports_errors(command):
    """Turn bnexp's typed errors into one line and an exit code, with no traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from bnexp.errors import BnexpError

        try:
            return command(*args, **kwargs)
        except BnexpError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)
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


def finish_training(run_path: Path, summary: dict, quiet: bool) -> None:
    from bnexp.progress import console, summary_table

    if not quiet:
        console().print(summary_table(summary, run_path))
    print(run_path)
    if summary["status"] == "diverged":
        fail(summary["message"], 1)
    if summary["status"] == "interrupted":
        raise typer.Exit(EXIT_SIGNAL.get(summary.get("signal"), 130))


@app.command()
@reports_errors
def train(
    config: Optional[Path] = typer.Argument(None, help="Experiment config (YAML). Omit with --resume.", show_default=False),
    set_: List[str] = typer.Option([], "--set", help="Override a config key with a YAML value, e.g. [cyan]--set model.hidden=[100,100][/]. Repeatable.", metavar="KEY.PATH=VALUE"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Write the run here (must not exist, or be empty) instead of runs/NAME-TIMESTAMP."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the dataset files (IDX, gzipped or not, or mnist.npz); overrides data.dir."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue an interrupted run from its last checkpoint, under its own config.yaml."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the run directory; log.txt still gets everything."),
) -> None:
    """Train and test the MLP a config describes; write config, metrics, summary, log and weights to a run directory.

    Exit status: 0 completed; 1 data, divergence or runtime error; 2 config or usage error;
    130/143 interrupted by SIGINT/SIGTERM (a checkpoint is saved: continue with --resume).
    """
    from bnexp.errors import UsageError
    from bnexp.progress import TrainDisplay, console
    from bnexp.train import train_new, train_resume

    display = TrainDisplay(console(), quiet)
    if resume is not None:
        if config is not None or set_ or run_dir is not None:
            raise UsageError("--resume takes no CONFIG, --set or --run-dir: the run's own config.yaml rules")
        run_path, summary = train_resume(str(resume), data_dir, display)
    elif config is None:
        raise UsageError("missing CONFIG: bnexp train CONFIG.yaml (or --resume RUN_DIR)")
    else:
        run_path, summary = train_new(config, set_, run_dir, data_dir, display)
    finish_training(run_path, summary, quiet)


@app.command("eval")
@reports_errors
def eval_(
    run_dir: Path = typer.Argument(..., help="A run directory written by bnexp train.", show_default=False),
    stats: str = typer.Option("moving", "--stats", help="BN statistics: [cyan]moving[/] (saved by training), [cyan]batch[/] (each batch its own, as in training) or [cyan]precise[/] (recomputed over training data, Algorithm 2)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=2, help="Batch size for --stats batch and precise (default: the run's train.batch_size)."),
    precise_examples: int = typer.Option(10_000, "--precise-examples", min=2, help="Training examples for --stats precise (all of them if the split is smaller)."),
    split: str = typer.Option("test", "--split", help="Evaluate on [cyan]test[/] or [cyan]train[/]."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the dataset files; overrides the run's data.dir."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON object (accuracy, loss, stats, split, per-class accuracy, confusion) instead of tables."),
) -> None:
    """Re-evaluate a finished (or interrupted) run from its own config and weights.

    Each result is also recorded in RUN_DIR/eval.json, keyed by stats and split.
    """
    import json

    from bnexp.errors import UsageError

    if stats not in ("moving", "batch", "precise"):
        raise UsageError(f"--stats {stats!r}: allowed are moving, batch, precise")
    if split not in ("test", "train"):
        raise UsageError(f"--split {split!r}: allowed are test, train")
    from bnexp.evaluate import evaluate_run

    record = evaluate_run(run_dir, stats, split, batch_size, precise_examples, data_dir)
    if json_:
        print(json.dumps(record))
        return
    from bnexp.progress import console, eval_tables

    out = console()
    for table in eval_tables(record, run_dir):
        out.print(table)


@app.command()
@reports_errors
def compare(
    runs: List[Path] = typer.Argument(..., help="Two or more run directories, or directories holding runs at any depth (a sweep).", show_default=False),
    all_keys: bool = typer.Option(False, "--all", help="Show every config key, not only those that differ."),
    threshold: float = typer.Option(0.97, "--threshold", help="Test accuracy whose first crossing is reported as steps-to-threshold."),
    last: int = typer.Option(1, "--last", help="A run's final accuracy and loss: the mean of its last N evaluations."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write learning curves (test accuracy and loss against step) to this PNG."),
    fmt: str = typer.Option("table", "--format", help="[cyan]table[/], [cyan]json[/], [cyan]csv[/] or [cyan]markdown[/]."),
) -> None:
    """Show what changed between runs (config diff), how their results differ, and whether it is seed noise.

    Runs whose configs differ only in seed form a group (mean ± std); with two groups a
    Welch t-test says whether their final accuracies differ beyond seed noise.
    """
    from bnexp.compare_render import run_compare
    from bnexp.progress import console

    run_compare([str(r) for r in runs], all_keys=all_keys, threshold=threshold, plot=str(plot) if plot else None,
                fmt=fmt, last=last, console=console())


@app.command()
@reports_errors
def sweep(
    sweep_file: Path = typer.Argument(..., help="Sweep file (YAML): base config, grid of overrides, seeds.", show_default=False),
    out: Optional[Path] = typer.Option(None, "--out", help="Sweep directory (default runs/NAME-TIMESTAMP). One of the same sweep is continued: points with a result are skipped, the others resumed."),
    executor: str = typer.Option("local", "--executor", help="[cyan]local[/] (child processes here) or [cyan]ray[/] (Ray tasks; pip install -e .\\[ray])."),
    workers: int = typer.Option(1, "--workers", min=1, help="Points at once; TensorFlow's threads are divided among them. With ray, each point asks for cores/N CPUs."),
    address: Optional[str] = typer.Option(None, "--address", help="With --executor ray: a running Ray cluster (ray start --head); default: a local Ray instance for this sweep."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Folder with the dataset files, for every point; overrides data.dir."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only failures and the sweep directory."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the points, their run directories and status; run nothing."),
) -> None:
    """Train every point of a grid of configs × seeds, each in its own run directory under one sweep directory.

    Exit status: 0 every point completed (or diverged: a result); 1 a point failed (the
    others still run); 2 sweep file or config error; 130/143 interrupted by SIGINT/SIGTERM
    (running points checkpoint: run the same command with --out to resume).
    """
    from bnexp.progress import console
    from bnexp.sweep import load_sweep, make_executor, run_sweep
    from bnexp.sweep_render import SweepDisplay, points_table

    runner = make_executor(executor, workers, address, data_dir)
    plan = load_sweep(sweep_file, out)
    if dry_run:
        console().print(points_table(plan))
        return
    display = SweepDisplay(console(), quiet)
    run_sweep(plan, runner, display)
    display.summary(plan)
    raise typer.Exit(plan.exit_code)


def main() -> None:
    app(prog_name="bnexp")


if __name__ == "__main__":
    main()
