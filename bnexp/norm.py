"""Batch Normalization and its variants, each written from its paper.

Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", Algorithms 1 and 2. For inputs of shape
(batch, features), each feature k is normalised over the batch axis.

Convolutional layers (section 3.2): inputs (batch, height, width, channels), each feature
map (channel) normalised over the batch and every spatial position, "so that different
elements of the same feature map, at different locations, are normalized in the same way":
the effective mini-batch is m' = m·p·q for a p×q feature map, and γ, β are per feature
map. Every layer here takes its statistics over all axes but the last (the channels), so
the same code serves (batch, features) and (batch, height, width, channels).

Training (Algorithm 1), on a mini-batch B of m examples:

    mu_B      = 1/m · Σ x_i                      (mini-batch mean)
    sigma²_B  = 1/m · Σ (x_i − mu_B)²            (mini-batch variance, biased)
    x̂_i       = (x_i − mu_B) / sqrt(sigma²_B + ε)
    y_i       = γ · x̂_i + β

and the population estimates are tracked as exponential moving averages

    moving_mean     ← momentum · moving_mean     + (1 − momentum) · mu_B
    moving_variance ← momentum · moving_variance + (1 − momentum) · v_B

with v_B = sigma²_B (`variance="biased"`, as Keras does) or m/(m−1) · sigma²_B
(`variance="unbiased"`, Algorithm 2 step 10's unbiased estimate, as PyTorch does).
Momentum follows Keras' convention: PyTorch's momentum 0.1 is Keras' 0.9.

Inference (Algorithm 2, step 11): y = γ · (x − moving_mean) / sqrt(moving_variance + ε) + β,
so an example's output never depends on the rest of its batch.

γ starts at 1 and β at 0. A Dense layer before this one needs no bias: β replaces it.

The variants below are each written from their own paper:

- `BatchRenorm`: Ioffe (2017), batch statistics corrected towards the moving ones;
- `GhostBatchNorm`: Hoffer, Hubara & Soudry (2017), statistics over virtual sub-batches;
- `LayerNorm`: Ba, Kiros & Hinton (2016), per-example statistics over all features;
- `GroupNorm`: Wu & He (2018), per-example statistics over groups of features;
- `InstanceNorm`: Ulyanov, Vedaldi & Lempitsky (2016), per-example, per-channel
  statistics over the spatial positions (conv layers only).

The first two keep moving statistics (`moving_mean`, `moving_variance`) and infer as
BatchNorm does; the last two compute the same thing in training and inference.
"""

from __future__ import annotations

import math
import numbers

from bnexp.backend import tensorflow

tensorflow()  # TensorFlow first, quietly, before Keras imports it

import keras  # noqa: E402
from keras import ops  # noqa: E402


def upcast(x):
    """float16 moments lose precision (and overflow in the sum of squares): compute them in float32."""
    return ops.cast(x, "float32") if x.dtype in ("float16", "bfloat16") else x


def check_number(name, value, within, allowed: str):
    """Refuse `value` unless it is a real number (not a bool) and `within(value)` holds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not within(value):
        raise ValueError(f"{name} must be {allowed}, not {value!r}")


def check_affine(epsilon, center, scale):
    """Refuse what no normalisation can use: ε must be a positive number (it keeps sqrt(var + ε)
    away from 0), and `center`/`scale` are switches, so booleans.

    Keras' own normalisation layers check less (its BatchNormalization takes momentum=1.5 or
    epsilon=0 silently); these checks follow its wording, `ValueError` naming the argument.
    """
    check_number("epsilon", epsilon, lambda e: 0 < e < math.inf, "a positive number")
    for name, value in (("center", center), ("scale", scale)):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be True or False, not {value!r}")


def positions(x):
    """How many values each channel has in `x`: every axis but the last (m, or m·p·q for a
    conv layer's (m, p, q, C) output), as a tensor when the batch size is only known at run time."""
    count = 1
    for size in ops.shape(x)[:-1]:
        count = count * size
    return count


def check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


class BatchNorm(keras.layers.Layer):
    """Batch Normalization over every axis but the last (axis 0 of a (batch, features) input;
    batch, height and width of a conv layer's); see the module docstring."""

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True, variance="biased", **kwargs):
        super().__init__(**kwargs)
        check_affine(epsilon, center, scale)
        check_choice("variance", variance, ("biased", "unbiased"))
        check_number("momentum", momentum, lambda m: 0 <= m <= 1,
                     "a number in [0, 1] (moving = momentum · moving + (1 − momentum) · batch)")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale
        self.variance = variance

    def build(self, input_shape):
        features = (input_shape[-1],)
        # autocast=False: under a float16 policy the weights stay float32 and we cast them
        # where they meet the (float32) computation, as Keras' own BN does.
        weight = lambda name, init, trainable=True: self.add_weight(  # noqa: E731
            shape=features, initializer=init, trainable=trainable, name=name, autocast=False)
        self.gamma = weight("gamma", "ones") if self.scale else None
        self.beta = weight("beta", "zeros") if self.center else None
        self.moving_mean = weight("moving_mean", "zeros", trainable=False)
        self.moving_variance = weight("moving_variance", "ones", trainable=False)

    def call(self, inputs, training=False):
        x = upcast(inputs)
        if training and self.trainable:  # a frozen layer infers, as Keras' BatchNormalization does
            y = self.train_forward(x)
        else:
            y = self.normalize(x, ops.cast(self.moving_mean, x.dtype), ops.cast(self.moving_variance, x.dtype))
        return ops.cast(y, self.compute_dtype)

    def train_forward(self, x):
        """Algorithm 1: normalise with the batch's own statistics, and track them."""
        mean, var = self.batch_moments(x)
        self.update_moving_statistics(mean, self.population_variance(var, positions(x)))
        return self.normalize(x, mean, var)

    def batch_moments(self, x):
        """Algorithm 1's mini-batch mean and biased variance, per feature (per feature map: §3.2)."""
        axes = tuple(range(len(x.shape) - 1))
        mean = ops.mean(x, axis=axes)
        var = ops.mean(ops.square(x - mean), axis=axes)
        return mean, var

    def population_variance(self, var, m):
        """The estimate the moving variance tracks: the biased `var` of m values, or m/(m−1) · var
        (for a conv layer m is m·p·q, the effective batch of §3.2)."""
        if self.variance == "biased":
            return var
        m = ops.cast(m, var.dtype)
        return var * m / ops.maximum(m - 1.0, 1.0)  # a single example has var 0: keep it 0, not NaN

    def normalize(self, x, mean, var):
        """γ · (x − mean) / sqrt(var + ε) + β."""
        inv = ops.rsqrt(var + self.epsilon)
        return self.affine(x, inv, -mean * inv)

    def affine(self, x, inv, offset):
        """γ · (x · inv + offset) + β, folded into one multiply-add per element."""
        if self.gamma is not None:
            gamma = ops.cast(self.gamma, x.dtype)
            inv, offset = inv * gamma, offset * gamma
        if self.beta is not None:
            offset = offset + ops.cast(self.beta, x.dtype)
        return x * inv + offset

    def update_moving_statistics(self, mean, var):
        """One EMA step towards this step's mean and (already corrected) variance."""
        self.ema_step(self.moving_mean, mean)
        self.ema_step(self.moving_variance, var)

    def ema_step(self, moving, batch):
        """moving ← momentum · moving + (1 − momentum) · batch."""
        updated = self.momentum * ops.cast(moving, batch.dtype) + (1.0 - self.momentum) * batch
        moving.assign(ops.cast(updated, moving.dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "variance": self.variance,
        }


class BatchRenorm(BatchNorm):
    """Batch Renormalization: Ioffe (2017), "Batch Renormalization: Towards Reducing
    Minibatch Dependence in Batch-Normalized Models", Algorithm 1.

    Training, on a mini-batch B of m examples, with mu and sigma the moving statistics:

        mu_B     = 1/m · Σ x_i
        sigma_B  = sqrt(1/m · Σ (x_i − mu_B)² + ε)
        r        = stop_gradient(clip(sigma_B / sigma,       1/r_max, r_max))
        d        = stop_gradient(clip((mu_B − mu) / sigma,   −d_max,  d_max))
        x̂_i      = (x_i − mu_B) / sigma_B · r + d
        y_i      = γ · x̂_i + β

    r and d are constants to backpropagation (the paper's section 3): the gradient flows
    through mu_B and sigma_B as in BatchNorm, scaled by r. With r = 1 and d = 0 this is
    BatchNorm; where the clips do not bind, x̂ = (x − mu) / sigma, which is exactly the
    inference output, so training and inference agree, the point of the paper.
    Inference is BatchNorm's: y = γ · (x − mu) / sigma + β.

    Moving statistics (`moving_average`). r and d use the moving statistics from before this
    step; then, with α = 1 − momentum:

    - "sigma" (the paper's Algorithm 1): mu += α · (mu_B − mu) and sigma += α · (sigma_B − sigma),
      the moving sigma being an average of sigma_B itself. E[sigma_B / sigma] is then about 1
      at every batch size, so r is centred on 1 and the clips bind only as often as the batch
      really differs (Keras 3's `renorm=True` does the same).
    - "variance" (bnexp before issue 13, kept so old runs resume as they trained): the moving
      variance is BatchNorm's average of the batch variance and sigma = sqrt(moving_variance + ε).
      By Jensen's inequality sigma then exceeds E[sigma_B], most at small batches: with
      Gaussian inputs the average r is 0.80 at m = 2 and 0.985 at m = 16 (biased variance),
      so r is pushed towards the 1/r_max clip.

    Both store sigma the same way: `moving_variance` holds sigma² − ε (clipped at 0), so
    sigma = sqrt(moving_variance + ε) in either case. Inference, `bnexp eval --stats precise`
    (which writes a population variance there) and checkpoints (the same variable names as
    before) need not know which average a layer keeps. Under "sigma", `variance="unbiased"`
    averages sqrt(m/(m−1) · batch variance + ε) in place of sigma_B; the paper has only the
    biased sigma_B (and the correction moves E[r] below 1 again: 0.71 at m = 2).

    Warm-up, as in the paper's experiments (section 4): r_max = 1 and d_max = 0, plain
    BatchNorm, for the first `warmup_steps` training steps while the moving averages settle;
    then r_max rises linearly to `r_max` over `r_max_ramp_steps` and d_max to `d_max` over
    `d_max_ramp_steps`. The defaults are the paper's: r_max 3 at 40k steps, d_max 5 at 25k.
    The layer counts its training calls in a non-trainable `step` variable, so the schedule
    is saved in checkpoints and advances inside compiled (XLA) steps; in bnexp one training
    call is one optimizer step.
    """

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True, variance="biased",
                 r_max=3.0, d_max=5.0, warmup_steps=5000, r_max_ramp_steps=35000, d_max_ramp_steps=20000,
                 moving_average="sigma", **kwargs):
        super().__init__(momentum, epsilon, center, scale, variance, **kwargs)
        check_number("r_max", r_max, lambda r: 1 <= r < math.inf, "a number >= 1")
        check_number("d_max", d_max, lambda d: 0 <= d < math.inf, "a number >= 0")
        for name, steps in (("warmup_steps", warmup_steps), ("r_max_ramp_steps", r_max_ramp_steps), ("d_max_ramp_steps", d_max_ramp_steps)):
            if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
                raise ValueError(f"{name} must be an integer >= 0 (training steps), not {steps!r}")
        check_choice("moving_average", moving_average, ("sigma", "variance"))
        self.r_max = float(r_max)
        self.d_max = float(d_max)
        self.warmup_steps = int(warmup_steps)
        self.r_max_ramp_steps = int(r_max_ramp_steps)
        self.d_max_ramp_steps = int(d_max_ramp_steps)
        self.moving_average = moving_average

    def build(self, input_shape):
        super().build(input_shape)
        self.step = self.add_weight(shape=(), initializer="zeros", dtype="int64", trainable=False, name="step", autocast=False)

    def limits(self, step, dtype="float32"):
        """(r_max, d_max) for 0-based training step `step`: the warm-up schedule."""
        t = ops.cast(step, dtype)

        def ramp(length):  # 0 until the warm-up ends, then linearly to 1 over `length` steps
            if length == 0:
                return ops.cast(t >= self.warmup_steps, dtype)
            return ops.clip((t - self.warmup_steps) / length, 0.0, 1.0)

        return 1.0 + (self.r_max - 1.0) * ramp(self.r_max_ramp_steps), self.d_max * ramp(self.d_max_ramp_steps)

    def train_forward(self, x):
        mean, var = self.batch_moments(x)
        moving_mean, moving_var = ops.cast(self.moving_mean, x.dtype), ops.cast(self.moving_variance, x.dtype)
        sigma_batch = ops.sqrt(var + self.epsilon)
        sigma = ops.sqrt(moving_var + self.epsilon)
        r_max, d_max = self.limits(self.step, x.dtype)
        r = ops.stop_gradient(ops.clip(sigma_batch / sigma, 1.0 / r_max, r_max))
        d = ops.stop_gradient(ops.clip((mean - moving_mean) / sigma, -d_max, d_max))
        population = self.population_variance(var, positions(x))
        if self.moving_average == "variance":
            self.update_moving_statistics(mean, population)
        else:
            self.update_moving_sigma(mean, sigma, ops.sqrt(population + self.epsilon))
        self.step.assign_add(1)
        # x̂ = (x − mu_B) / sigma_B · r + d  =  x · inv + (d − mu_B · inv), with inv = r / sigma_B.
        inv = r * ops.rsqrt(var + self.epsilon)
        return self.affine(x, inv, d - mean * inv)

    def update_moving_sigma(self, mean, sigma, sigma_batch):
        """Algorithm 1's averages: mu and sigma each take one EMA step; sigma is stored as sigma² − ε."""
        self.ema_step(self.moving_mean, mean)
        sigma = self.momentum * sigma + (1.0 - self.momentum) * sigma_batch
        # sigma >= sqrt(ε) (an average of such values), so this is >= 0 but for rounding.
        self.moving_variance.assign(ops.cast(ops.relu(ops.square(sigma) - self.epsilon), self.moving_variance.dtype))

    def get_config(self):
        return {
            **super().get_config(),
            "r_max": self.r_max,
            "d_max": self.d_max,
            "warmup_steps": self.warmup_steps,
            "r_max_ramp_steps": self.r_max_ramp_steps,
            "d_max_ramp_steps": self.d_max_ramp_steps,
            "moving_average": self.moving_average,
        }


class GhostBatchNorm(BatchNorm):
    """Ghost Batch Normalization: Hoffer, Hubara & Soudry (2017), "Train longer, generalize
    better: closing the generalization gap in large batch training of neural networks",
    Algorithm 1.

    Training: the batch of m examples is split, in order, into L virtual ("ghost") batches of
    `virtual_batch_size` = v examples, and each is normalised by its own statistics:

        mu_l      = 1/v · Σ_{i in ghost batch l} x_i
        sigma²_l  = 1/v · Σ_{i in ghost batch l} (x_i − mu_l)²
        y_i       = γ · (x_i − mu_l(i)) / sqrt(sigma²_l(i) + ε) + β

    so a large batch is regularised like v-example batches while the gradient still averages
    over all m. With v = m this is BatchNorm.

    Moving statistics (`moving_update`); each ghost batch's variance is first made unbiased
    with v/(v−1) under `variance="unbiased"`:

    - "per_virtual_batch" (Algorithm 1): one EMA step per ghost batch, in order l = 1 … L,
      exactly as if each were a training step of BatchNorm:
          moving ← momentum^L · moving + (1 − momentum) · Σ_l momentum^(L−l) · stat_l.
      `momentum` is per ghost batch, so one training step decays the old value by
      momentum^L. The sequential reading is the authors' own code's (github.com/eladhoffer/
      bigBatch, main_gbn.py: PyTorch's BatchNorm is called on each chunk in turn). Algorithm 1
      writes the average of sigma_l; that code, and we, average the variance, as every kind
      here with moving statistics does.
    - "per_step" (bnexp before issue 13, tf.keras 2's shortcut): one EMA step per training
      step towards the mean over ghost batches of their statistics: `momentum` keeps the
      meaning it has in BatchNorm whatever v is.

    Inference is BatchNorm's. A batch that v does not divide (evaluation's last batch;
    training batches always divide, the config sees to that) ends with one smaller ghost
    batch: "per_virtual_batch" gives it its own step; "per_step" weights each ghost batch by
    its size.
    """

    def __init__(self, virtual_batch_size, momentum=0.99, epsilon=1e-3, center=True, scale=True, variance="biased",
                 moving_update="per_virtual_batch", **kwargs):
        super().__init__(momentum, epsilon, center, scale, variance, **kwargs)
        if isinstance(virtual_batch_size, bool) or not isinstance(virtual_batch_size, numbers.Integral) or virtual_batch_size < 2:
            raise ValueError(f"virtual_batch_size must be an integer >= 2 (a ghost batch of 1 has no variance), not {virtual_batch_size!r}")
        check_choice("moving_update", moving_update, ("per_virtual_batch", "per_step"))
        self.virtual_batch_size = int(virtual_batch_size)
        self.moving_update = moving_update

    def train_forward(self, x):
        if len(x.shape) > 2:
            return self.spatial_forward(x)
        v, n = self.virtual_batch_size, x.shape[-1]
        m = ops.shape(x)[0]  # a tensor when the batch size is only known at run time
        ghosts = (m + v - 1) // v
        # Pad with zero rows to a whole number of ghost batches; the mask keeps them out of
        # every statistic and the final slice drops them.
        padded = ops.concatenate([x, ops.zeros((ghosts * v - m, n), x.dtype)], axis=0)
        xs = ops.reshape(padded, (-1, v, n))
        mask = ops.reshape(ops.cast(ops.arange(ghosts * v) < m, x.dtype), (-1, v, 1))
        count = ops.sum(mask, axis=1, keepdims=True)  # v, or fewer in a last partial ghost batch
        mean = ops.sum(xs, axis=1, keepdims=True) / count  # padding rows are zero
        var = ops.sum(mask * ops.square(xs - mean), axis=1, keepdims=True) / count
        population = self.population_variance(var, count)
        if self.moving_update == "per_step":
            total = ops.cast(m, x.dtype)
            self.update_moving_statistics(ops.reshape(ops.sum(count * mean, axis=0), (n,)) / total,
                                          ops.reshape(ops.sum(count * population, axis=0), (n,)) / total)
        else:
            self.update_moving_per_ghost(ops.reshape(mean, (-1, n)), ops.reshape(population, (-1, n)))
        return ops.reshape(self.normalize(xs, mean, var), (-1, n))[:m]

    def spatial_forward(self, x):
        """train_forward for a conv layer's (m, p, q, C) input: each ghost batch's statistics
        per channel over its v examples and every position (BN's §3.2 rule within the ghost
        batch). The same padding and masking as the (batch, features) case."""
        v, n = self.virtual_batch_size, x.shape[-1]
        m = ops.shape(x)[0]
        flat = ops.reshape(x, (m, -1, n))  # (m, p·q, C)
        p = flat.shape[1]
        ghosts = (m + v - 1) // v
        padded = ops.concatenate([flat, ops.zeros((ghosts * v - m, p, n), x.dtype)], axis=0)
        xs = ops.reshape(padded, (-1, v, p, n))
        mask = ops.reshape(ops.cast(ops.arange(ghosts * v) < m, x.dtype), (-1, v, 1, 1))
        count = ops.sum(mask, axis=1, keepdims=True) * p  # v·p values per channel, fewer in a partial ghost batch
        mean = ops.sum(xs, axis=(1, 2), keepdims=True) / count
        var = ops.sum(mask * ops.square(xs - mean), axis=(1, 2), keepdims=True) / count
        population = self.population_variance(var, count)
        if self.moving_update == "per_step":
            total = ops.cast(m * p, x.dtype)
            self.update_moving_statistics(ops.reshape(ops.sum(count * mean, axis=0), (n,)) / total,
                                          ops.reshape(ops.sum(count * population, axis=0), (n,)) / total)
        else:
            self.update_moving_per_ghost(ops.reshape(mean, (-1, n)), ops.reshape(population, (-1, n)))
        return ops.reshape(self.normalize(xs, mean, var), (-1, *x.shape[1:]))[:m]

    def update_moving_per_ghost(self, means, variances):
        """L sequential EMA steps, one per row of `means`/`variances` (L, n), in closed form."""
        momentum = ops.convert_to_tensor(self.momentum, dtype=means.dtype)
        ghosts = ops.cast(ops.shape(means)[0], means.dtype)
        later = ghosts - 1.0 - ops.cast(ops.arange(ops.shape(means)[0]), means.dtype)  # ghost batches after l
        weights = ops.reshape((1.0 - momentum) * ops.power(momentum, later), (-1, 1))
        carried = ops.power(momentum, ghosts)
        for moving, stats in ((self.moving_mean, means), (self.moving_variance, variances)):
            updated = carried * ops.cast(moving, stats.dtype) + ops.sum(weights * stats, axis=0)
            moving.assign(ops.cast(updated, moving.dtype))

    def get_config(self):
        return {**super().get_config(), "virtual_batch_size": self.virtual_batch_size, "moving_update": self.moving_update}


class LayerNorm(keras.layers.Layer):
    """Layer Normalization: Ba, Kiros & Hinton (2016), "Layer Normalization", section 3.

    Each example is normalised over its own H features a_1 … a_H, then given the paper's
    per-feature adaptive gain g = γ and bias b = β:

        mu     = 1/H · Σ_i a_i
        sigma  = sqrt(1/H · Σ_i (a_i − mu)² + ε)
        y_i    = γ_i · (a_i − mu) / sigma + β_i

    (ε is ours, as in Keras' LayerNormalization: it keeps a constant input finite.)
    On a conv layer's (m, p, q, C) output the statistics are over all of (p, q, C), with γ
    and β per channel, as Wu & He (2018, section 3.1 and their Figure 2) write LN for conv
    nets (Keras' LayerNormalization(axis=(1, 2, 3)) would keep a γ per position and channel).
    No statistic crosses examples, so training and inference compute the same thing and
    there are no moving statistics; `training` is ignored.
    """

    def __init__(self, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        check_affine(epsilon, center, scale)
        self.epsilon = float(epsilon)
        self.center = center
        self.scale = scale

    def build(self, input_shape):
        features = (input_shape[-1],)
        # float32 weights under a float16 policy, cast where used, as in BatchNorm.
        self.gamma = self.add_weight(shape=features, initializer="ones", name="gamma", autocast=False) if self.scale else None
        self.beta = self.add_weight(shape=features, initializer="zeros", name="beta", autocast=False) if self.center else None

    def call(self, inputs, training=None):
        x = upcast(inputs)
        y = self.standardize(x)
        if self.gamma is not None:
            y = y * ops.cast(self.gamma, x.dtype)
        if self.beta is not None:
            y = y + ops.cast(self.beta, x.dtype)
        return ops.cast(y, self.compute_dtype)

    def standardize(self, x):
        """(a − mu) / sigma over every axis but the batch's."""
        return self.standardize_over(x, tuple(range(1, len(x.shape))))

    def standardize_over(self, x, axes):
        """(a − mu) / sigma, mu and sigma over `axes`."""
        mean = ops.mean(x, axis=axes, keepdims=True)
        var = ops.mean(ops.square(x - mean), axis=axes, keepdims=True)
        return (x - mean) * ops.rsqrt(var + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "center": self.center, "scale": self.scale}


class GroupNorm(LayerNorm):
    """Group Normalization: Wu & He (2018), "Group Normalization", section 3.

    The C features of each example are split into `groups` = G groups of C/G consecutive
    units, S_k = {i : ⌊i / (C/G)⌋ = k}, and each group is normalised over its own units:

        mu_k     = G/C · Σ_{i in S_k} x_i
        sigma_k  = sqrt(G/C · Σ_{i in S_k} (x_i − mu_k)² + ε)
        y_i      = γ_i · (x_i − mu_k(i)) / sigma_k(i) + β_i

    with γ and β per feature. G = 1 is LayerNorm, as the paper notes; G = C
    would normalise each unit alone, and in an MLP (no spatial axes) output only β.
    On a conv layer's (m, p, q, C) output S_k also spans every position (the paper's
    eq. 7: the set of (H, W, C/G) values of group k), γ and β per channel.
    Per-example, so training and inference agree and there are no moving statistics.
    `groups=None` takes the largest of 32, 16, …, 1 that divides the width (the config
    resolves it once for all layers; see bnexp.config.default_groups).
    """

    def __init__(self, groups=None, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(epsilon, center, scale, **kwargs)
        if groups is not None and (isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1):
            raise ValueError(f"groups must be a positive integer, not {groups!r}")  # as Keras' GroupNormalization
        self.groups = None if groups is None else int(groups)

    def build(self, input_shape):
        from bnexp.config import default_groups  # pure Python: the same rule the config applies

        width = input_shape[-1]
        if self.groups is None:
            self.groups = default_groups([width])
        if width % self.groups:
            raise ValueError(f"groups={self.groups} does not divide the layer width {width}")
        super().build(input_shape)

    def standardize(self, x):
        width = x.shape[-1]
        if len(x.shape) == 2:
            grouped = ops.reshape(x, (-1, self.groups, width // self.groups))
            return ops.reshape(self.standardize_over(grouped, -1), (-1, width))
        grouped = ops.reshape(x, (-1, math.prod(x.shape[1:-1]), self.groups, width // self.groups))  # (m, p·q, G, C/G)
        return ops.reshape(self.standardize_over(grouped, (1, 3)), (-1, *x.shape[1:]))

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


class InstanceNorm(LayerNorm):
    """Instance Normalization: Ulyanov, Vedaldi & Lempitsky (2016), "Instance Normalization:
    The Missing Ingredient for Fast Stylization", eq. 2: each channel of each example is
    normalised over its own spatial positions,

        mu_ti     = 1/(HW) · Σ_l Σ_m x_tilm
        sigma²_ti = 1/(HW) · Σ_l Σ_m (x_tilm − mu_ti)²
        y_tijk    = γ_i · (x_tijk − mu_ti) / sqrt(sigma²_ti + ε) + β_i

    (γ, β per channel, as in Wu & He 2018's eq. 1 and 3, where IN is GN with G = C.) A
    (batch, features) input has no positions: each unit would be constant, so the layer
    refuses it. Training and inference compute the same thing.
    """

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError("instance normalisation needs spatial axes (batch, height, width, channels), "
                             f"not an input of shape {tuple(input_shape)}")
        super().build(input_shape)

    def standardize(self, x):
        return self.standardize_over(x, tuple(range(1, len(x.shape) - 1)))
