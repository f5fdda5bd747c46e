"""The training loop: compiled multi-step calls, evaluation, checkpoints, resume.

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

import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bnexp import __version__, rundir
from bnexp.config import Config
from bnexp.data import Dataset
from bnexp.errors import DivergedError, RunFileError

PROGRESS_EVERY = 200  # steps between progress updates (and so between interrupt checks)
TENSORBOARD_TAGS = {
    "train_loss": "train/loss", "train_accuracy": "train/accuracy",
    "test_loss": "test/loss", "test_accuracy": "test/accuracy", "learning_rate": "learning_rate",
}


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

    def next_boundary(self, step: int) -> int:
        every = [PROGRESS_EVERY, self.eval_every, self.steps_per_epoch] + ([self.checkpoint_every] if self.checkpoint_every else [])
        return min([(step // k + 1) * k for k in every] + [self.total_steps])

    def is_eval(self, step: int) -> bool:
        return step % self.eval_every == 0 or step % self.steps_per_epoch == 0 or step == self.total_steps

    def is_checkpoint(self, step: int) -> bool:
        regular = self.checkpoint_every is not None and step % self.checkpoint_every == 0
        return regular or step % self.steps_per_epoch == 0 or step == self.total_steps


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The example order of one epoch: a pure function of (seed, epoch), so resume needs no RNG state."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


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
    sessions: int = 1


class StopRequest:
    """SIGINT/SIGTERM set a flag; the loop stops at the end of the current compiled call."""

    def __init__(self):
        self.signum = None

    def __enter__(self):
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:  # a second Ctrl-C: the user means it
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


class Trainer:
    """The model, optimizer and compiled step functions for one run."""

    def __init__(self, config: Config, data: Dataset, plan: Plan):
        from bnexp.backend import tensorflow

        tf = tensorflow()
        import keras

        from bnexp.evaluate import Evaluator
        from bnexp.model import build_model

        self.tf, self.config, self.data, self.plan = tf, config, data, plan
        keras.utils.set_random_seed(config.seed)
        tf.config.experimental.enable_op_determinism()
        self.model = build_model(config.model, config.seed)
        self.schedule = learning_rate_schedule(config.train, plan.total_steps)
        self.optimizer = make_optimizer(config.train, self.schedule)
        self.optimizer.build(self.model.trainable_variables)
        self.evaluator = Evaluator(self.model)
        self.images = tf.constant(data.x_train)
        self.labels = tf.constant(data.y_train.astype(np.int32))
        # [loss sum, correct count] since the last metrics row, and divergence tracking.
        self.totals = tf.Variable(tf.zeros(2, tf.float64), trainable=False)
        self.last_finite_loss = tf.Variable(float("nan"), trainable=False)
        self.first_bad_step = tf.Variable(tf.constant(-1, tf.int64), trainable=False)
        self._compile()

    def _compile(self):
        tf, unroll, batch = self.tf, self.config.train.unroll, self.plan.batch_size
        variables = self.model.trainable_variables

        def one_step(indices):
            from bnexp.evaluate import pixels

            x = pixels(tf.gather(self.images, indices))
            y = tf.gather(self.labels, indices)
            with tf.GradientTape() as tape:
                logits = self.model(x, training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            step = self.optimizer.iterations
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.float64))
            self.totals.assign_add(tf.stack([tf.cast(loss, tf.float64), correct]))
            finite = tf.math.is_finite(loss)
            self.last_finite_loss.assign(tf.where(finite, loss, self.last_finite_loss))
            first_bad = tf.logical_and(tf.logical_not(finite), self.first_bad_step < 0)
            self.first_bad_step.assign(tf.where(first_bad, tf.cast(step, tf.int64) + 1, self.first_bad_step))

        # PROTOTYPE (issue 15, start-up): one_step traced once and called `unroll` times, which
        # XLA inlines into the same program; tracing it `unroll` times took twice as long.
        traced_step = tf.function(one_step)

        @tf.function(jit_compile=True)
        def unrolled(indices):  # (unroll, batch)
            for i in range(unroll):
                traced_step(indices[i])

        single = tf.function(one_step, jit_compile=True)

        @tf.function(input_signature=[tf.TensorSpec((None, unroll, batch), tf.int32)])
        def run_unrolled(indices):
            for i in tf.range(tf.shape(indices)[0]):
                unrolled(indices[i])

        @tf.function(input_signature=[tf.TensorSpec((None, batch), tf.int32)])
        def run_single(indices):
            for i in tf.range(tf.shape(indices)[0]):
                single(indices[i])

        self._run_unrolled, self._run_single = run_unrolled, run_single

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

    # Checkpoints: one npz with every variable, keyed by its path, plus the loop's state.

    def variables(self) -> dict:
        named = model_variables(self.model)
        named.update({f"optimizer/{i:03d}/{v.name}": v for i, v in enumerate(self.optimizer.variables)})
        named.update({"loop/totals": self.totals, "loop/last_finite_loss": self.last_finite_loss, "loop/first_bad_step": self.first_bad_step})
        return named

    def checkpoint_bytes(self, state: State) -> bytes:
        arrays = {name: np.asarray(v.numpy()) for name, v in self.variables().items()}
        arrays["state"] = np.frombuffer(json.dumps(state.__dict__).encode(), dtype=np.uint8)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def restore(self, path: Path) -> State:
        arrays = load_checkpoint(path)
        assign_named(self.variables(), arrays, path)
        return State(**checkpoint_state(arrays))


def model_variables(model) -> dict:
    """The model's variables (weights and BN statistics) as checkpoint names."""
    return {f"model/{v.path}": v for v in model.weights}


def assign_named(variables: dict, arrays: dict[str, np.ndarray], path: Path) -> None:
    """Load checkpoint arrays into variables, refusing any mismatch in name or shape."""
    for name, variable in variables.items():
        if name not in arrays or arrays[name].shape != tuple(variable.shape):
            raise RunFileError(f"{path} does not match this run's model (variable {name})")
        variable.assign(arrays[name])


def checkpoint_state(arrays: dict[str, np.ndarray]) -> dict:
    """The loop state saved with a checkpoint (step, best accuracy, ...)."""
    return json.loads(arrays["state"].tobytes())


def load_checkpoint(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise RunFileError(f"{path} is missing: the run saved no weights") from None
    except Exception:  # numpy raises many types for a damaged zip
        raise RunFileError(f"{path} is corrupt: not a readable npz archive") from None
    try:
        state = checkpoint_state(arrays) if "state" in arrays else None
    except ValueError:  # JSON and UTF-8 decoding errors alike
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise RunFileError(f"{path} is corrupt: no readable loop state")
    return arrays


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
    momentum = train.momentum if train.optimizer == "momentum" else 0.0
    return keras.optimizers.SGD(learning_rate, momentum=momentum)


def environment() -> dict:
    from bnexp.backend import tensorflow

    tf = tensorflow()
    import keras

    return {
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "bnexp": __version__,
        },
        "git_commit": git_commit(),
        "host": socket.gethostname(),
    }


def git_commit() -> str | None:
    """The checkout's commit (with -dirty for local changes), or None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here, capture_output=True, text=True, timeout=5)
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Run:
    """One training session over a run directory: fresh, or resumed from its checkpoint."""

    def __init__(self, config: Config, data: Dataset, run: rundir.RunDir, reporter: Reporter, env: dict):
        self.config, self.data, self.run, self.reporter, self.env = config, data, run, reporter, env
        self.plan = Plan.of(config, len(data.x_train))
        self.summary: dict = {}
        self._writer = None  # TensorBoard, opened at the first evaluation
        self.diagnostics = None

    def log(self, text: str) -> None:
        self.run.log(text)
        self.reporter.message(text)

    def execute(self, resume: bool = False) -> dict:
        """Train to the end, an interrupt or divergence; return the final summary."""
        self.summary = self._initial_summary(resume)
        self.run.write_json(rundir.SUMMARY, self.summary)
        started = time.time()
        self.log(f"{'resuming' if resume else 'starting'} {self.config.name}: {self.data.name} from {self.data.source}, "
                 f"{len(self.data.x_train)} train / {len(self.data.x_test)} test, {self.plan.total_steps} steps")
        trainer = state = None
        with StopRequest() as stop:  # from here on, Ctrl-C means "stop cleanly and checkpoint"
            try:
                trainer = Trainer(self.config, self.data, self.plan)
                state = self._resume_state(trainer) if resume else self._fresh_state()
                self._start_diagnostics(trainer, state, resume)
                status = self._loop(trainer, state, stop, started)
            except DivergedError as e:  # a result, not a crash: the caller reports it
                return self._finish("diverged", str(e), started, state)
            except KeyboardInterrupt:  # a second Ctrl-C: stop now, keep the last checkpoint
                self._finish("interrupted", "interrupted twice: stopped at once, without a new checkpoint", started, state)
                raise
            except BaseException as e:
                self.run.log(traceback.format_exc())
                self._finish("failed", f"{type(e).__name__}: {e}", started, state)
                raise
            # Still under StopRequest: a second signal cannot cut the final checkpoint and summary.
            message = {"interrupted": f"interrupted by {signal_name(stop.signum)} at step {state.step}"}.get(status)
            return self._finish(status, message, started, state, trainer, stop.signum)

    def _fresh_state(self) -> State:
        self.run.start_metrics()
        return State()

    def _resume_state(self, trainer: Trainer) -> State:
        state = trainer.restore(self.run.file(rundir.CHECKPOINT))
        state.sessions += 1
        rows = [r for r in self.run.read_metrics() if r["step"] <= state.step]
        self.run.rewrite_metrics(rows)  # drop rows written after the checkpoint (e.g. before a kill -9)
        self.log(f"resumed from the checkpoint at step {state.step}")
        return state

    def _loop(self, trainer: Trainer, state: State, stop: StopRequest, started: float) -> str:
        plan, order_epoch, order = self.plan, None, None
        # The session's clock starts with execute(): model build and compile count too.
        session_start, elapsed_before = started, state.elapsed
        epoch_start = time.time()
        whole_epoch = state.step % plan.steps_per_epoch == 0  # a resumed partial epoch is not timed
        self.reporter.start(plan.total_steps, state.step)
        while state.step < plan.total_steps:
            if stop.signum is not None:
                return "interrupted"
            step, end = state.step, plan.next_boundary(state.step)
            epoch = step // plan.steps_per_epoch
            if epoch != order_epoch:
                order_epoch, order = epoch, epoch_order(self.config.seed, epoch, len(self.data.x_train))
            first = (step - epoch * plan.steps_per_epoch) * plan.batch_size
            indices = order[first:first + (end - step) * plan.batch_size].reshape(end - step, plan.batch_size)
            call_start = time.time()
            trainer.run_steps(indices)
            bad = int(trainer.first_bad_step.numpy())
            state.train_seconds += time.time() - call_start
            state.step = end
            state.elapsed = elapsed_before + time.time() - session_start
            if bad >= 0:
                raise DivergedError(self._divergence_message(trainer, bad))
            self._report_progress(trainer, state, call_start, end - step)
            if plan.is_eval(end):
                self._evaluate(trainer, state, indices[-1])
            epoch_end = end % plan.steps_per_epoch == 0 and whole_epoch
            if epoch_end:
                state.epoch_seconds.append(time.time() - epoch_start)
            if plan.is_checkpoint(end):
                self._checkpoint(trainer, state)
            if epoch_end:  # an epoch's wall time includes its evaluation and checkpoint
                state.epoch_seconds[-1] = time.time() - epoch_start
            if end % plan.steps_per_epoch == 0:
                epoch_start, whole_epoch = time.time(), True
        return "completed"

    def _divergence_message(self, trainer: Trainer, bad_step: int) -> str:
        last = float(trainer.last_finite_loss.numpy())
        lr = self.config.train.learning_rate
        return (f"training diverged at step {bad_step}: the loss became NaN or infinite (last finite loss {last:.4g}); "
                f"try a lower train.learning_rate (now {lr:g}), e.g. --set train.learning_rate={lr / 10:g}")

    def _report_progress(self, trainer: Trainer, state: State, call_start: float, steps: int) -> None:
        loss_sum, correct = (float(v) for v in trainer.totals.numpy())
        seen = state.step - state.row_start_step
        if seen:
            seconds = max(time.time() - call_start, 1e-9)
            self.reporter.progress(state.step, loss_sum / seen, correct / (seen * self.plan.batch_size), steps * self.plan.batch_size / seconds)

    def _start_diagnostics(self, trainer: Trainer, state: State, resume: bool) -> None:
        if not self.config.diagnostics.enabled:
            return
        from bnexp.diagnostics import Diagnostics

        self.diagnostics = Diagnostics(trainer.model, self.config.diagnostics, self.data.x_test, self.run.path)
        self.diagnostics.start(resumed_at=state.step if resume else None)

    def _evaluate(self, trainer: Trainer, state: State, last_batch: np.ndarray) -> None:
        loss_sum, correct = trainer.take_totals()
        seen = state.step - state.row_start_step
        test = trainer.evaluator.evaluate(self.data.x_test, self.data.y_test)
        row = {
            "step": state.step,
            "epoch": round(state.step / self.plan.steps_per_epoch, 6),
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / (seen * self.plan.batch_size),
            "test_loss": test.loss,
            "test_accuracy": test.accuracy,
            "learning_rate": trainer.learning_rate(state.step - 1),
            "elapsed_s": round(state.elapsed, 3),
        }
        self.run.append_metrics(row)
        state.row_start_step = state.step
        state.last_eval = {"step": state.step, "test_loss": test.loss, "test_accuracy": test.accuracy}
        if state.best_accuracy is None or test.accuracy > state.best_accuracy:
            state.best_accuracy, state.best_step = test.accuracy, state.step
        self.reporter.evaluated(row)
        tags = {tag: row[name] for name, tag in TENSORBOARD_TAGS.items()}
        if self.diagnostics:
            tags.update(self.diagnostics.record(state.step, self.data.x_train[last_batch], self.data.y_train[last_batch]))
        self._scalars(state.step, tags)
        self.run.log(
            f"step {row['step']} epoch {row['epoch']:.2f}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.4f}, "
            f"test loss {row['test_loss']:.4f} acc {row['test_accuracy']:.4f}, lr {row['learning_rate']:.4g}"
        )

    def _scalars(self, step: int, tags: dict[str, float]) -> None:
        """Every metrics row (and its diagnostics) also goes to RUN_DIR/tb as TensorBoard scalars.

        Written as plain event protos: tf.summary's eager ops cost ten times more per row.
        """
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        if self._writer is None:
            self._writer = EventFileWriter(str(self.run.file(rundir.TENSORBOARD)))
        values = [Summary.Value(tag=tag, simple_value=value) for tag, value in tags.items()]
        self._writer.add_event(Event(wall_time=time.time(), step=step, summary=Summary(value=values)))
        self._writer.flush()

    def _checkpoint(self, trainer: Trainer, state: State) -> None:
        rundir.write_atomic(self.run.file(rundir.CHECKPOINT), trainer.checkpoint_bytes(state))

    def _initial_summary(self, resume: bool) -> dict:
        """Status `running`; a resumed run keeps its earlier results until it has new ones."""
        if resume:
            return self.run.read_json(rundir.SUMMARY) | {"status": "running", "message": None, "ended_at": None, **self.env}
        return {
            "status": "running",
            "name": self.config.name,
            "seed": self.config.seed,
            "message": None,
            "test_accuracy": None,
            "test_loss": None,
            "best_test_accuracy": None,
            "best_step": None,
            "steps": None,
            "total_steps": self.plan.total_steps,
            "epochs": None,
            "steps_per_epoch": self.plan.steps_per_epoch,
            "batch_size": self.plan.batch_size,
            "wall_seconds": None,
            "train_seconds": None,
            "seconds_per_epoch": None,
            "examples_per_second": None,
            "started_at": now(),
            "ended_at": None,
            "data": {"dataset": self.data.name, "source": self.data.source,
                     "train_examples": len(self.data.x_train), "test_examples": len(self.data.x_test)},
            **self.env,
        }

    def _finish(self, status: str, message: str | None, started: float, state: State | None = None,
                trainer: Trainer | None = None, signum: int | None = None) -> dict:
        """Write the final summary (and, when stopping early, a checkpoint of where we are)."""
        s = self.summary
        if state is not None:
            if status == "interrupted" and trainer is not None:
                self._checkpoint(trainer, state)
            last = state.last_eval or {}
            per_epoch = statistics.median(state.epoch_seconds) if state.epoch_seconds else None
            s.update({
                "test_accuracy": last.get("test_accuracy"),
                "test_loss": last.get("test_loss"),
                "best_test_accuracy": state.best_accuracy,
                "best_step": state.best_step,
                "steps": state.step,
                "epochs": round(state.step / self.plan.steps_per_epoch, 6),
                "wall_seconds": round(state.elapsed, 3),
                "train_seconds": round(state.train_seconds, 3),
                "seconds_per_epoch": round(per_epoch, 4) if per_epoch else None,
                "epoch_seconds": [round(t, 4) for t in state.epoch_seconds],
                "examples_per_second": round(self.plan.steps_per_epoch * self.plan.batch_size / per_epoch, 1) if per_epoch else None,
                "sessions": state.sessions,
            })
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        s.update({"status": status, "message": message, "ended_at": now(),
                  "session_seconds": round(time.time() - started, 3)})
        if signum is not None:
            s["signal"] = signal_name(signum)
        self.run.write_json(rundir.SUMMARY, s)
        self.log(f"{status}" + (f": {message}" if message else ""))
        return s


def signal_name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "signal"


def runs_root() -> Path:
    """Where new runs go: $BNEXP_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("BNEXP_RUNS_DIR", "runs"))


def check_fits(config: Config, data: Dataset) -> None:
    from bnexp.errors import ConfigError

    if config.train.batch_size > len(data.x_train):
        raise ConfigError(f"train.batch_size = {config.train.batch_size} exceeds the {len(data.x_train)} training examples of {data.name}")


def train_new(config_path, overrides: list[str], run_dir: str | None, data_dir: str | None, reporter: Reporter):
    """`bnexp train CONFIG`: validate everything, then create the run directory and train.

    Config and data are checked before the directory exists, so a bad input leaves nothing.
    Returns (run directory, summary).
    """
    from bnexp import config as config_module, data as data_module

    config = config_module.load_config(config_path, overrides)
    if data_dir is not None or config.data.dir is not None:  # absolute, so eval and resume work from anywhere
        config.data.dir = str(Path(data_dir or config.data.dir).expanduser().resolve())
    data = data_module.load(config.data.dataset, config.data.dir)
    check_fits(config, data)
    env = environment()  # imports TensorFlow (seconds): before the run directory exists
    run = rundir.create(runs_root(), config.name, Path(run_dir) if run_dir else None)
    try:
        rundir.write_atomic(run.file(rundir.CONFIG), config_module.to_yaml(config))
        return run.path, Run(config, data, run, reporter, env).execute()
    finally:
        reporter.stop()
        run.unlock()


def train_resume(run_dir: str, data_dir: str | None, reporter: Reporter):
    """`bnexp train --resume RUN_DIR`: continue from the last checkpoint, under the run's own config."""
    from bnexp import config as config_module, data as data_module
    from bnexp.errors import RunDirError

    run = rundir.open_run(run_dir)
    run.lock()  # before reading its state: another process may be finishing it
    try:
        config = config_module.load_config(run.file(rundir.CONFIG))
        status = run.read_json(rundir.SUMMARY).get("status")
        if status == "completed":
            raise RunDirError(f"{run.path} has already completed; nothing to resume")
        if not run.file(rundir.CHECKPOINT).exists():
            raise RunDirError(f"{run.path} has no checkpoint yet (it stopped before its first); start it again instead")
        load_checkpoint(run.file(rundir.CHECKPOINT))  # a corrupt one fails here, before the summary changes
        data = data_module.load(config.data.dataset, data_dir or config.data.dir)
        check_fits(config, data)
        return run.path, Run(config, data, run, reporter, environment()).execute(resume=True)
    finally:
        reporter.stop()
        run.unlock()
