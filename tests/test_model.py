"""bnexp.model.build_model: layer order, biases, parameter counts, seeding and initial scales."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from bnexp.config import Init, Model, Norm
from bnexp.model import build_model, norm_layers
from bnexp.norm import BatchNorm


def kinds(model):
    return [(layer.name, type(layer).__name__) for layer in model.layers]


def kernels(model):
    return [layer.kernel.numpy() for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_default_norm_is_dense_without_bias_then_batchnorm_then_activation():
    model = build_model(Model(hidden=[100, 100]), seed=0)
    assert kinds(model) == [
        ("dense_0", "Dense"), ("norm_0", "BatchNorm"), ("relu_0", "Activation"),
        ("dense_1", "Dense"), ("norm_1", "BatchNorm"), ("relu_1", "Activation"),
        ("logits", "Dense"),
    ]
    assert [model.get_layer(f"dense_{i}").use_bias for i in (0, 1)] == [False, False]
    assert model.get_layer("logits").use_bias
    assert model.output_shape == (None, 10)
    # Dense kernels without bias, BN: gamma, beta (trainable) + moving mean, variance; logits with bias.
    widths = [784, 100, 100]
    dense = sum(a * b for a, b in zip(widths, widths[1:]))
    assert model.count_params() == dense + 4 * 200 + (100 * 10 + 10)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == dense + 2 * 200 + 1010


def test_after_activation_keeps_dense_bias_and_puts_norm_after_activation():
    model = build_model(Model(hidden=[30, 20], activation="tanh", norm=Norm(placement="after_activation")), seed=0)
    assert kinds(model) == [
        ("dense_0", "Dense"), ("tanh_0", "Activation"), ("norm_0", "BatchNorm"),
        ("dense_1", "Dense"), ("tanh_1", "Activation"), ("norm_1", "BatchNorm"),
        ("logits", "Dense"),
    ]
    assert all(layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Dense))
    assert model.count_params() == (784 * 30 + 30) + (30 * 20 + 20) + (20 * 10 + 10) + 4 * 50


def test_norm_none_has_no_norm_layers_and_dense_biases():
    model = build_model(Model(hidden=[50, 40], norm=Norm(kind="none")), seed=0)
    assert kinds(model) == [
        ("dense_0", "Dense"), ("relu_0", "Activation"), ("dense_1", "Dense"), ("relu_1", "Activation"), ("logits", "Dense")
    ]
    assert norm_layers(model) == []
    assert all(layer.use_bias for layer in model.layers if isinstance(layer, keras.layers.Dense))
    assert model.count_params() == (784 * 50 + 50) + (50 * 40 + 40) + (40 * 10 + 10)


@pytest.mark.parametrize("kind, cls", [("batch", BatchNorm), ("keras", keras.layers.BatchNormalization)])
def test_norm_layers_returns_the_norm_layers_in_order_with_configured_settings(kind, cls):
    norm = Norm(kind=kind, momentum=0.9, epsilon=1e-5, center=False, scale=True)
    model = build_model(Model(hidden=[8, 7, 6], norm=norm), seed=0)
    found = norm_layers(model)
    assert [layer.name for layer in found] == ["norm_0", "norm_1", "norm_2"]
    assert all(type(layer) is cls for layer in found)
    assert [layer.moving_mean.shape for layer in found] == [(8,), (7,), (6,)]
    for layer in found:
        assert (layer.momentum, layer.epsilon, layer.center, layer.scale) == (0.9, 1e-5, False, True)


def test_keras_norm_rejects_unbiased_variance():
    with pytest.raises(ValueError, match="unbiased"):
        build_model(Model(norm=Norm(kind="keras", variance="unbiased")), seed=0)


def test_same_seed_gives_identical_initial_weights_across_builds_and_norm_kinds():
    spec = dict(hidden=[64, 32], init=Init(kind="normal", std=0.1))
    ours = build_model(Model(**spec, norm=Norm(kind="batch")), seed=3)
    again = build_model(Model(**spec, norm=Norm(kind="batch")), seed=3)
    theirs = build_model(Model(**spec, norm=Norm(kind="keras")), seed=3)
    other = build_model(Model(**spec, norm=Norm(kind="batch")), seed=4)
    for a, b, c, d in zip(kernels(ours), kernels(again), kernels(theirs), kernels(other), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
        assert not np.allclose(a, d)
    # Each layer draws from its own seed: no two layers start from the same stream.
    first = [k.ravel()[:32] for k in kernels(ours)]
    assert not np.allclose(first[0], first[1]) and not np.allclose(first[1], first[2])


@pytest.mark.parametrize(
    "init, expected_std",
    [
        (Init(kind="normal", std=0.05), 0.05),
        (Init(kind="uniform", std=0.05), 0.05),
        (Init(kind="he"), np.sqrt(2 / 784)),
        (Init(kind="glorot"), np.sqrt(2 / (784 + 1000))),
    ],
)
def test_initial_kernel_has_the_configured_std(init, expected_std):
    model = build_model(Model(hidden=[1000], init=init), seed=0)
    kernel = model.get_layer("dense_0").kernel.numpy()
    assert abs(kernel.mean()) < 0.01 * expected_std
    np.testing.assert_allclose(kernel.std(), expected_std, rtol=0.02)
    if init.kind == "uniform":  # U(-a, a) with a = std·√3: the bounds are reached, never passed
        limit = 0.05 * np.sqrt(3)
        assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.99 * limit


def test_dropout_and_noise_layers_sit_where_the_config_says_and_only_when_on():
    from bnexp.config import Dropout, Noise

    spec = Model(hidden=[30, 20], norm=Norm(noise=Noise(scale=0.5)), dropout=Dropout(rate=0.2, input_rate=0.1))
    assert kinds(build_model(spec, seed=0)) == [
        ("dropout_input", "Dropout"),
        ("dense_0", "Dense"), ("norm_0", "BatchNorm"), ("noise_0", "BatchNormNoise"), ("relu_0", "Activation"), ("dropout_0", "Dropout"),
        ("dense_1", "Dense"), ("norm_1", "BatchNorm"), ("noise_1", "BatchNormNoise"), ("relu_1", "Activation"), ("dropout_1", "Dropout"),
        ("logits", "Dense"),
    ]
    last = build_model(Model(hidden=[30, 20], norm=Norm(placement="after_activation"), dropout=Dropout(rate=0.2, layers="last")), seed=0)
    assert [name for name, _ in kinds(last)] == ["dense_0", "relu_0", "norm_0", "dense_1", "relu_1", "norm_1", "dropout_1", "logits"]
    off = build_model(Model(hidden=[30, 20], dropout=Dropout(rate=0.0, layers="last")), seed=0)
    assert [w.path for w in off.weights] == [w.path for w in build_model(Model(hidden=[30, 20]), seed=0).weights]


def test_renorm_and_ghost_batch_get_their_averaging_from_the_config():
    renorm = build_model(Model(hidden=[8], norm=Norm(kind="batch_renorm", moving_average="variance")), seed=0)
    ghost = build_model(Model(hidden=[8], norm=Norm(kind="ghost_batch", virtual_batch_size=4, moving_update="per_step")), seed=0)
    assert renorm.get_layer("norm_0").moving_average == "variance"
    assert ghost.get_layer("norm_0").moving_update == "per_step"
    assert build_model(Model(hidden=[8], norm=Norm(kind="batch_renorm")), seed=0).get_layer("norm_0").moving_average == "sigma"
