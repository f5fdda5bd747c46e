"""bnexp.regularize: the L2 penalty's gradient against its closed form, BN-only training
(Frankle et al. 2021) leaving every other weight bit-identical, and the random-weights control
training exactly as many parameters as γ and β."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnexp.config import Model, Norm
from bnexp.model import build_model
from bnexp.regularize import decay_variables, dense_layers, l2_penalty, norm_affine_variables, random_kernel_masks


def small_model(kind="batch", **norm):
    return build_model(Model(hidden=[8, 6], norm=Norm(kind=kind, **norm)), seed=3)


def batch(seed=0, m=32):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(m, 784)).astype(np.float32), rng.integers(0, 10, m).astype(np.int32)


def cross_entropy(model, x, y):
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True)))


def test_decay_variables_are_the_dense_kernels_and_optionally_gamma_and_beta():
    model = small_model()
    names = lambda vs: [v.path.split("/", 1)[1] for v in vs]  # noqa: E731
    assert names(decay_variables(model)) == ["dense_0/kernel", "dense_1/kernel", "logits/kernel"]
    assert names(decay_variables(model, include_norm=True)) == names(decay_variables(model)) + [
        "norm_0/gamma", "norm_0/beta", "norm_1/gamma", "norm_1/beta"]
    assert names(decay_variables(small_model("none"))) == ["dense_0/kernel", "dense_1/kernel", "logits/kernel"]


@pytest.mark.parametrize("include_norm", [False, True])
def test_weight_decay_gradient_is_the_loss_gradient_plus_lambda_w(include_norm):
    """∇(L + λ/2 Σ‖W‖²) = ∇L + λ·W on the decayed variables, ∇L elsewhere; the value is λ/2 Σ‖W‖²."""
    model, (x, y), lam = small_model(), batch(), 0.03
    for v in norm_affine_variables(model):  # γ, β away from their initial 1, 0
        v.assign(np.random.default_rng(1).normal(size=v.shape).astype(np.float32))
    decayed = decay_variables(model, include_norm)
    variables = model.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        loss = cross_entropy(model, x, y)
        penalty = l2_penalty(decayed, lam)
        total = loss + penalty
    plain, with_decay = tape.gradient(loss, variables), tape.gradient(total, variables)
    np.testing.assert_allclose(float(penalty), lam / 2 * sum(np.sum(v.numpy().astype(np.float64) ** 2) for v in decayed), rtol=1e-5)
    decayed_ids = {id(v) for v in decayed}
    for v, g, g_decay in zip(variables, plain, with_decay, strict=True):
        expected = g.numpy() + (lam * v.numpy() if id(v) in decayed_ids else 0)
        np.testing.assert_allclose(g_decay.numpy(), expected, rtol=1e-5, atol=1e-7, err_msg=v.path)
    assert any("gamma" in v.path for v in decayed) == include_norm


def train(model, variables, steps=5, masks=None, optimizer=None):
    """A few optimizer steps on `variables` only, gradients multiplied by `masks` where given."""
    optimizer = optimizer or keras.optimizers.SGD(0.5, momentum=0.9)
    for step in range(steps):
        x, y = batch(step)
        with tf.GradientTape() as tape:
            loss = cross_entropy(model, x, y)
        grads = tape.gradient(loss, variables)
        if masks is not None:
            grads = [g * m for g, m in zip(grads, masks)]
        optimizer.apply(grads, variables)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["batch", "keras", "layer"])
def test_training_only_norm_keeps_every_other_weight_bit_identical(kind, optimizer):
    model = small_model(kind)
    trained = norm_affine_variables(model)
    assert len(trained) == 4
    frozen = [v for v in model.trainable_variables if all(v is not t for t in trained)]
    assert {v.path.split("/")[-2] for v in frozen} == {"dense_0", "dense_1", "logits"}  # the output layer too
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    train(model, trained, optimizer=keras.optimizers.Adam(0.01) if optimizer == "adam" else None)
    for v in frozen:
        np.testing.assert_array_equal(v.numpy(), before[v.path], err_msg=v.path)
    for v in trained:
        assert np.all(v.numpy() != before[v.path]), v.path  # every γ and β moved


def test_norm_affine_variables_follow_center_and_scale():
    assert [v.name for v in norm_affine_variables(small_model(center=False))] == ["gamma", "gamma"]
    assert norm_affine_variables(small_model(center=False, scale=False)) == []
    assert norm_affine_variables(small_model("none")) == []


@pytest.mark.parametrize("norm, per_unit", [({}, 2), ({"center": False}, 1)])
def test_random_control_chooses_as_many_weights_as_gamma_and_beta_per_unit(norm, per_unit):
    model = small_model(**norm)
    masks = random_kernel_masks(model, seed=7)
    assert [v.path.split("/", 1)[1] for v, _ in masks] == ["dense_0/kernel", "dense_1/kernel"]
    for (_, mask), layer in zip(masks, dense_layers(model)):
        np.testing.assert_array_equal(mask.sum(axis=0), per_unit)  # per unit (column), as γ, β are per unit
        assert set(np.unique(mask)) == {0, 1}
    assert sum(int(m.sum()) for _, m in masks) == sum(int(np.prod(v.shape)) for v in norm_affine_variables(model))
    again, other = random_kernel_masks(model, seed=7), random_kernel_masks(model, seed=8)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(masks, again))
    assert not all(np.array_equal(a, b) for (_, a), (_, b) in zip(masks, other))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_random_control_trains_exactly_the_chosen_weights(optimizer):
    model = small_model()
    pairs = random_kernel_masks(model, seed=7)
    variables, masks = [v for v, _ in pairs], [tf.constant(m) for _, m in pairs]
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    train(model, variables, masks=masks, optimizer=keras.optimizers.Adam(0.01) if optimizer == "adam" else None)
    changed = 0
    for v in model.trainable_variables:
        moved = v.numpy() != before[v.path]
        mask = next((m for w, m in pairs if w is v), np.zeros(v.shape))
        np.testing.assert_array_equal(moved, mask.astype(bool), err_msg=v.path)  # the chosen move, nothing else
        changed += int(moved.sum())
    assert changed == 2 * (8 + 6)


def test_random_control_needs_normalisation_layers():
    with pytest.raises(ValueError, match="normalisation layers"):
        random_kernel_masks(small_model("none"), seed=0)
