"""The entry points that train a run in this process: `bnexp train CONFIG`, `bnexp train
--resume RUN_DIR` (bnexp.cli) and a warm worker's tasks (bnexp.sweep.worker).

Every input is checked before anything of a run is written: a new run's config and data
before its directory exists, a resumed run's checkpoint, tables and metrics before its
summary changes.
"""

from __future__ import annotations

import functools
from pathlib import Path

from bnexp import config as config_module, rundir
from bnexp.config import Config
from bnexp.data import Dataset
from bnexp.errors import ConfigError, DivergedError, RunDirError
from bnexp.rundir import Summary
from bnexp.status import Status
from bnexp.training.extension import check_length_keys, check_state, extended
from bnexp.training.loop import Reporter
from bnexp.training.plan import Plan, State
from bnexp.training.programs import Programs
from bnexp.training.session import StopRequest, train_run


def exit_status(summary: Summary) -> tuple[int, str]:
    """The exit code of `bnexp train` for a run that ended with `summary`, and its one-line error."""
    from bnexp.errors import signal_exit_code

    if summary.status == Status.DIVERGED:
        return DivergedError.exit_code, summary.message or str(Status.DIVERGED)
    if summary.status == Status.INTERRUPTED:
        return signal_exit_code(summary.signal), ""
    return 0, ""


class Warm:
    """What a process that trains run after run (bnexp.sweep.worker) keeps between them: the
    datasets it has read and the compiled programs (Programs)."""

    def __init__(self, datasets: int = 2):
        from bnexp import data as data_module

        self.load = functools.lru_cache(maxsize=datasets)(data_module.load)
        self.programs = Programs()


def check_fits(config: Config, data: Dataset) -> None:
    if config.train.batch_size > len(data.x_train):
        raise ConfigError(f"train.batch_size = {config.train.batch_size} exceeds the {len(data.x_train)} training examples of {data.name}")


def train_new(config_path, overrides: list[str], run_dir: str | None, data_dir: str | None, reporter: Reporter):
    """`bnexp train CONFIG`: read the config, then train it (train_config). Returns (run directory, summary)."""
    return train_config(config_module.load_config(config_path, overrides), run_dir, data_dir, reporter)


def train_config(config: Config, run_dir: str | None, data_dir: str | None, reporter: Reporter,
                 warm: "Warm | None" = None):
    """Validate everything, then create the run directory and train `config` in this process.

    Config and data are checked before the directory exists, so a bad input leaves nothing.
    `warm` (a warm worker's) keeps datasets loaded and programs compiled between runs.
    Returns (run directory, summary).
    """
    from bnexp import data as data_module
    from bnexp.backend import tensorflow

    if data_dir is not None or config.data.dir is not None:  # absolute, so eval and resume work from anywhere
        config.data.dir = str(Path(data_dir or config.data.dir).expanduser().resolve())
    data = (warm.load if warm else data_module.load)(config.data.dataset, config.data.dir)
    check_fits(config, data)
    tensorflow()  # its import takes seconds: before the run directory exists
    run = rundir.create(rundir.runs_root(), config.name, Path(run_dir) if run_dir else None)
    try:
        run.write_config(config)
        with StopRequest() as stop:  # from here on, Ctrl-C means "stop cleanly and checkpoint"
            return run.path, train_run(config, run, data, reporter, stop, programs=warm and warm.programs)
    finally:
        reporter.stop()
        run.unlock()


def train_resume(run_dir: str, data_dir: str | None, reporter: Reporter, lengths: list[str] = (),
                 warm: "Warm | None" = None):
    """`bnexp train --resume RUN_DIR`: continue from the last checkpoint, under the run's own config.

    `lengths` (`--set train.epochs=N` or `train.steps=N`) extend the run: it goes on to
    the new end and finishes as a run planned that long from the start would have.
    `warm` as in train_config.
    """
    from bnexp import data as data_module

    check_length_keys(lengths)
    run = rundir.open_run(run_dir)
    run.lock()  # before reading its state: another process may be finishing it
    try:
        config = run.read_config()
        if run.read_summary().status == Status.COMPLETED and not lengths:
            raise RunDirError(f"{run.path} has already completed; nothing to resume "
                              "(to train it longer: --set train.epochs=N or train.steps=N)")
        if not run.has_checkpoint():
            raise RunDirError(f"{run.path} has no checkpoint yet (it stopped before its first); start it again instead")
        saved = run.load_checkpoint()  # a corrupt one fails here, before the summary changes
        data = (warm.load if warm else data_module.load)(config.data.dataset, data_dir or config.data.dir)
        check_fits(config, data)
        check_state(saved, Plan.of(config, len(data.x_train)).total_steps)
        for kind in rundir.DIAGNOSTICS_TABLES:  # a corrupt table, like a corrupt metrics file, fails before the summary changes
            run.read_diagnostics(kind)
        run.read_metrics()
        if lengths:
            config, from_tail = extended(config, lengths, run, State.from_checkpoint(saved.state), len(data.x_train))
            if from_tail:
                run.resume_from_tail_checkpoint()
            run.write_config(config)
        with StopRequest() as stop:
            return run.path, train_run(config, run, data, reporter, stop, resume=True, programs=warm and warm.programs)
    finally:
        reporter.stop()
        run.unlock()
