"""Batch Normalization: Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep
Network Training by Reducing Internal Covariate Shift", Algorithms 1 and 2. For inputs of shape
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

The variants are each written from their own paper: BatchRenorm and GhostBatchNorm in
bnexp.norm.batch_variants, LayerNorm, GroupNorm and InstanceNorm in bnexp.norm.per_example.
"""

from __future__ import annotations

from bnexp.backend import tensorflow

tensorflow()  # TensorFlow first, quietly, before Keras imports it

import keras  # noqa: E402
from keras import ops  # noqa: E402

from bnexp.norm.checks import check_affine, check_choice, check_number, positions, upcast  # noqa: E402


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
