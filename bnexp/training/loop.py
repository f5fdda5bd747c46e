"""The training loop over one run's steps, the metrics rows it writes at evaluations, and
what it tells the outside world (Reporter) and the run's log (Log).

Between boundaries (bnexp.training.plan) the loop hands whole stretches of steps to the
compiled programs (bnexp.training.trainer) and Python does nothing; at a boundary it
reports progress, evaluates, records diagnostics, checkpoints and times the epoch.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from bnexp import rundir
from bnexp.config import Config
from bnexp.data import Dataset
from bnexp.errors import DivergedError
from bnexp.status import Status
from bnexp.training.plan import Plan, State, epoch_order, train_subset
from bnexp.training.trainer import Trainer


class Reporter:
    """What the loop tells the outside world; the CLI passes one that draws progress."""

    def start(self, total_steps: int, start_step: int) -> None: ...
    def progress(self, step: int, loss: float, accuracy: float, examples_per_second: float) -> None: ...
    def evaluated(self, row: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


class Log:
    """The run's log.txt, and what of it the reporter shows."""

    def __init__(self, run: rundir.RunDir, reporter: Reporter):
        self.run, self.reporter = run, reporter

    def say(self, text: str) -> None:
        """Log and show."""
        self.run.log(text)
        self.reporter.message(text)

    def note(self, text: str) -> None:
        """Log only."""
        self.run.log(text)


TENSORBOARD_TAGS = {
    "train_loss": "train/loss", "train_accuracy": "train/accuracy",
    "test_loss": "test/loss", "test_accuracy": "test/accuracy", "learning_rate": "learning_rate",
    "train_set_loss": "train_set/loss", "train_set_accuracy": "train_set/accuracy",
}


class Metrics:
    """The run's metrics rows, shown and logged, and their TensorBoard events."""

    def __init__(self, run: rundir.RunDir, log: Log, reporter: Reporter):
        self.run, self.log, self.reporter = run, log, reporter
        self.events = run.scalars()

    def add(self, row: dict, extra_tags: dict[str, float]) -> None:
        self.run.append_metrics(row)
        self.reporter.evaluated(row)
        self.events.add(row["step"], {tag: row[name] for name, tag in TENSORBOARD_TAGS.items()
                                      if row.get(name) is not None} | extra_tags)
        self.log.note(
            f"step {row['step']} epoch {row['epoch']:.2f}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}, "
            f"test loss {row['test_loss']:.4f} acc {row['test_accuracy']:.4f}, lr {row['learning_rate']:.4g}"
            + ("" if row["train_set_accuracy"] is None else
               f", train set loss {row['train_set_loss']:.4f} acc {row['train_set_accuracy']:.4f}")
        )

    def close(self) -> None:
        self.events.close()


class Loop:
    """The training loop over one run's steps: compiled calls between boundaries, and at
    the boundaries progress, evaluation, diagnostics, checkpoints and the epoch clock."""

    def __init__(self, config: Config, data: Dataset, plan: Plan, trainer: Trainer, run: rundir.RunDir,
                 metrics: Metrics, diagnostics, reporter: Reporter):
        self.config, self.data, self.plan, self.trainer, self.run = config, data, plan, trainer, run
        self.metrics, self.diagnostics, self.reporter = metrics, diagnostics, reporter
        subset = train_subset(len(data.x_train), config.train.eval_train_examples)
        self.train_set = (data.x_train[subset], data.y_train[subset])

    def run_to_end(self, state: State, stop, started: float) -> str:
        """Train until the last step ('completed') or a stop request ('interrupted');
        DivergedError at a NaN or infinite loss, or one above train.divergence_loss."""
        plan, order_epoch, order = self.plan, None, None
        # The session's clock starts with train_run: model build and compile count too.
        elapsed_before = state.elapsed
        epoch_start = time.time()
        whole_epoch = state.step % plan.steps_per_epoch == 0  # a resumed partial epoch is not timed
        self.reporter.start(plan.total_steps, state.step)
        while state.step < plan.total_steps:
            if stop.signum is not None:
                return Status.INTERRUPTED
            step, end = state.step, plan.next_boundary(state.step)
            epoch = step // plan.steps_per_epoch
            if epoch != order_epoch:
                order_epoch, order = epoch, epoch_order(self.config.seed, epoch, len(self.data.x_train))
            if end == plan.total_steps and plan.ends_off_grid(self.config.train.unroll):
                self.run.save_checkpoint(self.trainer.variables(), dataclasses.asdict(state), tail=True)
            first = (step - epoch * plan.steps_per_epoch) * plan.batch_size
            indices = order[first:first + (end - step) * plan.batch_size].reshape(end - step, plan.batch_size)
            call_start = time.time()
            self.trainer.run_steps(indices)
            bad = int(self.trainer.first_bad_step.numpy())
            state.train_seconds += time.time() - call_start
            state.step = end
            state.elapsed = elapsed_before + time.time() - started
            if bad >= 0:
                # The run ends at the step whose loss first crossed the limit: the compiled
                # call's later steps (up to `end`) are discarded, never recorded.
                state.step = bad
                raise DivergedError(self._divergence_message(bad))
            self._report_progress(state, call_start, end - step)
            if plan.is_eval(end):
                self._evaluate(state, indices[-1])
            epoch_end = end % plan.steps_per_epoch == 0 and whole_epoch
            if epoch_end:
                state.epoch_seconds.append(time.time() - epoch_start)
            if plan.is_checkpoint(end):
                self.checkpoint(state)
            if epoch_end:  # an epoch's wall time includes its evaluation and checkpoint
                state.epoch_seconds[-1] = time.time() - epoch_start
            if end % plan.steps_per_epoch == 0:
                epoch_start, whole_epoch = time.time(), True
        return Status.COMPLETED

    def checkpoint(self, state: State) -> None:
        self.run.save_checkpoint(self.trainer.variables(), dataclasses.asdict(state))

    def _divergence_message(self, bad_step: int) -> str:
        # last_finite_loss stops at the first bad step: it is that step's loss when the
        # loss passed the limit, and the loss before it when the loss became NaN or infinite.
        last = float(self.trainer.last_finite_loss.numpy())
        t = self.config.train
        what = (f"the training loss reached {last:.4g}, above train.divergence_loss = {t.divergence_loss:g}"
                if last > t.divergence_loss else f"the loss became NaN or infinite (last finite loss {last:.4g})")
        return (f"training diverged at step {bad_step}: {what}; try a lower train.learning_rate "
                f"(now {t.learning_rate:g}), e.g. --set train.learning_rate={t.learning_rate / 10:g}")

    def _report_progress(self, state: State, call_start: float, steps: int) -> None:
        loss_sum, correct = (float(v) for v in self.trainer.totals.numpy())
        seen = state.step - state.row_start_step
        if seen:
            seconds = max(time.time() - call_start, 1e-9)
            self.reporter.progress(state.step, loss_sum / seen, correct / (seen * self.plan.batch_size), steps * self.plan.batch_size / seconds)

    def _evaluate(self, state: State, last_batch: np.ndarray) -> None:
        loss_sum, correct = self.trainer.take_totals()
        seen = state.step - state.row_start_step
        test = self.trainer.evaluator.evaluate(self.data.x_test, self.data.y_test)
        # The same inference-mode pass on training examples: train_accuracy above is a
        # running mean in training mode while the weights moved, so no gap can be read from it.
        on_train = self.trainer.evaluator.evaluate(*self.train_set) if len(self.train_set[1]) else None
        train_set_loss, train_set_accuracy = (on_train.loss, on_train.accuracy) if on_train else (None, None)
        row = {
            "step": state.step,
            "epoch": round(state.step / self.plan.steps_per_epoch, 6),
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / (seen * self.plan.batch_size),
            "train_set_loss": train_set_loss,
            "train_set_accuracy": train_set_accuracy,
            "test_loss": test.loss,
            "test_accuracy": test.accuracy,
            "learning_rate": self.trainer.learning_rate(state.step - 1),
            "elapsed_s": round(state.elapsed, 3),
        }
        state.previous_row_step, state.row_totals = state.row_start_step, [loss_sum, correct]
        state.row_start_step = state.step
        state.last_eval = {"step": state.step, "test_loss": test.loss, "test_accuracy": test.accuracy,
                           "train_set_loss": train_set_loss, "train_set_accuracy": train_set_accuracy}
        if state.best_accuracy is None or test.accuracy > state.best_accuracy:
            state.best_accuracy, state.best_step = test.accuracy, state.step
        tags = {}
        if self.diagnostics:
            tags = self.diagnostics.record(state.step, self.data.x_train[last_batch], self.data.y_train[last_batch], row["learning_rate"])
        self.metrics.add(row, tags)

