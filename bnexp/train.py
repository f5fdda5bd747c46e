"""Training: compiled multi-step calls, evaluation, checkpoints, resume.

Speed comes from three choices, each measured (bench/speed.py):
- the data stays in memory as uint8 and is gathered and normalised inside the step;
- `train.unroll` SGD steps are unrolled into one XLA program (unrolling removes the
  per-step dispatch; more than a few steps makes XLA's compile slow), and a plain graph
  loop runs those programs back to back up to the next boundary, so Python wakes only
  for progress, evaluation and checkpoints;
- loss and accuracy accumulate in-graph; nothing is read back per step.

Boundaries (progress, evaluation, checkpoint, epoch end) sit at fixed step numbers, so
a resumed run cuts the steps into exactly the same calls as an uninterrupted one and,
with TensorFlow's deterministic ops, ends bit for bit the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import signal
import statistics
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bnexp import config as config_module, metrics as metrics_module, rundir
from bnexp.config import Config
from bnexp.data import Dataset
from bnexp.errors import ConfigError, DivergedError, RunDirError, RunFileError, Stopped
from bnexp.rundir import Summary
from bnexp.rundir.provenance import describe, environment, now, same_hardware_key
from bnexp.status import Status

PROGRESS_EVERY = 200  # steps between progress updates (and so between interrupt checks)
TENSORBOARD_TAGS = {
    "train_loss": "train/loss", "train_accuracy": "train/accuracy",
    "test_loss": "test/loss", "test_accuracy": "test/accuracy", "learning_rate": "learning_rate",
    "train_set_loss": "train_set/loss", "train_set_accuracy": "train_set/accuracy",
}
TRAIN_SUBSET_SEED = 0  # fixed, not the run's seed: every run of a dataset evaluates the same examples


class Reporter:
    """What the loop tells the outside world; the CLI passes one that draws progress."""

    def start(self, total_steps: int, start_step: int) -> None: ...
    def progress(self, step: int, loss: float, accuracy: float, examples_per_second: float) -> None: ...
    def evaluated(self, row: dict) -> None: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


@dataclass
class Plan:
    """Step counts derived from the config and the data."""

    steps_per_epoch: int
    total_steps: int
    eval_every: int
    checkpoint_every: int | None
    batch_size: int

    @classmethod
    def of(cls, config: Config, train_examples: int) -> "Plan":
        t = config.train
        steps_per_epoch = train_examples // t.batch_size  # a partial batch would skew BN statistics: drop it
        total = t.steps if t.steps is not None else t.epochs * steps_per_epoch
        return cls(steps_per_epoch, total, t.eval_every or steps_per_epoch, t.checkpoint_every, t.batch_size)

    def periods(self) -> list[int]:
        """Every interval of boundaries but the end: progress, evaluation, epoch, checkpoint."""
        return [PROGRESS_EVERY, self.eval_every, self.steps_per_epoch] + ([self.checkpoint_every] if self.checkpoint_every else [])

    def next_boundary(self, step: int) -> int:
        return min([(step // k + 1) * k for k in self.periods()] + [self.total_steps])

    def previous_boundary(self, step: int) -> int:
        """The last boundary before `step` (0: the start)."""
        return max((step - 1) // k * k for k in self.periods())

    def natural_boundary(self, step: int) -> int:
        """The next boundary after `step` that the periods set, whatever the run's length."""
        return min((step // k + 1) * k for k in self.periods())

    def ends_off_grid(self, unroll: int) -> bool:
        """Whether the last compiled call ends where a longer run would not end a call, after
        steps left over from whole unrolled calls: a longer run runs those steps inside
        unrolled programs, which XLA may fuse differently (BN's moving averages then differ
        in the last bit), so extending must replay them from the call's start."""
        start = self.previous_boundary(self.total_steps)
        return self.natural_boundary(start) != self.total_steps and (self.total_steps - start) % unroll != 0

    def is_eval(self, step: int) -> bool:
        return step % self.eval_every == 0 or step % self.steps_per_epoch == 0 or step == self.total_steps

    def is_checkpoint(self, step: int) -> bool:
        regular = self.checkpoint_every is not None and step % self.checkpoint_every == 0
        return regular or step % self.steps_per_epoch == 0 or step == self.total_steps


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The example order of one epoch: a pure function of (seed, epoch), so resume needs no RNG state."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


def train_subset(n_train: int, wanted: int) -> np.ndarray:
    """Indices of the training examples evaluated for the train-test gap, in ascending order.

    The first `wanted` of one permutation drawn with a fixed seed, independent of the
    run's seed: every run of a dataset measures the same examples (so gaps compare
    across runs), a smaller subset is part of a larger one, and a dataset stored in
    class order would still give a subset of every class.
    """
    order = np.random.default_rng(TRAIN_SUBSET_SEED).permutation(n_train)
    return np.sort(order[:min(wanted, n_train)])


@dataclass
class State:
    """Everything besides TensorFlow variables that a checkpoint must restore."""

    step: int = 0
    elapsed: float = 0.0  # wall seconds of training so far, over all sessions of this run
    train_seconds: float = 0.0
    epoch_seconds: list = field(default_factory=list)
    best_accuracy: float | None = None
    best_step: int | None = None
    last_eval: dict | None = None
    row_start_step: int = 0  # the step of the previous metrics row: the running means start there
    previous_row_step: int = 0  # the step of the row before it, and the sums that row was made of:
    row_totals: list | None = None  # a longer run's extension takes a row at the old end back with them
    sessions: int = 1

    @classmethod
    def from_checkpoint(cls, saved: dict) -> "State":
        """The state a checkpoint saved; keys of other bnexp versions are left out."""
        return cls(**{k: v for k, v in saved.items() if k in cls.__dataclass_fields__})


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


class Trainer:
    """The model, optimizer and compiled step functions for one config and dataset.

    Holds TensorFlow state and the settings it was compiled for, nothing of a session:
    where a run stands (State), what it has written and what it reports live around it.
    """

    def __init__(self, config: Config, data: Dataset, plan: Plan):
        from bnexp.backend import tensorflow

        tf = tensorflow()
        import keras

        from bnexp.evaluate import Evaluator
        from bnexp.model import build_model
        from bnexp.regularize import Objective

        self.tf, self.config, self.plan = tf, config, plan
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
        self.model = build_model(config.model, config.seed)
        self.objective = Objective.of(self.model, config.train, config.seed)  # trained variables, masks, weight decay
        self.schedule = learning_rate_schedule(config.train, plan.total_steps)
        self.optimizer = make_optimizer(config.train, self.schedule)
        self.optimizer.build(self.objective.variables)
        self._fresh_optimizer = [v.numpy() for v in self.optimizer.variables]
        self.evaluator = Evaluator(self.model)
        self.images = tf.constant(data.x_train)
        self.labels = tf.constant(data.y_train.astype(np.int32))
        # [loss sum, correct count] since the last metrics row, and divergence tracking:
        # the first step whose loss is NaN, infinite or above train.divergence_loss, and
        # the last finite loss up to it.
        self.totals = tf.Variable(tf.zeros(2, tf.float64), trainable=False)
        self.last_finite_loss = tf.Variable(float("nan"), trainable=False)
        self.first_bad_step = tf.Variable(tf.constant(-1, tf.int64), trainable=False)
        self.divergence_loss = tf.Variable(config.train.divergence_loss, dtype=tf.float32, trainable=False)  # an input
        self._compile()

    def _compile(self):
        from bnexp.model import forward, predicted_class

        tf, unroll, batch = self.tf, self.config.train.unroll, self.plan.batch_size
        limit = self.divergence_loss
        objective = self.objective
        variables = objective.variables

        def one_step(indices):
            y = tf.gather(self.labels, indices)
            with tf.GradientTape() as tape:
                logits, losses = forward(self.model, tf.gather(self.images, indices), y, training=True)
                loss = tf.reduce_mean(losses)  # recorded as train_loss: the cross-entropy, without the penalty
                total = objective.penalized(loss)
            self.optimizer.apply(objective.masked(tape.gradient(total, variables)), variables)
            return loss, logits, y

        def record(steps, first_step):
            """The loop's sums and divergence tracking over one program's steps, in step order.

            Done once per program, not once per step: XLA runs each small fused op as a
            kernel of its own, and one argmax and one chain of scalar updates per program
            instead of per step took the 4-step program from 117.2 to 113.9 ms per 200
            steps (medians of 150 alternating calls, paper MLP, 2026-11-27). The arithmetic
            is the per-step one, in the same order, so everything recorded is the same to
            the bit: the f64 loss sum adds one step's loss after the other."""
            losses = [loss for loss, _, _ in steps]
            hits = tf.equal(predicted_class(tf.concat([logits for _, logits, _ in steps], 0)), tf.concat([y for _, _, y in steps], 0))
            correct = tf.reduce_sum(tf.reshape(tf.cast(hits, tf.float64), (len(steps), batch)), axis=1)
            totals, last, bad = self.totals.read_value(), self.last_finite_loss.read_value(), self.first_bad_step.read_value()
            for i, loss in enumerate(losses):
                totals = totals + tf.stack([tf.cast(loss, tf.float64), correct[i]])
                finite = tf.math.is_finite(loss)
                before_bad = bad < 0
                last = tf.where(tf.logical_and(finite, before_bad), loss, last)  # the last finite loss up to the first bad step
                healthy = tf.logical_and(finite, loss <= limit)
                bad = tf.where(tf.logical_and(tf.logical_not(healthy), before_bad), tf.cast(first_step, tf.int64) + i + 1, bad)
            self.totals.assign(totals)
            self.last_finite_loss.assign(last)
            self.first_bad_step.assign(bad)

        # one_step is traced once and called `unroll` times; XLA inlines the calls into one
        # program. Tracing it `unroll` times took twice as long (bench/profile_train.py).
        traced_step = tf.function(one_step)

        def steps_program(count):
            @tf.function(jit_compile=True)
            def program(indices):  # (count, batch)
                first_step = tf.identity(self.optimizer.iterations)  # read before any step of this program
                record([traced_step(indices[i]) for i in range(count)], first_step)
            return program

        unrolled, single = steps_program(unroll), steps_program(1)

        @tf.function(input_signature=[tf.TensorSpec((None, unroll, batch), tf.int32)])
        def run_unrolled(indices):
            for i in tf.range(tf.shape(indices)[0]):
                unrolled(indices[i])

        @tf.function(input_signature=[tf.TensorSpec((None, batch), tf.int32)])
        def run_single(indices):
            for i in tf.range(tf.shape(indices)[0]):
                single(indices[i][None])

        self._run_unrolled, self._run_single = run_unrolled, run_single

    def start(self, config: Config, plan: Plan) -> None:
        """Make this trainer as `Trainer(config, data, plan)` would build it, for a config
        whose program key (bnexp.config.program_key) is this one's: the programs stay
        compiled; weights, optimizer state, loop totals and the program inputs start afresh,
        each to the value a fresh build gives it, so the run ends bit for bit the same."""
        import keras

        from bnexp.model import build_model

        self.config, self.plan = config, plan
        keras.utils.set_random_seed(config.seed)
        fresh = build_model(config.model, config.seed)
        for variable, value in zip(self.model.weights, fresh.weights, strict=True):
            variable.assign(value)
        for variable, value in zip(program_inputs(self.model), program_inputs(fresh), strict=True):
            variable.assign(value)  # dropout and noise seeds, the noise scale
        for variable, value in zip(self.optimizer.variables, self._fresh_optimizer, strict=True):
            variable.assign(value)
        self.schedule = learning_rate_schedule(config.train, plan.total_steps)
        if not callable(self.schedule):  # the rate is an input: a variable of the optimizer's
            self.optimizer.learning_rate = self.schedule
        if hasattr(self.optimizer, "momentum_input"):
            self.optimizer.momentum_input.assign(config.train.momentum)
        if self.objective.weight_decay_input is not None:
            self.objective.weight_decay_input.assign(config.train.weight_decay)
        self.objective.weight_decay = config.train.weight_decay
        self.divergence_loss.assign(config.train.divergence_loss)
        self.totals.assign(self.tf.zeros(2, self.tf.float64))
        self.last_finite_loss.assign(float("nan"))
        self.first_bad_step.assign(-1)

    def run_steps(self, indices: np.ndarray) -> None:
        """Train on `indices` (steps, batch): whole unrolled calls, then single steps."""
        unroll = self.config.train.unroll
        whole = len(indices) // unroll * unroll
        if whole:
            self._run_unrolled(indices[:whole].reshape(-1, unroll, self.plan.batch_size))
        if whole < len(indices):
            self._run_single(indices[whole:])

    def take_totals(self) -> tuple[float, float]:
        """Read and reset the in-graph sums: (loss sum, correct count) since the last call."""
        loss_sum, correct = self.totals.numpy()
        self.totals.assign(self.tf.zeros(2, self.tf.float64))
        return float(loss_sum), float(correct)

    def learning_rate(self, step: int) -> float:
        """The rate used by step `step` (0-based), as the optimizer computes it."""
        value = self.schedule(step) if callable(self.schedule) else self.schedule
        return float(np.asarray(value))

    def variables(self) -> dict:
        """Every variable a checkpoint holds, by its checkpoint name."""
        named = rundir.model_variables(self.model)
        named.update({f"optimizer/{i:03d}/{v.name}": v for i, v in enumerate(self.optimizer.variables)})
        named.update({"loop/totals": self.totals, "loop/last_finite_loss": self.last_finite_loss, "loop/first_bad_step": self.first_bad_step})
        return named


def program_inputs(model) -> list:
    """The program-input variables of `model`'s layers (their seeds and settings), in order."""
    return [v for layer in model.layers if hasattr(layer, "program_inputs") for v in layer.program_inputs()]


class Programs:
    """Trainers kept from run to run in one process (a warm worker), by program key: a run
    whose config differs from an earlier one's only in program inputs (bnexp.config.program_inputs:
    seed, learning rate, momentum, weight decay, noise scale, divergence threshold) trains on
    that run's compiled programs.
    `reused` counts the runs that did."""

    def __init__(self, keep: int = 4):
        self.keep, self.reused = keep, 0
        self.trainers: dict[str, Trainer] = {}  # oldest first

    def trainer(self, config: Config, data: Dataset, plan: Plan, log: "Log") -> Trainer:
        key = f"{data.name} {data.source} " + config_module.program_key(config)
        trainer = self.trainers.pop(key, None)
        if trainer is None:
            trainer = Trainer(config, data, plan)
        else:
            trainer.start(config, plan)
            self.reused += 1
            log.note(f"reusing compiled programs (this process's reuse {self.reused})")
        self.trainers[key] = trainer
        while len(self.trainers) > self.keep:  # memory: each holds a model, its data and its programs
            del self.trainers[next(iter(self.trainers))]
        return trainer


def learning_rate_schedule(train, total_steps: int):
    import keras

    lr, s = train.learning_rate, train.schedule
    if s.kind == "step":
        return keras.optimizers.schedules.ExponentialDecay(lr, s.step_size, s.gamma, staircase=True)
    if s.kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr, max(total_steps, 1), alpha=s.final_fraction)
    return lr


def make_optimizer(train, learning_rate):
    import keras

    if train.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    if train.optimizer == "momentum" and train.momentum != 0:
        return momentum_sgd(learning_rate, train.momentum)
    return keras.optimizers.SGD(learning_rate)


def momentum_sgd(learning_rate, momentum: float):
    """Keras' SGD with (non-Nesterov) momentum μ, μ a variable the step reads (a program
    input, bnexp.config.program_inputs) where Keras bakes in a constant; the same update,
    m ← μ·m − η·g, w ← w + m, in the same operations as Keras' SGD.update_step. The
    variable is no optimizer variable, so checkpoints keep the keys they had."""
    import keras
    from keras import ops

    class MomentumSGD(keras.optimizers.SGD):
        def __init__(self):
            super().__init__(learning_rate, momentum=momentum)
            self.momentum_input = self.tf_variable(momentum)

        @staticmethod
        def tf_variable(value):
            from bnexp.backend import tensorflow

            return tensorflow().Variable(value, dtype="float32", trainable=False)

        def update_step(self, gradient, variable, learning_rate):
            learning_rate = ops.cast(learning_rate, variable.dtype)
            gradient = ops.cast(gradient, variable.dtype)
            m = self.momentums[self._get_variable_index(variable)]
            mu = ops.cast(self.momentum_input, variable.dtype)
            self.assign(m, ops.subtract(ops.multiply(m, mu), ops.multiply(gradient, learning_rate)))
            self.assign_add(variable, m)

    return MomentumSGD()


# --- the session's jobs: its log, its summary, its metrics and events, its loop ----------


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


def fresh_state(run: rundir.RunDir) -> State:
    run.start_metrics()
    return State()


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


def exit_status(summary: Summary) -> tuple[int, str]:
    """The exit code of `bnexp train` for a run that ended with `summary`, and its one-line error."""
    from bnexp.errors import signal_exit_code

    if summary.status == Status.DIVERGED:
        return DivergedError.exit_code, summary.message or str(Status.DIVERGED)
    if summary.status == Status.INTERRUPTED:
        return signal_exit_code(summary.signal), ""
    return 0, ""


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


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
