"""Weight decay and which variables train: the TensorFlow side of `train.weight_decay`,
`train.weight_decay_norm` and `train.trainable`.

- `l2_penalty`: the coupled L2 penalty λ/2 · Σ‖W‖², added to the training loss, so its
  gradient λ · W joins the loss gradient before the optimizer sees it (with Adam it is then
  divided by Adam's running scale; decoupled decay, AdamW's, is not this).
- `norm_affine_variables`: the γ and β of every normalisation layer, the only variables
  trained under Frankle, Schwab & Morcos (2021), "Training BatchNorm and Only BatchNorm".
- `random_kernel_masks`: that paper's control, the same number of randomly chosen weights.
- `Objective`: the three together, as a config asks for them: what train's step minimises
  and updates, and what Santurkar et al.'s measurements differentiate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bnexp.backend import tensorflow

tf = tensorflow()

import keras  # noqa: E402

from bnexp.model import forward, norm_layers  # noqa: E402
from bnexp.recurrent import LSTM  # noqa: E402


MASK_STREAM = 2021  # keeps these draws apart from others keyed on the run seed (e.g. epoch orders)


def dense_layers(model) -> list:
    """Every Dense layer of `model`, in order (the hidden layers, then the logits)."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def weight_layers(model) -> list:
    """Every layer with a weight matrix, in order: Dense, and in cnn and rnn networks the
    Conv2D layers and the LSTM (its `kernel` W_x; its W_h is `recurrent_kernel`)."""
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D, LSTM))]


def norm_affine_variables(model) -> list:
    """γ and β (where present) of every normalisation layer, in order."""
    return [v for layer in norm_layers(model) for v in (layer.gamma, layer.beta) if v is not None]


def decay_variables(model, include_norm: bool = False) -> list:
    """The variables `train.weight_decay` penalises: every Dense and Conv2D kernel and the
    LSTM's W_x and W_h (biases are not decayed), and with `include_norm`
    (`train.weight_decay_norm`) γ and β too."""
    kernels = [v for layer in weight_layers(model) for v in (layer.kernel, getattr(layer, "recurrent_kernel", None)) if v is not None]
    return kernels + (norm_affine_variables(model) if include_norm else [])


def l2_penalty(variables, weight_decay: float):
    """λ/2 · Σ_W ‖W‖² over `variables`, in float32 (its gradient is λ · W for each W)."""
    return 0.5 * weight_decay * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in variables])


def random_kernel_masks(model, seed: int) -> list[tuple]:
    """Frankle et al. (2021)'s control for training only γ and β: train as many randomly
    chosen weights, the rest frozen at their initial values.

    The paper compares BN-only training with "an equivalent number of randomly chosen
    parameters elsewhere in the network", two per channel, matching γ and β. In this MLP a
    channel is a hidden unit: for each unit of each hidden Dense layer we pick, uniformly and
    without replacement, as many of its incoming kernel weights as its normalisation layer
    has affine parameters (2 with γ and β; 1 with only one; `center` and `scale` decide),
    so exactly as many parameters train, spread as γ and β are. As in BN-only training, the
    output layer (kernel and bias), every bias and γ, β themselves stay frozen: the paper
    trains γ and β "freezing all weights at their random initializations" (its abstract),
    the output layer's included.

    Returns [(kernel variable, 0/1 mask of its shape)] for the hidden layers, in order; train
    those variables only, their gradients multiplied by their masks (after any weight-decay
    term is added). Under SGD, momentum or Adam a weight whose gradient is always 0 never
    moves, so the frozen ones keep their initial values exactly. The choice is a pure
    function of (seed, layer index).
    """
    layers = norm_layers(model)
    if not layers:
        raise ValueError("the random-parameter control needs normalisation layers: it trains as many weights as they have γ and β")
    masks = []
    for index, (dense, norm) in enumerate(zip(dense_layers(model), layers)):
        per_unit = (norm.gamma is not None) + (norm.beta is not None)
        fan_in, units = dense.kernel.shape
        if per_unit > fan_in:
            raise ValueError(f"{dense.name} has {fan_in} inputs per unit, fewer than the {per_unit} weights to train per unit")
        rng = np.random.default_rng([seed, MASK_STREAM, index])
        mask = np.zeros((fan_in, units), dense.kernel.dtype)
        for unit in range(units):
            mask[rng.choice(fan_in, size=per_unit, replace=False), unit] = 1
        masks.append((dense.kernel, mask))
    return masks


@dataclass
class Objective:
    """What training minimises and which variables it moves, for one model and `train` config.

    `variables` are the trained variables (the optimizer's list); `masks` [(variable, 0/1
    mask)] multiply some of their gradients (the random-weights control); `decay` are the
    variables the L2 penalty covers and `weight_decay` its λ, kept here, in one place, so
    the step and the measurements read the same value.
    """

    variables: list
    masks: list
    decay: list
    weight_decay: float
    # λ as the step reads it: a variable (a program input), None when λ is 0 and the penalty is off.
    weight_decay_input: Any = None

    @classmethod
    def of(cls, model, train, seed: int) -> "Objective":
        """`train.trainable`: all variables; `norm` γ and β only; `random_weights` the control's kernels."""
        masks = random_kernel_masks(model, seed) if train.trainable == "random_weights" else []
        if train.trainable == "norm":
            variables = norm_affine_variables(model)
        elif train.trainable == "random_weights":
            variables = [v for v, _ in masks]
        else:
            variables = list(model.trainable_variables)
        decay_input = tf.Variable(train.weight_decay, dtype=tf.float32, trainable=False) if train.weight_decay > 0 else None
        return cls(variables, masks, decay_variables(model, train.weight_decay_norm), train.weight_decay, decay_input)

    def penalized(self, loss):
        """`loss` plus λ/2 · Σ‖W‖² (nothing added, no op, when λ is 0)."""
        return loss + l2_penalty(self.decay, self.weight_decay_input) if self.weight_decay > 0 else loss

    def masked(self, grads: list) -> list:
        """The gradients of `variables`, each multiplied by its mask where it has one."""
        mask_of = {id(v): m for v, m in self.masks}
        return [g * mask_of[id(v)] if id(v) in mask_of else g for v, g in zip(self.variables, grads)]

    def loss(self, model, images, labels, training: bool):
        """The training objective on uint8 `images`: mean cross-entropy plus the penalty."""
        _, losses = forward(model, images, labels, training)
        return self.penalized(tf.reduce_mean(losses))
