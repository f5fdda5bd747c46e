"""Normalisations by per-example statistics, each written from its paper: they compute the
same thing in training and inference, so an example's output never depends on its batch.

- `LayerNorm`: Ba, Kiros & Hinton (2016), over all of an example's features;
- `GroupNorm`: Wu & He (2018), over groups of features;
- `InstanceNorm`: Ulyanov, Vedaldi & Lempitsky (2016), per channel over the spatial
  positions (conv layers only).
"""

from __future__ import annotations

import math
import numbers

from bnexp.backend import tensorflow

tensorflow()  # TensorFlow first, quietly, before Keras imports it

import keras  # noqa: E402
from keras import ops  # noqa: E402

from bnexp.norm.checks import check_affine, upcast  # noqa: E402


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
