"""bnexp.stochastic: dropout's drop fraction and inverted scaling (binomial test), the noisy-BN
layer's noise against its specification (Kolmogorov–Smirnov tests of every level of the draw),
nothing at inference, and the (seed, step) keying that makes both deterministic and resumable."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from bnexp.norm import BatchNorm
from bnexp.stochastic import BatchNormNoise, Dropout, run_layers

P_MIN = 1e-3  # every draw here is seeded, so a test either always passes or always fails


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_drops_a_fraction_rate_and_scales_the_kept_by_1_over_1_minus_rate(rate):
    x = np.ones((500, 784), np.float32)
    y = Dropout(rate, seed=3)(x, training=True).numpy()
    dropped = int(np.sum(y == 0))
    assert stats.binomtest(dropped, y.size, rate).pvalue > P_MIN
    np.testing.assert_array_equal(np.unique(y), np.array([0, 1 / (1 - rate)], np.float32))


def test_dropout_keeps_the_mean_and_is_the_identity_at_inference():
    """Input dropout sees pixels in [0, 1]: E[y] = x in training, y = x exactly in inference."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2000, 784)).astype(np.float32)
    layer = Dropout(0.2, seed=5, name="dropout_input")
    y = layer(x, training=True).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / 0.8, rtol=1e-6)
    assert stats.ttest_1samp((y - x).ravel(), 0).pvalue > P_MIN
    assert int(layer.step.numpy()) == 1
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    assert int(layer.step.numpy()) == 1  # inference draws nothing


def test_dropout_masks_are_a_function_of_seed_and_step():
    x = np.ones((64, 32), np.float32)
    a, b, other = Dropout(0.5, seed=1), Dropout(0.5, seed=1), Dropout(0.5, seed=2)
    first = a(x, training=True).numpy()
    assert not np.array_equal(a(x, training=True).numpy(), first)  # a new mask each step
    np.testing.assert_array_equal(b(x, training=True).numpy(), first)  # same seed, same step
    assert not np.array_equal(other(x, training=True).numpy(), first)
    # A resumed run: its counter comes back from the checkpoint, and the compiled step draws
    # what the uninterrupted run's compiled step drew.
    compiled = {layer: tf.function(lambda x, layer=layer: layer(x, training=True), jit_compile=True) for layer in (a, b)}
    a.step.assign(5)
    expected = [compiled[a](tf.constant(x)).numpy() for _ in range(2)]
    b.step.assign(5)
    np.testing.assert_array_equal(np.stack([compiled[b](tf.constant(x)).numpy() for _ in range(2)]), np.stack(expected))
    assert int(b.step.numpy()) == 7


def test_dropout_rate_is_validated():
    for rate in (-0.1, 1.0, "0.5"):
        with pytest.raises(ValueError, match="^rate must be"):
            Dropout(rate, seed=0)
    with pytest.raises(ValueError, match="^seed must be"):
        Dropout(0.5, seed=-1)


# --- noisy BN (Santurkar et al. 2018, section 2.1) ------------------------------------------

SCALE = 0.8


def test_noise_parameters_follow_their_laws_and_change_every_step():
    """Per step and unit: mu ~ U(−s, s), sd ~ U(0, s), log rho ~ U(−log(1+s), log(1+s)), tau ~ U(0, s)."""
    layer = BatchNormNoise(SCALE, seed=11)
    layer.build((None, 40))
    draws = [layer.noise_parameters(step, 40) for step in range(100)]
    values = {name: np.concatenate([d[name].numpy() for d in draws]) for name in draws[0]}
    log_range = math.log1p(SCALE)
    laws = {"mu": stats.uniform(-SCALE, 2 * SCALE), "sd": stats.uniform(0, SCALE), "tau": stats.uniform(0, SCALE)}
    for name, law in laws.items():
        assert stats.kstest(values[name], law.cdf).pvalue > P_MIN, name
    assert stats.kstest(np.log(values["rho"]), stats.uniform(-log_range, 2 * log_range).cdf).pvalue > P_MIN
    # Time-varying: each step draws afresh (no correlation between consecutive steps).
    mu = np.stack([d["mu"].numpy() for d in draws])
    assert stats.pearsonr(mu[:-1].ravel(), mu[1:].ravel()).pvalue > P_MIN
    assert not np.allclose(mu[0], mu[1])


def test_noise_per_example_draws_are_gaussian_around_the_step_parameters():
    """At one step, y = a · x + b with a ~ N(rho, tau²), b ~ N(mu, sd²) per example and unit:
    recovered from x = 0 (y = b) and x = 1 (y = a + b) at the same step."""
    m, units, step = 5000, 6, 7
    layer = BatchNormNoise(SCALE, seed=12)
    layer.build((None, units))
    layer.step.assign(step)
    b = layer(np.zeros((m, units), np.float32), training=True).numpy()
    layer.step.assign(step)
    a = layer(np.ones((m, units), np.float32), training=True).numpy() - b
    p = {name: value.numpy() for name, value in layer.noise_parameters(step, units).items()}
    assert stats.kstest(((b - p["mu"]) / p["sd"]).ravel(), "norm").pvalue > P_MIN
    assert stats.kstest(((a - p["rho"]) / p["tau"]).ravel(), "norm").pvalue > P_MIN
    assert int(layer.step.numpy()) == step + 1


def test_noisy_bn_output_has_the_step_mean_and_variance():
    """After BN (mean 0, variance 1 over the batch) unit j has mean mu_j and variance
    rho_j² + tau_j² + sd_j²: a non-zero mean and a non-unit variance, as section 2.1 asks."""
    rng = np.random.default_rng(1)
    m, units = 20000, 5
    bn, noise = BatchNorm(), BatchNormNoise(SCALE, seed=13)
    x = bn(rng.normal(size=(m, units)) * 3 + 2, training=True)
    p = {name: value.numpy() for name, value in noise.noise_parameters(0, units).items()}
    y = noise(x, training=True).numpy().astype(np.float64)
    variance = p["rho"] ** 2 + p["tau"] ** 2 + p["sd"] ** 2
    for j in range(units):
        assert stats.ttest_1samp(y[:, j], p["mu"][j]).pvalue > P_MIN
        # Var of the sample variance of y = a·x + b: use the 4th moment of the draws themselves.
        centred = (y[:, j] - y[:, j].mean()) ** 2
        z = (centred.mean() - variance[j]) / (centred.std() / math.sqrt(m))
        assert abs(z) < 4, (j, centred.mean(), variance[j])
    assert np.max(np.abs(p["mu"])) > 0.1 and np.max(np.abs(variance - 1)) > 0.1


def test_noise_is_off_at_inference_and_at_scale_0():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 8)).astype(np.float32)
    layer = BatchNormNoise(SCALE, seed=14)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    np.testing.assert_array_equal(layer(x).numpy(), x)
    assert int(layer.step.numpy()) == 0
    np.testing.assert_array_equal(BatchNormNoise(0.0, seed=14)(x, training=True).numpy(), x)
    assert not np.allclose(layer(x, training=True).numpy(), x)


def test_noise_is_a_function_of_seed_and_step_in_xla_and_float16():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 8)).astype(np.float32)
    eager, first, second = (BatchNormNoise(SCALE, seed=15) for _ in range(3))
    runs = []
    for layer in (first, second):
        compiled = tf.function(lambda x, layer=layer: layer(x, training=True), jit_compile=True)
        runs.append(np.stack([compiled(tf.constant(x)).numpy() for _ in range(3)]))
    np.testing.assert_array_equal(runs[0], runs[1])  # compiled: the same draws for the same (seed, step)
    assert int(first.step.numpy()) == 3 and not np.allclose(runs[0][0], runs[0][1])
    eager.build(x.shape)
    for step in (0, 1):  # eager: likewise (other numbers than XLA's; see the module docstring)
        eager.step.assign(step)
        again = eager(x, training=True).numpy()
        eager.step.assign(step)
        np.testing.assert_array_equal(eager(x, training=True).numpy(), again)
    half = BatchNormNoise(SCALE, seed=15, dtype="mixed_float16")
    half.build(x.shape)
    half.step.assign(2)
    eager.step.assign(2)
    y = half(x.astype(np.float16), training=True)
    assert y.dtype == "float16"
    np.testing.assert_allclose(y.numpy().astype(np.float32), eager(x.astype(np.float16).astype(np.float32), training=True).numpy(), rtol=1e-2, atol=1e-2)
    clone = BatchNormNoise.from_config(eager.get_config())
    assert (clone.scale, clone.seed) == (SCALE, 15)


@pytest.mark.parametrize("scale", [-1.0, float("inf"), None])
def test_noise_scale_is_validated(scale):
    with pytest.raises(ValueError, match="^scale must be"):
        BatchNormNoise(scale, seed=0)


# --- run_layers ------------------------------------------------------------------------------


def test_run_layers_can_keep_bn_in_training_mode_without_dropout_or_noise():
    """What `bnexp eval --stats batch` and PreciseBN need: batch statistics, no training noise."""
    rng = np.random.default_rng(4)
    dense, bn = keras.layers.Dense(5, use_bias=False), BatchNorm(name="bn")
    noise, dropout, out = BatchNormNoise(SCALE, seed=1), Dropout(0.5, seed=2), keras.layers.Dense(3)
    model = keras.Sequential([keras.Input((4,)), dense, bn, noise, keras.layers.Activation("relu"), dropout, out])
    x = rng.normal(size=(10, 4)).astype(np.float32)

    clean = run_layers(model, x, training=True, stochastic=False).numpy()
    np.testing.assert_allclose(clean, out(keras.activations.relu(bn(dense(x), training=True))).numpy(), rtol=1e-6)
    assert int(noise.step.numpy()) == int(dropout.step.numpy()) == 0
    np.testing.assert_array_equal(run_layers(model, x, training=False).numpy(), model(x, training=False).numpy())
    noisy = run_layers(model, x, training=True).numpy()
    noise.step.assign(0)
    dropout.step.assign(0)
    np.testing.assert_allclose(noisy, model(x, training=True).numpy(), rtol=1e-6)
    y, (bn_input,) = run_layers(model, x, training=True, stochastic=False, inputs_of=[bn])
    np.testing.assert_allclose(bn_input.numpy(), dense(x).numpy(), rtol=1e-6)
