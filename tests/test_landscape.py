"""bnexp.landscape (Santurkar et al. 2018, Definition 2.1 and Figure 4) against a NumPy
transcription of a tiny 4-3-3-2 MLP, with and without BN, differentiated by central finite
differences in float64; and the model left exactly as it was."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnexp.landscape import STEP_MULTIPLIERS, internal_covariate_shift, loss_landscape
from bnexp.norm import BatchNorm, BatchRenorm
from bnexp.regularize import norm_affine_variables
from bnexp.stochastic import BatchNormNoise, Dropout

EPSILON = 1e-3
WIDTHS = (4, 3, 3, 2)


def tiny_mlp(bn: bool, dtype="float64", extra=lambda i: []):
    """Dense → [BN] → tanh per hidden layer, then logits; `extra(i)` layers end hidden block i."""
    rng = np.random.default_rng(0)
    layers = [keras.Input((WIDTHS[0],), dtype=dtype)]
    for i, width in enumerate(WIDTHS[1:-1]):
        layers.append(keras.layers.Dense(width, use_bias=not bn, name=f"dense_{i}", dtype=dtype))
        if bn:
            layers.append(BatchNorm(momentum=0.5, epsilon=EPSILON, name=f"norm_{i}", dtype=dtype))
        layers += [keras.layers.Activation("tanh", name=f"tanh_{i}", dtype=dtype), *extra(i)]
    layers.append(keras.layers.Dense(WIDTHS[-1], name="logits", dtype=dtype))
    model = keras.Sequential(layers)
    for v in model.trainable_variables:  # non-trivial values everywhere, γ away from 1
        v.assign(rng.normal(size=v.shape) * (0.3 if "beta" in v.path else 1.0) + (1.0 if "gamma" in v.path else 0.0))
    return model


def cross_entropy(model, x, y, training):
    logits = model(x, training=training)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))


def numpy_loss(params: dict, x, y, bn: bool):
    """The tiny MLP's training-mode loss in float64; `params` by variable path without the model prefix."""
    h = x
    for i in range(len(WIDTHS) - 2):
        z = h @ params[f"dense_{i}/kernel"]
        if bn:
            z = params[f"norm_{i}/gamma"] * (z - z.mean(0)) / np.sqrt(z.var(0) + EPSILON) + params[f"norm_{i}/beta"]
        else:
            z = z + params[f"dense_{i}/bias"]
        h = np.tanh(z)
    logits = h @ params["logits/kernel"] + params["logits/bias"]
    logits = logits - logits.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(len(y)), y]))


def numeric_gradient(params: dict, names, x, y, bn: bool, h=1e-6) -> dict:
    """Central finite differences of `numpy_loss` with respect to params[name] for each name."""
    grads = {}
    for name in names:
        value, grad = params[name], np.zeros_like(params[name])
        for i in np.ndindex(value.shape):
            for sign in (1, -1):
                shifted = value.copy()
                shifted[i] += sign * h
                grad[i] += sign * numpy_loss({**params, name: shifted}, x, y, bn) / (2 * h)
        grads[name] = grad
    return grads


def params_of(model) -> dict:
    return {v.path.split("/", 1)[1]: v.numpy().astype(np.float64) for v in model.trainable_variables}


def data(seed=1, m=8):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, WIDTHS[0])) * 2 + 0.5, rng.integers(0, WIDTHS[-1], m).astype(np.int32)


def layer_of(name):
    return name.split("/")[0]


ORDER = ["dense_0", "norm_0", "dense_1", "norm_1", "logits"]


@pytest.mark.parametrize("bn", [True, False], ids=["bn", "standard"])
def test_ics_matches_definition_2_1_by_finite_differences(bn):
    model, (x, y), lr = tiny_mlp(bn), data(), 0.5
    rows = internal_covariate_shift(model, cross_entropy, x, y, lr)

    params = params_of(model)
    grads = numeric_gradient(params, params, x, y, bn)
    assert [row["layer"] for row in rows] == ["dense_0", "dense_1", "logits"]
    for row in rows:
        earlier = ORDER[:ORDER.index(row["layer"])]
        stepped = {name: value - lr * grads[name] if layer_of(name) in earlier else value for name, value in params.items()}
        kernel = f"{row['layer']}/kernel"
        g, g_moved = grads[kernel], numeric_gradient(stepped, [kernel], x, y, bn)[kernel]
        np.testing.assert_allclose(row["ics_l2"], np.linalg.norm(g - g_moved), rtol=1e-5, atol=1e-9, err_msg=row["layer"])
        cosine = np.sum(g * g_moved) / np.linalg.norm(g) / np.linalg.norm(g_moved)
        np.testing.assert_allclose(row["ics_cosine"], cosine, rtol=1e-6, err_msg=row["layer"])
    assert rows[0]["ics_l2"] == 0 and rows[0]["ics_cosine"] == pytest.approx(1)  # nothing before the first layer
    assert all(row["ics_l2"] > 1e-4 for row in rows[1:])  # a real shift, not a vacuous 0


@pytest.mark.parametrize("bn", [True, False], ids=["bn", "standard"])
def test_landscape_matches_finite_differences(bn):
    model, (x, y), lr = tiny_mlp(bn), data(2), 0.3
    result = loss_landscape(model, cross_entropy, x, y, lr)

    params = params_of(model)
    g = numeric_gradient(params, params, x, y, bn)
    flat = np.concatenate([g[name].ravel() for name in params])
    losses, changes, betas = [], [], []
    for s in STEP_MULTIPLIERS:
        eta = s * lr
        moved = {name: value - eta * g[name] for name, value in params.items()}
        g_moved = numeric_gradient(moved, params, x, y, bn)
        change = np.linalg.norm(np.concatenate([g_moved[name].ravel() for name in params]) - flat)
        losses.append(numpy_loss(moved, x, y, bn))
        changes.append(change)
        betas.append(change / (eta * np.linalg.norm(flat)))
    np.testing.assert_allclose(result["loss_min"], min(losses), rtol=1e-8)  # moved by a finite-difference g
    np.testing.assert_allclose(result["loss_max"], max(losses), rtol=1e-8)
    np.testing.assert_allclose(result["grad_change_max"], max(changes), rtol=1e-5)
    np.testing.assert_allclose(result["beta_smoothness"], max(betas), rtol=1e-5)
    assert result["loss_max"] > result["loss_min"]


def test_landscape_over_the_trained_variables_only():
    """BN-only training (`train.trainable: norm`): the walk and the gradients are over γ and β."""
    model, (x, y), lr = tiny_mlp(True), data(3), 0.4
    result = loss_landscape(model, cross_entropy, x, y, lr, trained=norm_affine_variables(model), multipliers=(1.0, 2.0))

    params = params_of(model)
    names = [v.path.split("/", 1)[1] for v in norm_affine_variables(model)]
    g = numeric_gradient(params, names, x, y, True)
    flat = np.concatenate([g[n].ravel() for n in names])
    changes = []
    for eta in (lr, 2 * lr):
        g_moved = numeric_gradient({**params, **{n: params[n] - eta * g[n] for n in names}}, names, x, y, True)
        changes.append(np.linalg.norm(np.concatenate([g_moved[n].ravel() for n in names]) - flat) / (eta * np.linalg.norm(flat)))
    np.testing.assert_allclose(result["beta_smoothness"], max(changes), rtol=1e-5)


def test_measurements_leave_model_and_optimizer_untouched_and_are_repeatable():
    """Moving statistics, BatchRenorm's and the noise/dropout step counters, weights and the
    optimizer's slots are bit-identical afterwards; a second measurement gives the same values
    (dropout and noise draw the same at the restored step)."""
    def extra(i):
        return [BatchNormNoise(0.5, seed=10 + i, name=f"noise_{i}", dtype="float32"), Dropout(0.3, seed=20 + i, name=f"dropout_{i}", dtype="float32")]

    model = tiny_mlp(True, dtype="float32", extra=extra)
    renorm = keras.Sequential([keras.Input((3,)), BatchRenorm(momentum=0.5, name="renorm")])
    model = keras.Sequential([*model.layers[:-1], keras.layers.Dense(3), *renorm.layers, keras.layers.Dense(2, name="out")])
    x, y = data(4)
    x = x.astype(np.float32)
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    with tf.GradientTape() as tape:
        loss = cross_entropy(model, x, y, True)
    optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    before = [v.numpy().copy() for v in model.variables + optimizer.variables]
    ics = internal_covariate_shift(model, cross_entropy, x, y, 0.1)
    landscape = loss_landscape(model, cross_entropy, x, y, 0.1)
    after = [v.numpy() for v in model.variables + optimizer.variables]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert {v.path.split("/")[-2] for v in model.non_trainable_weights if v.name == "step"} >= {"noise_0", "dropout_1", "renorm"}
    assert internal_covariate_shift(model, cross_entropy, x, y, 0.1) == ics
    assert loss_landscape(model, cross_entropy, x, y, 0.1) == landscape
