"""Resuming a run from its checkpoint, and extending a finished run to a longer plan.

A run extended past its old end must finish as a run planned that long from the start
would have: the metrics row written at the old end is reopened when the new plan has no
evaluation there, and an old end whose last steps ran as other compiled programs than the
longer run's is replayed from the tail checkpoint saved at the start of its last call
(bnexp.training.plan.Plan.ends_off_grid).
"""

from __future__ import annotations

from bnexp import config as config_module, rundir
from bnexp.config import Config
from bnexp.errors import RunFileError
from bnexp.training.loop import Log
from bnexp.training.plan import Plan, State
from bnexp.training.trainer import Trainer


def resume_state(trainer: Trainer, run: rundir.RunDir, log: Log) -> State:
    """Load the checkpoint into `trainer`; drop metrics rows written after it (e.g. before a kill -9).

    A run extended past its old end reopens the row written there when its new plan has no
    evaluation at that step (see reopen_last_row)."""
    saved = run.load_checkpoint()
    saved.restore(trainer.variables())
    state = State.from_checkpoint(saved.state)
    state.sessions += 1
    rows = [r for r in run.read_metrics() if r["step"] <= state.step]
    if not trainer.plan.is_eval(state.row_start_step):
        rows = reopen_last_row(state, rows, trainer)
    run.rewrite_metrics(rows)
    log.say(f"resumed from the checkpoint at step {state.step}")
    return state


def reopen_last_row(state: State, rows: list[dict], trainer: Trainer) -> list[dict]:
    """Take back the metrics row of the old end, which a run planned this long from the start
    would not have written: its loss and accuracy sums go back into the loop's running totals
    (so the next row's means cover its steps too, summed in the same order), and the best and
    last evaluation are those of the rows before it. Returns the rows kept."""
    trainer.totals.assign(state.row_totals)
    state.row_start_step = state.previous_row_step
    kept = [r for r in rows if r["step"] <= state.row_start_step]
    best = None
    for row in kept:  # the first of the best, as the loop keeps it
        if best is None or row["test_accuracy"] > best["test_accuracy"]:
            best = row
    state.best_accuracy, state.best_step = (best["test_accuracy"], best["step"]) if best else (None, None)
    state.last_eval = {k: kept[-1][k] for k in ("step", "test_loss", "test_accuracy")} if kept else None
    return kept


def check_state(saved: rundir.Checkpoint, total_steps: int) -> None:
    """Refuse a checkpoint whose loop state this run cannot have written, before anything
    of the run is rewritten: RunFileError, one line, naming the file."""
    problem = rundir.checkpoint_state_problem(saved.state, total_steps)
    if problem:
        raise RunFileError(f"corrupt checkpoint {saved.path}: {problem}")


LENGTH_KEYS = ("train.epochs", "train.steps")


def check_length_keys(lengths: list[str]) -> None:
    """Resuming changes nothing but the length: UsageError for any other --set."""
    from bnexp.errors import UsageError

    for assignment in lengths:
        key = assignment.partition("=")[0].strip()
        if key not in LENGTH_KEYS:
            raise UsageError(f"--resume takes only --set train.epochs=N or train.steps=N (the run's length), not {key!r}")


def extended(config: Config, lengths: list[str], run: rundir.RunDir, state: State,
             train_examples: int) -> tuple[Config, bool]:
    """`config` with the new length `lengths` set, if the run can end exactly as a run
    planned that long from the start, and whether it must continue from its tail
    checkpoint: an old end whose last steps ran as other compiled programs than the longer
    run's replays them from the start of its last call. UsageError (one line) for a
    schedule that depends on the total (cosine), a length it has already trained, and what
    a run of an older bnexp lacks: the tail checkpoint, or the sums of a metrics row to reopen."""
    from bnexp.errors import UsageError

    raw = config.model_dump(mode="json")
    for assignment in lengths:
        config_module.apply_override(raw, assignment)
    longer = config_module.validate(raw, f"--set {' '.join(lengths)}")
    old, new = Plan.of(config, train_examples), Plan.of(longer, train_examples)
    if new.total_steps <= state.step:
        raise UsageError(f"{run.path} has trained {state.step} steps; {' '.join(lengths)} gives {new.total_steps}: "
                         f"extending needs more than {state.step}")
    if config.train.schedule.kind == "cosine" and new.total_steps != old.total_steps:
        raise UsageError(f"{run.path} cannot be extended: train.schedule.kind=cosine depends on the total number of steps, "
                         f"so its first {state.step} steps differ from those of a run planned {new.total_steps} steps long")
    start = new.previous_boundary(state.step)
    from_tail = new.next_boundary(start) != state.step and (state.step - start) % config.train.unroll != 0
    if from_tail:
        tail = State.from_checkpoint(run.load_checkpoint(tail=True).state) if run.has_tail_checkpoint() else None
        if tail is None or tail.step != start:
            raise UsageError(f"{run.path} cannot be extended: it ended at step {state.step}, {state.step - start} steps after "
                             f"the boundary at {start}, not a multiple of train.unroll={config.train.unroll}, and it has no "
                             f"checkpoint at step {start} to replay them from (runs of bnexp 0.1 keep none; "
                             "train.unroll=1 runs extend from any step)")
        state = tail
    if not new.is_eval(state.row_start_step) and state.row_totals is None:
        raise UsageError(f"{run.path} cannot be extended: its checkpoint (of an older bnexp) lacks the sums of its last metrics row, "
                         f"at step {state.row_start_step}, which a run of {new.total_steps} steps would not have written")
    return longer, from_tail
