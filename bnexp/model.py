"""The model: the network a config describes, its input, and its forward pass.

`model.kind: mlp` (the default) is Dense → [norm] → activation per hidden layer, then 10
logits in a layer named `logits`. `cnn` puts conv blocks (Conv2D → [norm] → activation →
max-pool) on the 28×28 image before those Dense blocks; `rnn` an LSTM (bnexp/recurrent.py)
reading the image row by row or pixel by pixel. docs/networks.md describes both. Every initializer is seeded from the config's seed and the layer's
index, so a `batch` run and a `keras` run with the same seed start from identical weights.
Dropout and noisy BN (bnexp/stochastic.py) are layers of their own, inserted only when
their config turns them on, so a model without them is exactly the model it always was.

train, evaluate and diagnostics all feed the model through `pixels` and take the loss
through `forward`, so the loss a run records in training, the loss `bnexp eval`
reproduces and the loss diagnostics differentiate are one computation.
"""

from __future__ import annotations

import contextlib
import math

from bnexp.backend import tensorflow

tf = tensorflow()  # TensorFlow first, quietly, before Keras imports it

import keras  # noqa: E402

from bnexp.config import Model
import numpy as np  # noqa: E402

from bnexp.norm import BatchNorm, BatchRenorm, GhostBatchNorm, GroupNorm, InstanceNorm, LayerNorm
from bnexp.recurrent import LSTM, TimeBatchNorm
from bnexp.stochastic import BatchNormNoise, Dropout, run_layers

INPUTS, CLASSES = 784, 10


def initializer(init, seed: int):
    """The Dense kernel initializer for `init` (normal and uniform share the std)."""
    if init.kind == "normal":
        return keras.initializers.RandomNormal(stddev=init.std, seed=seed)
    if init.kind == "uniform":
        limit = init.std * math.sqrt(3.0)  # U(-a, a) has std a/sqrt(3)
        return keras.initializers.RandomUniform(-limit, limit, seed=seed)
    if init.kind == "he":
        return keras.initializers.HeNormal(seed=seed)
    return keras.initializers.GlorotUniform(seed=seed)


def norm_layer(norm, name: str):
    """The normalisation layer `norm` (a validated model.norm) describes; Keras' own BN for `keras`.

    ghost_batch's virtual_batch_size and group's groups are filled in by bnexp.config.Config
    (which sees train.batch_size and every width); a bare Model leaves group's to each layer.
    """
    common = dict(epsilon=norm.epsilon, center=norm.center, scale=norm.scale, name=name)
    moving = dict(momentum=norm.momentum, variance=norm.variance, **common)
    if norm.kind == "keras":
        if norm.variance != "biased":  # a bare Model can ask for it; Keras keeps only the biased variance
            raise ValueError("model.norm.variance=unbiased is not available with model.norm.kind=keras")
        return keras.layers.BatchNormalization(momentum=norm.momentum, **common)
    if norm.kind == "batch":
        return BatchNorm(**moving)
    if norm.kind == "batch_renorm":
        return BatchRenorm(r_max=norm.r_max, d_max=norm.d_max, warmup_steps=norm.renorm_warmup_steps,
                           r_max_ramp_steps=norm.r_max_ramp_steps, d_max_ramp_steps=norm.d_max_ramp_steps,
                           moving_average=norm.moving_average, **moving)
    if norm.kind == "ghost_batch":
        if norm.virtual_batch_size is None:
            raise ValueError("model.norm.virtual_batch_size is unset: validate the whole Config, which resolves it from train.batch_size")
        return GhostBatchNorm(norm.virtual_batch_size, moving_update=norm.moving_update, **moving)
    if norm.kind == "layer":
        return LayerNorm(**common)
    if norm.kind == "group":
        return GroupNorm(norm.groups, **common)
    if norm.kind == "instance":
        return InstanceNorm(**common)
    raise ValueError(f"model.norm.kind={norm.kind} has no normalisation layer")


def layer_seed(seed: int, index: int) -> int:
    """A distinct initializer seed per layer, within the 31 bits every backend accepts."""
    return (seed * 1000 + index) % 2**31


def build_model(spec: Model, seed: int) -> keras.Sequential:
    """The network for `spec`, built (weights created) and seeded.

    Each hidden block is Dense → norm → activation (or Dense → activation → norm), with
    Santurkar et al.'s noise right after the norm and dropout at the block's end (after
    every block, or with `dropout.layers: last` the last only); input dropout after the
    pixels. Their draws are seeded per layer from `seed` (layer_seed 99, 100 + i, 200 + i).
    """
    norm, dropout = spec.norm, spec.dropout
    layers = [keras.Input((INPUTS,), name="pixels")]
    if dropout.input_rate > 0:
        layers.append(Dropout(dropout.input_rate, layer_seed(seed, 99), name="dropout_input"))
    if spec.kind == "cnn":
        layers += conv_layers(spec, seed)
    elif spec.kind == "rnn":
        layers += recurrent_layers(spec, seed)
    last = len(spec.hidden) - 1
    dense_norm = norm if norm.kind != "instance" else norm.model_copy(update={"kind": "none"})  # a Dense output has no positions
    for i, width in enumerate(spec.hidden):
        dense = keras.layers.Dense(width, use_bias=needs_bias(dense_norm), kernel_initializer=initializer(spec.init, layer_seed(seed, i)), name=f"dense_{i}")
        layers += normalised_block(dense, dense_norm, spec.activation, seed, i)
        if dropout.rate > 0 and (dropout.layers == "all" or i == last):
            layers.append(Dropout(dropout.rate, layer_seed(seed, 100 + i), name=f"dropout_{i}"))
    layers.append(keras.layers.Dense(CLASSES, kernel_initializer=initializer(spec.init, layer_seed(seed, len(spec.hidden))), name="logits"))
    return keras.Sequential(layers, name=spec.kind)


def needs_bias(norm) -> bool:
    """Batch statistics subtract each unit's (channel's) mean, so a bias before them is dead weight;
    layer, group and instance statistics subtract a mean over units, which leaves a bias its effect."""
    return norm.kind in ("none", "layer", "group", "instance") or norm.placement == "after_activation"


def normalised_block(weights, norm, activation: str, seed: int, i: int, name: str = "") -> list:
    """weights → norm → activation (or weights → activation → norm), with Santurkar et al.'s
    noise right after the norm: one hidden block, Dense or Conv2D."""
    act = keras.layers.Activation(activation, name=f"{activation}_{name}{i}")
    normalised = [] if norm.kind == "none" else [norm_layer(norm, f"norm_{name}{i}")]
    if normalised and norm.noise.scale > 0:
        normalised.append(BatchNormNoise(norm.noise.scale, layer_seed(seed, (300 if name else 200) + i), name=f"noise_{name}{i}"))
    return [weights, *normalised, act] if norm.placement == "before_activation" else [weights, act, *normalised]


def conv_layers(spec: Model, seed: int) -> list:
    """The cnn's conv blocks on the 28×28×1 image, flattened for the Dense blocks.

    Conv2D ("same" padding) → [norm] → activation → max-pool per block; the norm per feature
    map (bnexp/norm/batch.py, Ioffe & Szegedy 2015 §3.2). Kernels are seeded with layer_seed 500 + i.
    """
    layers = [keras.layers.Reshape((28, 28, 1), name="image")]
    for i, block in enumerate(spec.conv):
        conv = keras.layers.Conv2D(block.filters, block.kernel, strides=block.stride, padding="same", use_bias=needs_bias(spec.norm),
                                   kernel_initializer=initializer(spec.init, layer_seed(seed, 500 + i)), name=f"conv_{i}")
        layers += normalised_block(conv, spec.norm, spec.activation, seed, i, name="conv_")
        if block.pool > 1:
            layers.append(MaxPool(block.pool, name=f"pool_{i}"))
    return layers + [keras.layers.Flatten(name="flatten")]


class MaxPool(keras.layers.Layer):
    """k×k max-pooling with stride k ("valid": a remainder row or column is dropped), as
    keras.layers.MaxPooling2D(k) computes it, written as a reshape and a max.

    Why not Keras' own: under TensorFlow's op determinism (which bnexp's training enables) the
    XLA compiler refuses MaxPool's gradient op; the gradient of a max over a reshape is
    deterministic (ties share it equally, where MaxPoolGrad gives it to the first).
    """

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        k, (h, w, c) = self.size, x.shape[1:]
        x = x[:, :h // k * k, :w // k * k, :]
        return tf.reduce_max(tf.reshape(x, (-1, h // k, k, w // k, k, c)), axis=(2, 4))

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, h // self.size, w // self.size, c)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def pixel_permutation(seed: int = 0) -> np.ndarray:
    """Permuted MNIST's fixed order of the 784 pixels: the same for every run (seed 0, not the run's),
    so runs of different seeds see the same task."""
    return np.random.default_rng(seed).permutation(INPUTS)


def recurrent_layers(spec: Model, seed: int) -> list:
    """The rnn's input: (optionally permuted) pixels as 28 rows of 28 or 784 steps of 1, read by an LSTM."""
    layers = []
    if spec.permute:
        order = tf.constant(pixel_permutation(), tf.int32)
        layers.append(keras.layers.Lambda(lambda x: tf.gather(x, order, axis=1), name="permute"))
    steps = 28 if spec.sequence == "rows" else INPUTS
    layers.append(keras.layers.Reshape((steps, INPUTS // steps), name="sequence"))
    norm = spec.norm
    layers.append(LSTM(spec.lstm.units, norm=norm.kind, seed=layer_seed(seed, 400), gamma_init=spec.lstm.gamma_init,
                       t_max=spec.lstm.t_max, momentum=norm.momentum, epsilon=norm.epsilon, variance=norm.variance, name="lstm"))
    return layers


def norm_layers(model) -> list:
    """Every normalisation layer of `model`, in order (an LSTM's, norm_x, norm_h, norm_c, in its place)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, LSTM):
            found += layer.norms
        elif isinstance(layer, (BatchNorm, LayerNorm, keras.layers.BatchNormalization)):
            found.append(layer)
    return found


def moving_stat_layers(model) -> list:
    """The normalisation layers with moving statistics (`moving_mean`, `moving_variance`), in
    order: those `bnexp eval --stats batch/precise` apply to (not layer or group)."""
    return [layer for layer in norm_layers(model) if isinstance(layer, (BatchNorm, TimeBatchNorm, keras.layers.BatchNormalization))]


def pixels(images):
    """uint8 images (any leading shape) to float32 in [0, 1], flattened: done in-graph."""
    return tf.reshape(tf.cast(images, tf.float32) * (1.0 / 255.0), (-1, INPUTS))


def forward(model, images, labels, training: bool, stochastic: bool = True):
    """(logits, per-example cross-entropy) of uint8 `images` against int32 `labels`.

    training=True normalises each batch with its own statistics (BN's training mode) and
    updates the moving statistics; wrap it in `statistics_preserved` where that must not stick.
    With stochastic=False dropout and noise stay off even then (`bnexp eval --stats batch`).
    """
    x = pixels(images)
    logits = model(x, training=training) if stochastic or not training else run_layers(model, x, training=True, stochastic=False)
    return logits, tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)


def predicted_class(logits):
    """The predicted class of each row of logits, as int32 like the labels."""
    return tf.argmax(logits, axis=1, output_type=tf.int32)


@contextlib.contextmanager
def statistics_preserved(model):
    """Put every non-trainable variable (the BN moving statistics) back as it was.

    BN layers update their moving statistics whenever they see a batch in training mode;
    evaluation and diagnostics must never change a run's model.
    """
    saved = [(v, v.numpy()) for v in model.non_trainable_weights]
    try:
        yield
    finally:
        for variable, value in saved:
            variable.assign(value)
