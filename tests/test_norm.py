"""bnexp.norm.BatchNorm against independent references: Keras' BatchNormalization, a NumPy
transcription of Ioffe & Szegedy (2015) Algorithm 1, finite differences and the closed-form EMA."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from bnexp.norm import BatchNorm

SETTINGS = [
    dict(momentum=0.9, epsilon=1e-3, center=True, scale=True),
    dict(momentum=0.5, epsilon=1e-5, center=True, scale=False),
    dict(momentum=0.99, epsilon=1e-1, center=False, scale=True),
    dict(momentum=0.8, epsilon=1e-3, center=False, scale=False),
]
SHAPES = [(8, 3), (2, 5), (64, 4)]


def batch(rng, shape, dtype="float32"):
    """Features with distinct, non-trivial means and scales, so every statistic matters."""
    m, n = shape
    return (rng.normal(size=shape) * rng.uniform(0.5, 3, n) + rng.uniform(-2, 2, n)).astype(dtype)


def set_affine(layer, rng, n):
    """Non-trivial gamma and beta (where the layer has them); returns them as NumPy (1 / 0 when absent)."""
    gamma, beta = rng.uniform(0.5, 2, n), rng.uniform(-1, 1, n)
    if layer.gamma is not None:
        layer.gamma.assign(gamma.astype(layer.gamma.dtype))
    if layer.beta is not None:
        layer.beta.assign(beta.astype(layer.beta.dtype))
    return (gamma if layer.gamma is not None else 1.0), (beta if layer.beta is not None else 0.0)


def forward_and_grads(layer, x, training, weights):
    """y, and the gradients of sum(y * weights) w.r.t. x and each of gamma/beta the layer has."""
    x = tf.convert_to_tensor(x)
    params = [v for v in (layer.gamma, layer.beta) if v is not None]
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(y * weights)
    grads = tape.gradient(loss, [x, *params])
    return y.numpy(), {"x": grads[0].numpy(), **{p.name: g.numpy() for p, g in zip(params, grads[1:])}}


def algorithm1(x, gamma, beta, epsilon):
    """Ioffe & Szegedy Algorithm 1, in float64: batch mean, biased variance, x_hat, gamma·x_hat + beta."""
    x = np.asarray(x, np.float64)
    mu = x.sum(0) / len(x)
    var = ((x - mu) ** 2).sum(0) / len(x)
    return gamma * (x - mu) / np.sqrt(var + epsilon) + beta


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("settings", SETTINGS)
def test_matches_keras_batch_normalization_in_training_and_inference(settings, shape):
    rng = np.random.default_rng(0)
    ours, theirs = BatchNorm(**settings), keras.layers.BatchNormalization(**settings)
    for layer in (ours, theirs):
        layer.build(shape)
        set_affine(layer, np.random.default_rng(1), shape[1])
    weights = rng.normal(size=shape).astype("float32")

    # Training mode, three different batches: outputs, gradients and the moving statistics agree.
    for _ in range(3):
        x = batch(rng, shape)
        y, g = forward_and_grads(ours, x, True, weights)
        y_ref, g_ref = forward_and_grads(theirs, x, True, weights)
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
        assert g.keys() == g_ref.keys()
        for name in g:
            np.testing.assert_allclose(g[name], g_ref[name], rtol=1e-5, atol=1e-5, err_msg=name)
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours.moving_mean.numpy(), 0)  # the stats really moved

    # Inference mode, on the moving statistics: outputs and gradients agree, and nothing moves.
    x = batch(rng, shape)
    before = ours.moving_mean.numpy().copy()
    y, g = forward_and_grads(ours, x, False, weights)
    y_ref, g_ref = forward_and_grads(theirs, x, False, weights)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    for name in g:
        np.testing.assert_allclose(g[name], g_ref[name], rtol=1e-5, atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(ours.moving_mean.numpy(), before)


@pytest.mark.parametrize("variance", ["biased", "unbiased"])
@pytest.mark.parametrize("settings", SETTINGS)
def test_training_forward_matches_numpy_algorithm1(settings, variance):
    """Training normalises with the biased batch variance, whichever variance the moving average tracks."""
    rng = np.random.default_rng(2)
    x = batch(rng, (16, 6))
    layer = BatchNorm(**settings, variance=variance)
    layer.build(x.shape)
    gamma, beta = set_affine(layer, rng, 6)
    y = layer(x, training=True).numpy()
    np.testing.assert_allclose(y, algorithm1(x, gamma, beta, settings["epsilon"]), rtol=1e-5, atol=1e-5)


def test_inference_forward_matches_numpy_algorithm2():
    rng = np.random.default_rng(3)
    layer = BatchNorm(epsilon=1e-2)
    layer.build((10, 4))
    gamma, beta = set_affine(layer, rng, 4)
    mean, var = rng.normal(size=4), rng.uniform(0.1, 4, 4)
    layer.moving_mean.assign(mean.astype("float32"))
    layer.moving_variance.assign(var.astype("float32"))
    x = batch(rng, (10, 4))
    expected = gamma * (x - mean) / np.sqrt(var + 1e-2) + beta
    np.testing.assert_allclose(layer(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("training", [True, False])
def test_gradients_match_central_finite_differences(training):
    """float64 throughout; in training mode the gradient flows through the batch mean and variance."""
    rng = np.random.default_rng(4)
    x = batch(rng, (5, 3), "float64")
    weights = rng.normal(size=x.shape)
    layer = BatchNorm(momentum=0.5, epsilon=1e-3, dtype="float64")
    layer.build(x.shape)
    set_affine(layer, rng, 3)
    layer.moving_mean.assign(rng.normal(size=3))
    layer.moving_variance.assign(rng.uniform(0.5, 2, 3))
    assert layer.gamma.dtype == "float64"

    def loss(x_):
        return float(np.sum(layer(x_, training=training).numpy() * weights))

    _, grads = forward_and_grads(layer, x, training, weights)
    assert grads["x"].dtype == np.float64
    h = 1e-5
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        numeric[i] = (loss(x + e) - loss(x - e)) / (2 * h)
    np.testing.assert_allclose(grads["x"], numeric, rtol=1e-6, atol=1e-8)
    if training:  # sum over the batch of d y / d x is zero: the mean is subtracted
        np.testing.assert_allclose(grads["x"].sum(0), 0, atol=1e-10)

    for var in (layer.gamma, layer.beta):
        value = var.numpy().copy()
        numeric = np.zeros_like(value)
        for k in range(len(value)):
            e = np.zeros_like(value)
            e[k] = h
            var.assign(value + e)
            up = loss(x)
            var.assign(value - e)
            numeric[k] = (up - loss(x)) / (2 * h)
        var.assign(value)
        np.testing.assert_allclose(grads[var.name], numeric, rtol=1e-6, atol=1e-8, err_msg=var.name)


@pytest.mark.parametrize("variance", ["biased", "unbiased"])
def test_moving_statistics_match_closed_form_ema(variance):
    """moving_N = momentum^N · init + (1 − momentum) · Σ_k momentum^(N−1−k) · stat_k, batch sizes varying."""
    rng = np.random.default_rng(5)
    momentum, n = 0.8, 4
    layer = BatchNorm(momentum=momentum, variance=variance, dtype="float64")
    layer.build((None, n))
    init_mean, init_var = rng.normal(size=n), rng.uniform(0.5, 2, n)
    layer.moving_mean.assign(init_mean)
    layer.moving_variance.assign(init_var)

    batches = [batch(rng, (m, n), "float64") for m in (2, 7, 3, 16, 5)]
    for x in batches:
        layer(x, training=True)

    steps = len(batches)
    means = [x.mean(0) for x in batches]
    variances = [x.var(0, ddof=1 if variance == "unbiased" else 0) for x in batches]
    decay = [momentum ** (steps - 1 - k) for k in range(steps)]
    expected_mean = momentum**steps * init_mean + (1 - momentum) * sum(d * s for d, s in zip(decay, means))
    expected_var = momentum**steps * init_var + (1 - momentum) * sum(d * s for d, s in zip(decay, variances))
    np.testing.assert_allclose(layer.moving_mean.numpy(), expected_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.moving_variance.numpy(), expected_var, rtol=1e-12)


def test_inference_output_is_independent_of_the_rest_of_the_batch():
    rng = np.random.default_rng(6)
    layer = BatchNorm(momentum=0.5)
    layer.build((None, 4))
    set_affine(layer, rng, 4)
    for _ in range(3):
        layer(batch(rng, (8, 4)), training=True)
    example = batch(rng, (1, 4))
    a = np.concatenate([example, batch(rng, (7, 4))])
    b = np.concatenate([batch(rng, (2, 4)) * 10, example])

    np.testing.assert_array_equal(layer(a, training=False).numpy()[0], layer(b, training=False).numpy()[-1])
    np.testing.assert_array_equal(layer(a, training=False).numpy()[0], layer(example, training=False).numpy()[0])
    # Sanity: in training mode the batch statistics make the same example come out differently.
    assert not np.allclose(layer(a, training=True).numpy()[0], layer(b, training=True).numpy()[-1], atol=1e-3)


def test_get_config_round_trip_keeps_settings():
    layer = BatchNorm(momentum=0.7, epsilon=1e-4, center=False, scale=True, variance="unbiased", name="bn", dtype="float64")
    clone = BatchNorm.from_config(layer.get_config())
    for attr in ("momentum", "epsilon", "center", "scale", "variance", "name", "dtype"):
        assert getattr(clone, attr) == getattr(layer, attr), attr
    assert clone.get_config() == layer.get_config()


def test_unknown_variance_is_rejected():
    with pytest.raises(ValueError, match="variance"):
        BatchNorm(variance="sample")


@pytest.mark.parametrize("argument, value", [
    ("momentum", 1.5), ("momentum", -0.1), ("momentum", float("nan")), ("momentum", "0.9"), ("momentum", True),
    ("epsilon", 0), ("epsilon", -1e-3), ("epsilon", float("inf")), ("epsilon", None),
    ("center", "no"), ("scale", 1),
])
def test_arguments_are_validated_naming_the_argument(argument, value):
    """Keras' BatchNormalization takes momentum=1.5 or epsilon=0 silently; ours refuses them."""
    with pytest.raises(ValueError, match=f"^{argument} must be"):
        BatchNorm(**{argument: value})


@pytest.mark.parametrize("momentum", [0, 0.5, 1, np.float32(0.9)])
def test_momentum_may_be_any_real_number_in_the_closed_unit_interval(momentum):
    assert BatchNorm(momentum=momentum).momentum == float(momentum)


def test_float16_input_under_default_policy_matches_float32():
    """Under the float32 policy Keras casts float16 inputs to float32 before `call` (as for its own BN)."""
    rng = np.random.default_rng(7)
    x16 = batch(rng, (32, 5), "float16")
    ours = BatchNorm()
    y = ours(x16, training=True)
    np.testing.assert_allclose(y.numpy(), BatchNorm()(x16.astype("float32"), training=True).numpy(), atol=1e-6)
    assert y.dtype == keras.layers.BatchNormalization()(x16, training=True).dtype


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("policy", ["mixed_float16", "float16"])
def test_float16_compute_dtype_gives_float16_output_close_to_float32(policy, training):
    rng = np.random.default_rng(8)
    x = batch(rng, (32, 5)) + 50  # a large mean: float16 moments would lose it
    layer, reference = BatchNorm(momentum=0.5, dtype=policy), BatchNorm(momentum=0.5)
    for _ in range(3):
        xb = batch(rng, (32, 5)) + 50
        layer(xb.astype("float16"), training=True)
        reference(xb.astype("float16").astype("float32"), training=True)
    np.testing.assert_allclose(layer.moving_mean.numpy().astype("float32"), reference.moving_mean.numpy(), rtol=1e-3)
    y = layer(x.astype("float16"), training=training)
    assert y.dtype == "float16"
    y_ref = reference(x.astype("float16").astype("float32"), training=training).numpy()
    np.testing.assert_allclose(y.numpy().astype("float32"), y_ref, rtol=1e-2, atol=1e-2)
