"""Batch Normalization, written from the paper.

Ioffe & Szegedy (2015), "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", Algorithms 1 and 2. For inputs of shape
(batch, features), each feature k is normalised over the batch axis.

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
"""

from __future__ import annotations

import keras
from keras import ops


class BatchNorm(keras.layers.Layer):
    """Batch Normalization over axis 0 of a (batch, features) input; see the module docstring."""

    def __init__(self, momentum=0.99, epsilon=1e-3, center=True, scale=True, variance="biased", **kwargs):
        super().__init__(**kwargs)
        if variance not in ("biased", "unbiased"):
            raise ValueError(f"variance must be 'biased' or 'unbiased', not {variance!r}")
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
        # float16 moments lose precision (and overflow in the sum of squares): compute them in float32.
        x = ops.cast(inputs, "float32") if inputs.dtype in ("float16", "bfloat16") else inputs
        if training and self.trainable:  # a frozen layer infers, as Keras' BatchNormalization does
            mean, var = self.batch_moments(x)
            self.update_moving_statistics(mean, var, ops.shape(x)[0])
        else:
            mean, var = ops.cast(self.moving_mean, x.dtype), ops.cast(self.moving_variance, x.dtype)
        return ops.cast(self.normalize(x, mean, var), self.compute_dtype)

    def batch_moments(self, x):
        """Algorithm 1's mini-batch mean and biased variance, per feature."""
        mean = ops.mean(x, axis=0)
        var = ops.mean(ops.square(x - mean), axis=0)
        return mean, var

    def normalize(self, x, mean, var):
        """γ · (x − mean) / sqrt(var + ε) + β, folded into one multiply-add per element."""
        inv = ops.rsqrt(var + self.epsilon)
        if self.gamma is not None:
            inv = inv * ops.cast(self.gamma, x.dtype)
        shift = -mean * inv
        if self.beta is not None:
            shift = shift + ops.cast(self.beta, x.dtype)
        return x * inv + shift

    def update_moving_statistics(self, mean, var, batch_size):
        if self.variance == "unbiased":
            m = ops.cast(batch_size, var.dtype)
            var = var * m / (m - 1.0)
        decay = self.momentum
        for moving, batch in ((self.moving_mean, mean), (self.moving_variance, var)):
            updated = decay * ops.cast(moving, batch.dtype) + (1.0 - decay) * batch
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
