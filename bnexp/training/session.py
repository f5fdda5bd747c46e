"""One training session of a run: its bookkeeping, its signals, and train_run that joins them.

A session begins with the run's summary marked `running` and ends with its final status
(completed, interrupted, diverged, failed) written, whatever stops it: a signal's arrival
during that write is held until it is done, so no status is left `running` by a Ctrl-C.
SIGINT and SIGTERM stop the loop at the end of the current compiled call, with a checkpoint;
a second one stops at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import statistics
import threading
import time
import traceback

import numpy as np

from bnexp import metrics as metrics_module, rundir
from bnexp.config import Config
from bnexp.data import Dataset
from bnexp.errors import DivergedError, Stopped
from bnexp.rundir import Summary
from bnexp.rundir.provenance import describe, environment, now, same_hardware_key
from bnexp.status import Status
from bnexp.training.extension import resume_state
from bnexp.training.loop import Log, Loop, Metrics, Reporter
from bnexp.training.plan import Plan, State
from bnexp.training.programs import Programs
from bnexp.training.trainer import Trainer


class StopRequest:
    """SIGINT/SIGTERM set `signum`; the loop stops at the end of the current compiled call.

    A second signal raises Stopped at once. train_run reads only `signum`: a caller that
    stops runs some other way (a worker told to stop) passes any object with that attribute.
    """

    def __init__(self):
        self.signum = None

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:  # a second signal: the user means it
            raise Stopped(signum)
        self.signum = signum

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class SummaryKeeper:
    """The run's summary: `running` from the session's start, results and status at its end."""

    def __init__(self, run: rundir.RunDir, plan: Plan, log: Log, started: float):
        self.run, self.plan, self.log, self.started = run, plan, log, started
        self.summary = Summary()
        self.state: State | None = None  # known once training has begun

    def begin(self, summary: Summary) -> None:
        self.summary = summary
        self.run.write_summary(summary)

    def end(self, status: str, message: str | None) -> Summary:
        """Write the final summary: the results so far, the status and why. A signal that
        comes meanwhile waits for the write (signals_held): it cannot leave it "running"."""
        with signals_held():
            if self.state is not None:
                self.summary = results(self.summary, self.state, self.plan)
            self.summary = dataclasses.replace(self.summary, status=status, message=message, ended_at=now(),
                                               session_seconds=round(time.time() - self.started, 3))
            if status == Status.COMPLETED:
                self.summary = dataclasses.replace(self.summary, failed_to_learn=metrics_module.failed_to_learn_of(
                    dataclasses.replace(self.summary, failed_to_learn=None).to_json()))
            self.run.write_summary(self.summary)
        # A diverged run's message is `bnexp train`'s error line (cli.finish_training) and a
        # sweep's point line: shown once there, only logged here.
        (self.log.note if status == Status.DIVERGED else self.log.say)(f"{status}" + (f": {message}" if message else ""))
        return self.summary

    def stopped(self, signal: str, message: str) -> Summary:
        """End as interrupted by the signal named `signal` (SIGINT, SIGTERM)."""
        self.summary.signal = signal
        return self.end(Status.INTERRUPTED, message)


def fresh_summary(config: Config, data: Dataset, plan: Plan, env: dict) -> Summary:
    return Summary(
        status=Status.RUNNING, name=config.name, seed=config.seed, total_steps=plan.total_steps,
        steps_per_epoch=plan.steps_per_epoch, batch_size=plan.batch_size, started_at=now(),
        data={"dataset": data.name, "source": data.source,
              "train_examples": len(data.x_train), "test_examples": len(data.x_test),
              # what "failed to learn" is measured against (bnexp.metrics.learning_threshold)
              "test_class_counts": np.bincount(data.y_test).tolist()},
        **env,
    )


def resumed_summary(earlier: Summary, plan: Plan, env: dict) -> Summary:
    """Status `running` again, towards the plan's end; the earlier results stay until there are new ones."""
    return dataclasses.replace(earlier, status=Status.RUNNING, message=None, ended_at=None, signal=None,
                               total_steps=plan.total_steps, **env)


def results(summary: Summary, state: State, plan: Plan) -> Summary:
    """The summary with what `state` has reached: accuracies, steps, timing."""
    last = state.last_eval or {}
    gap = None
    if last.get("train_set_accuracy") is not None:
        gap = last["train_set_accuracy"] - last["test_accuracy"]
    per_epoch = statistics.median(state.epoch_seconds) if state.epoch_seconds else None
    return dataclasses.replace(
        summary,
        test_accuracy=last.get("test_accuracy"),
        test_loss=last.get("test_loss"),
        train_set_accuracy=last.get("train_set_accuracy"),
        train_set_loss=last.get("train_set_loss"),
        generalization_gap=gap,
        best_test_accuracy=state.best_accuracy,
        best_step=state.best_step,
        steps=state.step,
        epochs=round(state.step / plan.steps_per_epoch, 6),
        wall_seconds=round(state.elapsed, 3),
        train_seconds=round(state.train_seconds, 3),
        seconds_per_epoch=round(per_epoch, 4) if per_epoch else None,
        epoch_seconds=[round(t, 4) for t in state.epoch_seconds],
        examples_per_second=round(plan.steps_per_epoch * plan.batch_size / per_epoch, 1) if per_epoch else None,
        sessions=state.sessions,
    )


def fresh_state(run: rundir.RunDir) -> State:
    run.start_metrics()
    return State()


def start_diagnostics(config: Config, trainer: Trainer, data: Dataset, run: rundir.RunDir, resumed_at: int | None):
    """The run's Diagnostics, started, or None when the config does not ask for them."""
    settings = config.diagnostics
    if not (settings.enabled or settings.ics or settings.landscape):
        return None
    from bnexp.diagnostics import Diagnostics

    diagnostics = Diagnostics(trainer.model, settings, data.x_test, run, trainer.objective)
    diagnostics.start(resumed_at)
    return diagnostics


def train_run(config: Config, run: rundir.RunDir, data: Dataset, reporter: Reporter, stop, resume: bool = False,
              programs: Programs | None = None) -> Summary:
    """Train one run in this process, to its end, a stop request or divergence; return the final summary.

    `run` is a locked run directory holding the config (and, to `resume`, a checkpoint);
    `stop` is read for its `signum` at every boundary (a StopRequest sets it). Everything
    this keeps lives in its arguments and the run directory; the only process-wide state
    it touches is TensorFlow's (seeds, determinism), so one process may train many runs
    one after another; with `programs` they share compiled programs where their configs
    allow. Divergence is a result (status `diverged`), not an exception.
    """
    started = time.time()
    plan = Plan.of(config, len(data.x_train))
    log = Log(run, reporter)
    keeper = SummaryKeeper(run, plan, log, started)
    env = environment()
    if resume:
        earlier = run.read_summary()
        note_hardware_change(earlier.hardware, env["hardware"], log)
        keeper.begin(resumed_summary(earlier, plan, env))
    else:
        keeper.begin(fresh_summary(config, data, plan, env))
    log.say(f"{'resuming' if resume else 'starting'} {config.name}: {data.name} from {data.source}, "
            f"{len(data.x_train)} train / {len(data.x_test)} test, {plan.total_steps} steps")
    metrics = Metrics(run, log, reporter)
    try:
        trainer = programs.trainer(config, data, plan, log) if programs else Trainer(config, data, plan)
        state = keeper.state = resume_state(trainer, run, log) if resume else fresh_state(run)
        diagnostics = start_diagnostics(config, trainer, data, run, state.row_start_step if resume else None)
        loop = Loop(config, data, plan, trainer, run, metrics, diagnostics, reporter)
        status = loop.run_to_end(state, stop, started)
        if status == Status.INTERRUPTED:
            loop.checkpoint(state)  # where it stopped, so --resume continues from there
    except DivergedError as e:
        return keeper.end(Status.DIVERGED, str(e))
    except Stopped as e:  # a second signal: stop now, keep the last checkpoint
        keeper.stopped(e.signal, "interrupted twice: stopped at once, without a new checkpoint")
        raise
    except BaseException as e:
        log.note(traceback.format_exc())
        keeper.end(Status.FAILED, f"{type(e).__name__}: {e}")
        raise
    finally:
        with signals_held():
            metrics.close()
    # A second signal from here on waits for the final summary (signals_held), then stops at once.
    with signals_held():
        if status == Status.INTERRUPTED:
            name = signal_name(stop.signum)
            return keeper.stopped(name, f"interrupted by {name} at step {state.step}")
        return keeper.end(Status.COMPLETED, None)


@contextlib.contextmanager
def signals_held():
    """Hold SIGINT and SIGTERM until the block ends, then deliver the first that came to
    the handler before (a StopRequest's: "stop at once"). Around the final summary's
    write, so the status a signal cuts short can never stay "running". Python's handlers
    run in the main thread only; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: arrived.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if arrived:
            signal.raise_signal(arrived[0])


def note_hardware_change(earlier: dict | None, current: dict, log: "Log") -> None:
    """Say in the log when a run resumes on other hardware than its last session's: its
    result then equals the uninterrupted run's within float tolerance, not bit for bit."""
    was, now_key = same_hardware_key(earlier), same_hardware_key(current)
    if was is not None and was != now_key:
        log.say(f"resuming on {describe(now_key)}, not {describe(was)} as before: "
                "the result will match an uninterrupted run within float tolerance, not bit for bit")


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
