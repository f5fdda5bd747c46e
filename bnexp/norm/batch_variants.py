"""The variants of BatchNorm that keep moving statistics and infer as it does, each
written from its paper: Batch Renormalization (Ioffe 2017) corrects the batch statistics
towards the moving ones; Ghost Batch Normalization (Hoffer, Hubara & Soudry 2017) takes
them over virtual sub-batches."""

from __future__ import annotations

import math
import numbers

from bnexp.backend import tensorflow

tensorflow()  # TensorFlow first, quietly, before Keras imports it

from keras import ops  # noqa: E402

from bnexp.norm.batch import BatchNorm  # noqa: E402
from bnexp.norm.checks import check_choice, check_number, positions  # noqa: E402


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
