"""The recurrent network's LSTM, plain, with recurrent batch normalization, or with layer norm.

`LSTM` reads a (batch, T, D) sequence and returns its last hidden state h_T; bnexp.model
puts the image-to-sequence reshape before it and the dense head after it. The gates are
ordered (f, i, o, g) as in Cooijmans et al.'s eq. 6; h_0 = c_0 = 0; the forget gate's bias
starts at 1 (their section 5, and Keras' unit_forget_bias), the others at 0.

Plain (`norm="none"`), Hochreiter & Schmidhuber (1997) as Cooijmans et al. write it (eq. 1-3):

    (f̃, ĩ, õ, g̃) = W_h h_{t−1} + W_x x_t + b
    c_t = σ(f̃) ⊙ c_{t−1} + σ(ĩ) ⊙ tanh(g̃)
    h_t = σ(õ) ⊙ tanh(c_t)

Recurrent batch normalization (`norm="batch"`): Cooijmans, Ballas, Laurent, Gülçehre &
Courville (2016), "Recurrent Batch Normalization", eq. 6-8:

    (f̃, ĩ, õ, g̃) = BN(W_h h_{t−1}; γ_h, β_h) + BN(W_x x_t; γ_x, β_x) + b
    c_t = σ(f̃) ⊙ c_{t−1} + σ(ĩ) ⊙ tanh(g̃)
    h_t = σ(õ) ⊙ tanh(BN(c_t; γ_c, β_c))

- the input-to-hidden and hidden-to-hidden terms are normalised separately, and "β_h and
  β_x are set to zero" (b covers them): those two BNs have no β at all; the cell's BN keeps β_c;
- statistics are kept per time step (section 3): each step t has its own batch statistics
  in training and its own population statistics (moving averages, `TimeBatchNorm`) for
  inference; for t ≥ T_max (`t_max`, default the sequence length) the statistics of the
  last kept step are used ("generalizing the model to sequences longer than T_max");
- γ starts at `gamma_init` = 0.1 for all three (section 4: γ = 1 saturates the tanh's
  gradient early; 0.1 is their finding), configurable.

Departure: the paper's Algorithm 1 BN is applied as bnexp's BatchNorm applies it (biased
batch variance, moving averages in Keras' momentum convention, ε inside the square root);
the paper does not say how its population statistics were estimated.

Layer-normalized LSTM (`norm="layer"`): Ba, Kiros & Hinton (2016), "Layer Normalization",
appendix (the LSTM they use for their experiments):

    (f̃, ĩ, õ, g̃) = LN(W_h h_{t−1}; α_1, β_1) + LN(W_x x_t; α_2, β_2) + b
    c_t = σ(f̃) ⊙ c_{t−1} + σ(ĩ) ⊙ tanh(g̃)
    h_t = σ(õ) ⊙ tanh(LN(c_t; α_3, β_3))

each LN over the units of its own vector (4·units, or units for the cell), gains from
`gamma_init` (1 by default: Ba et al.'s) and biases from 0; the same in training and inference.

The recurrence is a `tf.while_loop` over time (as Keras' own LSTM runs it), so 784 steps
(`model.sequence: pixels`) compile as one loop, not 784 copies of the cell. Measured on the
rows LSTM (100 units, batch 50, forward and backward, 2 cores): a Python-unrolled loop
compiled for minutes and ran slower; `tf.scan` took 1.3× (BN-LSTM) to 1.7× (plain) the
time of this loop with the variables read once outside it.
"""

from __future__ import annotations

from bnexp.backend import tensorflow

tf = tensorflow()

import keras  # noqa: E402
from keras import ops  # noqa: E402

from bnexp.norm import LayerNorm, check_affine, check_choice, check_number  # noqa: E402

NORMS = ("none", "batch", "layer")


class TimeBatchNorm(keras.layers.Layer):
    """Batch normalization with statistics per time step (Cooijmans et al. 2016, section 3).

    Training: the values at step t, x_t of shape (batch, features), are normalised with their
    own batch mean and biased variance, γ · (x_t − mu_t) / sqrt(var_t + ε) (+ β when `center`).
    Inference: with `moving_mean[min(t, T_max − 1)]` and `moving_variance[...]`, each of shape
    (T_max, features), tracked per step as bnexp's BatchNorm tracks them (momentum, biased or
    m/(m−1)-corrected variance). The layer computes; `LSTM` calls it step by step and hands the
    batch statistics of all steps back to `update` after the recurrence (a variable cannot
    be assigned inside the while-loop).
    """

    def __init__(self, t_max, gamma_init=0.1, center=False, momentum=0.99, epsilon=1e-3, variance="biased", **kwargs):
        super().__init__(**kwargs)
        check_affine(epsilon, center, True)
        check_choice("variance", variance, ("biased", "unbiased"))
        check_number("momentum", momentum, lambda m: 0 <= m <= 1, "a number in [0, 1]")
        check_number("gamma_init", gamma_init, lambda g: g > 0, "a positive number")
        self.t_max, self.gamma_init, self.center = int(t_max), float(gamma_init), center
        self.momentum, self.epsilon, self.variance = float(momentum), float(epsilon), variance

    def build(self, input_shape):
        features = input_shape[-1]
        weight = lambda name, shape, init, trainable=True: self.add_weight(  # noqa: E731
            shape=shape, initializer=init, trainable=trainable, name=name, autocast=False)
        self.gamma = weight("gamma", (features,), keras.initializers.Constant(self.gamma_init))
        self.beta = weight("beta", (features,), "zeros") if self.center else None
        self.moving_mean = weight("moving_mean", (self.t_max, features), "zeros", trainable=False)
        self.moving_variance = weight("moving_variance", (self.t_max, features), "ones", trainable=False)

    def read(self) -> tuple:
        """(γ, β or None, moving mean, moving variance) as tensors: read once before the
        recurrence, not once per step (per-step reads made the loop 1.6× slower)."""
        read = lambda v: None if v is None else tf.identity(v)  # noqa: E731
        return read(self.gamma), read(self.beta), read(self.moving_mean), read(self.moving_variance)

    def normalize(self, x, mean, var, values):
        gamma, beta = values[0], values[1]
        y = gamma * (x - mean) * ops.rsqrt(var + self.epsilon)
        return y + beta if beta is not None else y

    def moving_at(self, t, values):
        """The population (mean, variance) for step(s) t: those of step min(t, T_max − 1)."""
        index = ops.minimum(t, self.t_max - 1)
        return ops.take(values[2], index, axis=0), ops.take(values[3], index, axis=0)

    def step(self, x, t, training, values):
        """(normalised x_t, batch mean, batch variance) for x_t (batch, features) at step t; `values` from read()."""
        if training:
            mean = ops.mean(x, axis=0)
            var = ops.mean(ops.square(x - mean), axis=0)
        else:
            mean, var = self.moving_at(t, values)
        return self.normalize(x, mean, var, values), mean, var

    def sequence(self, x, training):
        """(normalised x, means (T, features), variances (T, features)) for all of x (batch, T, features) at once."""
        values = self.read()
        if training:
            mean = ops.mean(x, axis=0)
            var = ops.mean(ops.square(x - mean), axis=0)
        else:
            mean, var = self.moving_at(ops.arange(x.shape[1]), values)
        return self.normalize(x, mean, var, values), mean, var

    def population(self, var, m):
        if self.variance == "biased":
            return var
        m = ops.cast(m, var.dtype)
        return var * m / ops.maximum(m - 1.0, 1.0)

    def update(self, means, variances, m):
        """One EMA step per kept time step t < T_max, towards that step's batch statistics."""
        kept = min(self.t_max, means.shape[0])
        for moving, batch in ((self.moving_mean, means[:kept]), (self.moving_variance, self.population(variances[:kept], m))):
            head = self.momentum * moving[:kept] + (1.0 - self.momentum) * batch
            moving.assign(ops.concatenate([head, moving[kept:]], axis=0) if kept < self.t_max else head)

    def get_config(self):
        return {**super().get_config(), "t_max": self.t_max, "gamma_init": self.gamma_init, "center": self.center,
                "momentum": self.momentum, "epsilon": self.epsilon, "variance": self.variance}


class LSTM(keras.layers.Layer):
    """An LSTM over (batch, T, D) returning h_T (batch, units); see the module docstring.

    `kernel` is W_x (D, 4·units), `recurrent_kernel` W_h (units, 4·units), `bias` b; with
    norm "batch" the sublayers `norm_x`, `norm_h`, `norm_c` are TimeBatchNorms, with "layer"
    LayerNorms.
    """

    def __init__(self, units, norm="none", seed=0, gamma_init=None, t_max=None, momentum=0.99, epsilon=1e-3,
                 variance="biased", **kwargs):
        super().__init__(**kwargs)
        check_choice("norm", norm, NORMS)
        self.units, self.norm, self.seed, self.t_max = int(units), norm, int(seed), t_max
        self.gamma_init = gamma_init if gamma_init is not None else (0.1 if norm == "batch" else 1.0)
        self.momentum, self.epsilon, self.variance = momentum, epsilon, variance

    def build(self, input_shape):
        steps, features, four = input_shape[1], input_shape[-1], 4 * self.units
        self.kernel = self.add_weight(shape=(features, four), name="kernel",
                                      initializer=keras.initializers.GlorotUniform(seed=self.seed))
        self.recurrent_kernel = self.add_weight(shape=(self.units, four), name="recurrent_kernel",
                                                initializer=keras.initializers.Orthogonal(seed=self.seed + 1))
        forget_one = ops.concatenate([ops.ones((self.units,)), ops.zeros((3 * self.units,))])
        self.bias = self.add_weight(shape=(four,), name="bias", initializer=lambda shape, dtype=None: ops.cast(forget_one, dtype))
        self.norms = []
        if self.norm == "batch":
            t_max = self.t_max or steps
            time_bn = dict(t_max=t_max, gamma_init=self.gamma_init, momentum=self.momentum, epsilon=self.epsilon, variance=self.variance)
            self.norm_x = TimeBatchNorm(center=False, name="norm_x", **time_bn)  # β_x = 0
            self.norm_h = TimeBatchNorm(center=False, name="norm_h", **time_bn)  # β_h = 0
            self.norm_c = TimeBatchNorm(center=True, name="norm_c", **time_bn)
        elif self.norm == "layer":
            self.norm_x, self.norm_h, self.norm_c = (
                LayerNorm(epsilon=self.epsilon, name=name) for name in ("norm_x", "norm_h", "norm_c"))
        if self.norm != "none":
            for layer, width in ((self.norm_x, four), (self.norm_h, four), (self.norm_c, self.units)):
                layer.build((None, width))
                if self.norm == "layer" and self.gamma_init != 1.0:
                    layer.gamma.assign(ops.full((width,), self.gamma_init))
            self.norms = [self.norm_x, self.norm_h, self.norm_c]

    def call(self, inputs, training=False):
        h, _ = self.run(inputs, training, update=True)
        return h

    def batch_moments(self, inputs):
        """The training-mode batch statistics of norm_x, norm_h and norm_c at every kept step:
        [(means (T_max, F), variances (T_max, F))], without updating anything (PreciseBN)."""
        _, stats = self.run(inputs, True, update=False)
        return [(mean[:layer.t_max], var[:layer.t_max]) for layer, (mean, var) in zip(self.norms, stats)]

    def run(self, inputs, training, update):
        """(h_T, [(means, variances)] per TimeBatchNorm) for (batch, T, D) `inputs`."""
        x = ops.cast(inputs, "float32")
        batch, steps = ops.shape(x)[0], x.shape[1]
        wx = ops.matmul(x, self.kernel)  # (batch, T, 4·units): every step's input term at once
        stats = []
        if self.norm == "batch":
            wx, mean_x, var_x = self.norm_x.sequence(wx, training)
            stats.append((mean_x, var_x))
        elif self.norm == "layer":
            wx = ops.reshape(self.norm_x(ops.reshape(wx, (-1, 4 * self.units))), (-1, steps, 4 * self.units))
        wx = wx + self.bias  # b joins the input term once for all steps
        zeros_h = ops.zeros((batch, self.units))
        # Variables read once, outside the loop: read inside it, every step reads them again (1.6× slower).
        recurrent_kernel = tf.identity(self.recurrent_kernel)
        if self.norm == "batch":
            values_h, values_c = self.norm_h.read(), self.norm_c.read()
        elif self.norm == "layer":
            gains = [(tf.identity(n.gamma), tf.identity(n.beta)) for n in (self.norm_h, self.norm_c)]

        def layer_norm(layer, x, gain):
            return layer.standardize_over(x, -1) * gain[0] + gain[1]

        inputs_ta = tf.TensorArray(wx.dtype, size=steps).unstack(ops.transpose(wx, (1, 0, 2)))
        stats_ta = [tf.TensorArray(wx.dtype, size=steps) for _ in range(4 if self.norm == "batch" else 0)]

        def cell(t, h, c, *stats_ta):
            wx_t = inputs_ta.read(t)
            wh = ops.matmul(h, recurrent_kernel)
            extra = ()
            if self.norm == "batch":
                wh, mean_h, var_h = self.norm_h.step(wh, t, training, values_h)
            elif self.norm == "layer":
                wh = layer_norm(self.norm_h, wh, gains[0])
            f, i, o, g = ops.split(wh + wx_t, 4, axis=-1)
            c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
            if self.norm == "batch":
                c_hat, mean_c, var_c = self.norm_c.step(c, t, training, values_c)
                extra = (mean_h, var_h, mean_c, var_c)
            elif self.norm == "layer":
                c_hat = layer_norm(self.norm_c, c, gains[1])
            else:
                c_hat = c
            h = ops.sigmoid(o) * ops.tanh(c_hat)
            return (t + 1, h, c, *[ta.write(t, value) for ta, value in zip(stats_ta, extra)])

        _, h_last, _, *stats_ta = tf.while_loop(lambda t, *_: t < steps, cell, (0, zeros_h, zeros_h, *stats_ta),
                                                maximum_iterations=steps)
        if self.norm == "batch":
            mean_h, var_h, mean_c, var_c = (ta.stack() for ta in stats_ta)
            stats += [(mean_h, var_h), (mean_c, var_c)]
            if training and update and self.trainable:
                for layer, (mean, var) in zip(self.norms, stats):
                    layer.update(mean, var, batch)
        return h_last, stats

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "norm": self.norm, "seed": self.seed,
                "gamma_init": self.gamma_init, "t_max": self.t_max, "momentum": self.momentum,
                "epsilon": self.epsilon, "variance": self.variance}
