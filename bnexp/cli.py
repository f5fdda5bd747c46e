"""The `bnexp` command line: one small function per command, wiring only.

Heavy modules (TensorFlow, the training loop) are imported inside the commands that
need them, so `bnexp --help` and `bnexp compare` answer at once. Every BnexpError becomes
one line on stderr and its exit code here, and nowhere else.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    name="bnexp",
    help="Batch Normalization experiments on MNIST multilayer perceptrons: train, eval, compare.",
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
    """Batch Normalization experiments on MNIST multilayer perceptrons: train, eval, compare."""


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

    return wrapper


def finish_training(run_path: Path, summary: dict, quiet: bool) -> None:
    from bnexp.progress import console, summary_table

    if not quiet:
        console().print(summary_table(summary, run_path))
    print(run_path)
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


def main() -> None:
    app(prog_name="bnexp")


if __name__ == "__main__":
    main()
