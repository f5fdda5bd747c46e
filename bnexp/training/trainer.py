"""The compiled training step: the model, its optimizer and the XLA programs that run it.

Speed comes from three choices, each measured (bench/speed.py):
- the data stays in memory as uint8 and is gathered and normalised inside the step;
- `train.unroll` SGD steps are unrolled into one XLA program (unrolling removes the
  per-step dispatch; more than a few steps makes XLA's compile slow), and a plain graph
  loop runs those programs back to back up to the next boundary (bnexp.training.plan),
  so Python wakes only for progress, evaluation and checkpoints;
- loss and accuracy accumulate in-graph; nothing is read back per step.

TensorFlow is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import numpy as np

from bnexp import rundir
from bnexp.config import Config
from bnexp.data import Dataset
from bnexp.training.plan import Plan


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
        whose program key (bnexp.training.programs.program_key) is this one's: the programs stay
        compiled; weights, optimizer state, loop totals and the program inputs start afresh,
        each to the value a fresh build gives it, so the run ends bit for bit the same."""
        import keras

        from bnexp.model import build_model

        self.config, self.plan = config, plan
        keras.utils.set_random_seed(config.seed)
        fresh = build_model(config.model, config.seed)
        for variable, value in zip(self.model.weights, fresh.weights, strict=True):
            variable.assign(value)
        for variable, value in zip(input_variables(self.model), input_variables(fresh), strict=True):
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


def input_variables(model) -> list:
    """The program-input variables of `model`'s layers (their seeds and settings), in order:
    the variables that hold bnexp.training.programs.program_inputs inside the model."""
    return [v for layer in model.layers if hasattr(layer, "program_inputs") for v in layer.program_inputs()]


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
    input, bnexp.training.programs.program_inputs) where Keras bakes in a constant; the same update,
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

