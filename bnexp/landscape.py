"""Santurkar, Tsipras, Ilyas & Madry (2018), "How Does Batch Normalization Help
Optimization?": internal covariate shift as their Definition 2.1 measures it, and the
loss-landscape measures of their section 3.1 / Figure 4.

Each function looks at one training batch (x, y) at the model's current point and leaves the
model exactly as it found it: every variable of `model.variables` (weights, BN moving
statistics, BatchRenorm's and the noise/dropout layers' step counters) is put back after each
forward pass, and the optimizer is never touched. Gradients come from training-mode forward
passes, as in training: BN normalises with the batch's own statistics, and dropout and
noise draw what they would draw at this step (their draws are keyed on the restored step
counter, so every pass of one measurement sees the same masks and noise).

`loss_fn(model, x, y, training)` is the training objective (with any weight-decay term, so
its gradient is the update direction). `trained` are the variables training updates
(default: `model.trainable_variables`), and `masks` optional [(variable, 0/1 mask)] pairs
as `bnexp.regularize.random_kernel_masks` gives, multiplying those variables' gradients.
The update is a plain SGD step, W − η · G, as in the paper's definition; with another
optimizer it is the step SGD would take at the run's learning rate η.
"""

from __future__ import annotations

import numpy as np

from bnexp.backend import tensorflow

tf = tensorflow()

from bnexp.regularize import weight_layers  # noqa: E402

STEP_MULTIPLIERS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)


class Snapshot:
    """Every variable of `model`, to be put back after each forward pass."""

    def __init__(self, model):
        self.saved = [(v, v.numpy()) for v in model.variables]

    def restore(self):
        for variable, value in self.saved:
            variable.assign(value)


def gradients_at(model, loss_fn, x, y, variables, snapshot, moved=()):
    """(loss, [gradient of each of `variables` as float64]) with the variables in `moved`
    ([(variable, value)]) set to those values; the model is restored afterwards."""
    try:
        for variable, value in moved:
            variable.assign(value)
        with tf.GradientTape() as tape:
            loss = loss_fn(model, x, y, True)
        grads = tape.gradient(loss, variables)
        return float(loss), [np.zeros(v.shape) if g is None else np.asarray(g, np.float64) for v, g in zip(variables, grads)]
    finally:
        snapshot.restore()


def sgd_step(variables, grads, learning_rate, masks):
    """[(variable, W − η · mask · G)] for each of `variables`."""
    masks = {id(v): m for v, m in masks}
    return [(v, (v.numpy() - learning_rate * masks.get(id(v), 1) * g).astype(v.numpy().dtype)) for v, g in zip(variables, grads)]


def internal_covariate_shift(model, loss_fn, x, y, learning_rate, trained=None, masks=()) -> list[dict]:
    """Definition 2.1, for each Dense layer i (the paper's layer parameters W_i are its kernel;
    in a cnn every Conv2D layer too, as Santurkar et al. measure it on VGG's conv layers, and in
    an rnn the LSTM's W_x):

        G_i  = ∇_{W_i} L(W_1, …, W_k; x, y)
        G'_i = ∇_{W_i} L(W'_1, …, W'_{i−1}, W_i, …, W_k; x, y)

    with W' the values after one SGD step on the same batch: every trained variable of the
    layers before Dense layer i (earlier kernels and biases, and the γ, β of earlier
    normalisation layers) takes its step, layer i and everything after it do not. Returns one
    row per Dense layer: `layer` (its name), `ics_l2` = ‖G − G'‖₂ and `ics_cosine` =
    ⟨G, G'⟩ / (‖G‖‖G'‖) (NaN where a gradient is 0). The first layer has no earlier
    layers: its ICS is 0 and its cosine 1.
    """
    trained = list(model.trainable_variables if trained is None else trained)
    snapshot = Snapshot(model)
    layers = weight_layers(model)
    kernels = [layer.kernel for layer in layers]
    _, grads = gradients_at(model, loss_fn, x, y, trained + kernels, snapshot)
    trained_grads, kernel_grads = grads[:len(trained)], grads[len(trained):]
    stepped = {id(v): moved for v, moved in zip(trained, sgd_step(trained, trained_grads, learning_rate, masks))}
    rows = []
    for layer, g in zip(layers, kernel_grads):
        before = model.layers[:model.layers.index(layer)]
        moved = [stepped[id(v)] for earlier in before for v in earlier.trainable_weights if id(v) in stepped]
        _, (g_moved,) = gradients_at(model, loss_fn, x, y, [layer.kernel], snapshot, moved)
        norms = np.linalg.norm(g) * np.linalg.norm(g_moved)
        cosine = float(np.sum(g * g_moved) / norms) if norms > 0 else float("nan")
        rows.append({"layer": layer.name, "ics_l2": float(np.linalg.norm(g - g_moved)), "ics_cosine": cosine})
    return rows


def loss_landscape(model, loss_fn, x, y, learning_rate, trained=None, masks=(), multipliers=STEP_MULTIPLIERS) -> dict:
    """Section 3.1 / Figure 4: from the current point W, move along the update direction
    −g (g the (masked) gradient of the trained variables) by η_s = s · learning_rate for each
    s in `multipliers`, and record

        loss_min, loss_max   the range of L(W − η_s g) over the steps (Figure 4a, "loss landscape");
        grad_change_max      max_s ‖∇L(W − η_s g) − ∇L(W)‖₂ (4b, "gradient predictiveness");
        beta_smoothness      max_s ‖∇L(W − η_s g) − ∇L(W)‖₂ / ‖η_s g‖₂ (4c, "effective β-smoothness").

    Gradients are over the trained variables (masked like g). The default multipliers,
    0.5 to 4 in steps of 0.5, express as multiples of the run's rate the range of step sizes
    we understand Figure 4 to use, 0.05 to 0.4 at its learning rate of 0.1 (not re-checked
    against the paper's appendix; see docs/reference.md). The current point's loss is not part of
    the range.
    """
    trained = list(model.trainable_variables if trained is None else trained)
    snapshot = Snapshot(model)
    mask_of = {id(v): m for v, m in masks}

    def masked(grads):
        return np.concatenate([(mask_of.get(id(v), 1) * g).ravel() for v, g in zip(trained, grads)])

    _, grads = gradients_at(model, loss_fn, x, y, trained, snapshot)
    g = masked(grads)
    losses, changes, betas = [], [], []
    for s in multipliers:
        eta = s * learning_rate
        loss, moved_grads = gradients_at(model, loss_fn, x, y, trained, snapshot, sgd_step(trained, grads, eta, masks))
        change = np.linalg.norm(masked(moved_grads) - g)
        losses.append(loss)
        changes.append(change)
        betas.append(change / (eta * np.linalg.norm(g)) if np.any(g) else float("nan"))
    return {"loss_min": min(losses), "loss_max": max(losses), "grad_change_max": float(max(changes)),
            "beta_smoothness": float(max(betas))}
