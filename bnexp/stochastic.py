"""Layers that draw random numbers in training: dropout and Santurkar et al.'s noisy BN.

Both draw from TensorFlow's stateless generators, keyed on (the layer's `seed`, its own
training-step counter): a layer's noise is a pure function of the run seed and the step.
The counter is a non-trainable int64 weight named `step` (as BatchRenorm's), so it is in
`model.weights`, hence in every checkpoint, and a resumed run draws exactly what an
uninterrupted one would. Anything that calls the model in training mode outside the
training step (diagnostics, Santurkar's measurements) must put the counter back, as it
puts the BN moving statistics back; between such restores every call at the same step
draws the same noise, so a measurement sees one fixed network.

The numbers drawn for a given (seed, step) also depend on whether the call is compiled:
TensorFlow's XLA implementation of the stateless generators differs from its kernels' (for
"philox" too). bnexp's training step is always XLA-compiled, so runs and resumes agree; an
eager measurement at step t sees other (equally distributed) masks than training did.

In inference both layers are the identity and draw nothing.
"""

from __future__ import annotations

import math
import numbers

from bnexp.backend import tensorflow

tf = tensorflow()

import keras  # noqa: E402
from keras import ops  # noqa: E402

from bnexp.norm import check_number, upcast  # noqa: E402

# Named, not "auto_select", whose choice may differ between devices and versions.
RNG = "philox"


def input_variable(value, dtype):
    """A variable the compiled step reads instead of a constant, so that a run that differs
    only in `value` reuses the program (bnexp.training.programs.Programs). A plain tf.Variable, not a
    Keras weight: it is no part of `model.weights`, so checkpoints keep the keys they had
    (the value comes from the config, not from the checkpoint)."""
    return tf.Variable(value, dtype=dtype, trainable=False)


class StepSeeded(keras.layers.Layer):
    """A layer whose random draws at training step t are seeded by (seed, t) alone.

    The seed is a variable (`program_inputs`): its draws are integer arithmetic, so they
    are the same bits whether the seed is a variable or a constant.
    """

    def __init__(self, seed, **kwargs):
        super().__init__(**kwargs)
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), not {seed!r}")
        self.seed = int(seed)
        self.seed_input = input_variable(self.seed, tf.int64)

    def program_inputs(self) -> list:
        """The variables holding this layer's settings for the compiled step, in a fixed order."""
        return [self.seed_input]

    def build(self, input_shape):
        self.step = self.add_weight(shape=(), initializer="zeros", dtype="int64", trainable=False, name="step", autocast=False)

    def seeds(self, count: int, step=None):
        """`count` independent stateless seeds (count, 2) for training step `step` (default: the current one)."""
        step = self.step if step is None else step
        key = ops.stack([ops.convert_to_tensor(self.seed_input), ops.cast(step, "int64")])
        return tf.random.experimental.stateless_split(key, num=count, alg=RNG)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class Dropout(StepSeeded):
    """Inverted dropout (Srivastava et al. 2014, as implemented by TensorFlow's
    `tf.nn.experimental.stateless_dropout`, which Keras' own Dropout also calls): in training
    each element is kept with probability 1 − rate and scaled by 1 / (1 − rate), so its
    expectation is unchanged; in inference the identity.

    Keras' `keras.layers.Dropout` draws from a `SeedGenerator` whose state is not among
    `model.weights` (bnexp's checkpoint), so a resumed run would draw other masks; this layer
    keys the same TensorFlow op on (seed, step) instead.
    """

    def __init__(self, rate, seed, **kwargs):
        super().__init__(seed, **kwargs)
        check_number("rate", rate, lambda r: 0 <= r < 1, "a number in [0, 1)")
        self.rate = float(rate)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        seed = self.seeds(1)[0]
        self.step.assign_add(1)
        return tf.nn.experimental.stateless_dropout(inputs, rate=self.rate, seed=seed, rng_alg=RNG)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class BatchNormNoise(StepSeeded):
    """Santurkar, Tsipras, Ilyas & Madry (2018), "How Does Batch Normalization Help
    Optimization?", section 2.1: "noisy" BatchNorm. Placed after a BN layer, in training it
    perturbs "each activation for each sample in the batch using i.i.d. noise sampled from a
    non-zero mean and non-unit variance distribution", a distribution that "changes at each
    time step", so the next layer's input distribution shifts all the time (the paper's test
    of whether a stable input distribution is what makes BN work).

    The distribution, with s = `scale` (s = 0: the identity). At training step t, each unit j
    gets its own noise distribution:

        mu_tj  ~ U(−s, s)                         mean of the additive noise
        sd_tj  ~ U(0, s)                          its standard deviation
        log rho_tj ~ U(−log(1 + s), log(1 + s))   mean of the multiplicative noise
        tau_tj ~ U(0, s)                          its standard deviation

    and each example i draws its own pair from it:

        a_tij ~ N(rho_tj, tau_tj²),  b_tij ~ N(mu_tj, sd_tj²),   y_ij = a_tij · x_ij + b_tij.

    For a BN output x (mean 0, variance 1 over the batch, γ = 1, β = 0) unit j then has mean
    mu_tj and variance rho_tj² + tau_tj² + sd_tj²: non-zero and non-unit, new every step.

    Choices the paper's main text leaves open, and which are ours: that the noise is both
    multiplicative and additive (a scale and a shift), the uniform laws of the per-step
    parameters and their ranges, Gaussian per-example draws, one knob s for all four ranges
    (log-symmetric for the scale, so it shrinks as often as it grows), and that the
    distribution is redrawn independently at every step (not a random walk). The exact
    schedule of the paper's appendix could not be checked against its text while writing
    this; see docs/reference.md.

    Draws are seeded by (seed, step) (see the module docstring): deterministic and resumable.
    `noise_parameters(step)` returns the per-step, per-unit parameters the call uses.
    """

    def __init__(self, scale, seed, **kwargs):
        super().__init__(seed, **kwargs)
        check_number("scale", scale, lambda s: 0 <= s < math.inf, "a number >= 0")
        self.scale = float(scale)
        # s and log(1 + s) as variables (float32, rounded from Python's float64 as a constant would be).
        self.scale_input = input_variable(self.scale, tf.float32)
        self.log_range_input = input_variable(math.log1p(self.scale), tf.float32)

    def program_inputs(self) -> list:
        return super().program_inputs() + [self.scale_input, self.log_range_input]

    def noise_parameters(self, step, units: int, dtype="float32") -> dict:
        """The noise distribution of each of `units` units at training step `step`: mu, sd, rho, tau."""
        seeds = self.seeds(6, step)
        s, log_range = ops.cast(self.scale_input, dtype), ops.cast(self.log_range_input, dtype)

        def uniform(seed, low, high):
            return tf.random.stateless_uniform((units,), seed=seed, minval=low, maxval=high, dtype=dtype, alg=RNG)

        return {
            "mu": uniform(seeds[0], -s, s),
            "sd": uniform(seeds[1], 0.0, s),
            "rho": ops.exp(uniform(seeds[2], -log_range, log_range)),
            "tau": uniform(seeds[3], 0.0, s),
        }

    def call(self, inputs, training=False):
        if not training or self.scale == 0:
            return inputs
        x = upcast(inputs)
        shape = ops.shape(x)
        p = self.noise_parameters(self.step, x.shape[-1], x.dtype)
        seeds = self.seeds(6)
        a = p["rho"] + p["tau"] * tf.random.stateless_normal(shape, seed=seeds[4], dtype=x.dtype, alg=RNG)
        b = p["mu"] + p["sd"] * tf.random.stateless_normal(shape, seed=seeds[5], dtype=x.dtype, alg=RNG)
        self.step.assign_add(1)
        return ops.cast(a * x + b, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def run_layers(model, x, *, training: bool, stochastic: bool = True, inputs_of=()):
    """`model`'s layers applied in order (a Sequential's forward pass), with the normalisation
    layers in `training` mode and the layers above (dropout, noise) on only if `stochastic`.

    `bnexp eval --stats batch` and PreciseBN want BN's batch statistics without training's
    noise: `training=True, stochastic=False`. Returns the output, and with `inputs_of` (layers
    of `model`) also the list of their inputs, as a probe model would.
    """
    captured = {}
    for layer in model.layers:
        if layer in inputs_of:
            captured[id(layer)] = x
        x = layer(x, training=training and (stochastic or not isinstance(layer, StepSeeded)))
    if inputs_of:
        return x, [captured[id(layer)] for layer in inputs_of]
    return x
