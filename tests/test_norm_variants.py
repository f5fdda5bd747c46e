"""The normalisation variants of bnexp.norm against independent references: BatchNorm where a
variant reduces to it, Keras' LayerNormalization, NumPy transcriptions of each paper's
formula, finite differences, and the config rules that size them."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from test_norm import batch, forward_and_grads, set_affine

from bnexp.config import Config, Model, Norm, default_groups, default_virtual_batch_size, load_config, to_yaml
from bnexp.errors import ConfigError
from bnexp.model import build_model, moving_stat_layers, norm_layers
from bnexp.norm import BatchNorm, BatchRenorm, GhostBatchNorm, GroupNorm, LayerNorm

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(p for p in CONFIGS.rglob("*.yaml") if not {"sweeps", "claims"} & set(p.relative_to(CONFIGS).parts))
NEW_KINDS = ["batch_renorm", "ghost_batch", "layer", "group"]
NO_RAMP = dict(warmup_steps=0, r_max_ramp_steps=0, d_max_ramp_steps=0)  # the final limits from step 0


def set_moving(layers, mean, var):
    for layer in layers:
        layer.moving_mean.assign(np.asarray(mean, layer.moving_mean.dtype))
        layer.moving_variance.assign(np.asarray(var, layer.moving_variance.dtype))


def assert_same(a, b, rtol=1e-5, atol=1e-5):
    """Two (y, grads) pairs agree."""
    np.testing.assert_allclose(a[0], b[0], rtol=rtol, atol=atol)
    assert a[1].keys() == b[1].keys()
    for name in a[1]:
        np.testing.assert_allclose(a[1][name], b[1][name], rtol=rtol, atol=atol, err_msg=name)


def standardize(x, epsilon):
    """(x − mean) / sqrt(biased var + ε) over axis 0, in float64."""
    x = np.asarray(x, np.float64)
    return (x - x.mean(0)) / np.sqrt(x.var(0) + epsilon)


def assert_moving_equal(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(a.moving_mean.numpy(), b.moving_mean.numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.moving_variance.numpy(), b.moving_variance.numpy(), rtol=rtol, atol=atol)


SETTINGS = [
    dict(momentum=0.9, epsilon=1e-3, center=True, scale=True),
    dict(momentum=0.5, epsilon=1e-5, center=True, scale=False),
    dict(momentum=0.8, epsilon=1e-1, center=False, scale=False),
]


# --- batch_renorm (Ioffe 2017) --------------------------------------------------------------


def renorm_reference(x, gamma, beta, epsilon, moving_mean, moving_var, r_max, d_max):
    """Ioffe (2017) Algorithm 1 in float64: returns y, r, d."""
    x = np.asarray(x, np.float64)
    mu_b, sigma_b = x.mean(0), np.sqrt(x.var(0) + epsilon)
    sigma = np.sqrt(moving_var + epsilon)
    r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
    d = np.clip((mu_b - moving_mean) / sigma, -d_max, d_max)
    return gamma * ((x - mu_b) / sigma_b * r + d) + beta, r, d


def renorm_moving_reference(x, momentum, epsilon, moving_mean, moving_var, moving_average, ddof=0):
    """The moving statistics after one step, in float64, as (mean, the stored moving_variance).

    "sigma": Algorithm 1's mu += α(mu_B − mu), sigma += α(sigma_B − sigma), with
    moving_variance = sigma² − ε; "variance": BatchNorm's average of the (ddof) variance.
    """
    x = np.asarray(x, np.float64)
    alpha = 1 - momentum
    mean = moving_mean + alpha * (x.mean(0) - moving_mean)
    if moving_average == "variance":
        return mean, moving_var + alpha * (x.var(0, ddof=ddof) - moving_var)
    sigma = np.sqrt(moving_var + epsilon)
    sigma = sigma + alpha * (np.sqrt(x.var(0, ddof=ddof) + epsilon) - sigma)
    return mean, sigma**2 - epsilon


@pytest.mark.parametrize("moving_average", ["sigma", "variance"])
@pytest.mark.parametrize("variance", ["biased", "unbiased"])
@pytest.mark.parametrize("limits", [dict(r_max=1.0, d_max=0.0, **NO_RAMP), dict(r_max=3.0, d_max=5.0)],
                         ids=["r_max=1,d_max=0", "default warm-up, within it"])
@pytest.mark.parametrize("settings", SETTINGS)
def test_batch_renorm_with_r_max_1_and_d_max_0_is_batch_norm(settings, limits, variance, moving_average):
    """Outputs and gradients are BatchNorm's; the moving statistics are too with the variance average."""
    rng = np.random.default_rng(0)
    shape = (16, 4)
    ours = BatchRenorm(**settings, **limits, variance=variance, moving_average=moving_average)
    reference = BatchNorm(**settings, variance=variance)
    for layer in (ours, reference):
        layer.build(shape)
        set_affine(layer, np.random.default_rng(1), shape[1])
    # Moving statistics far from the batch's: r and d would be far from 1 and 0 if unclipped.
    mean, var = rng.normal(size=4) * 3, rng.uniform(0.1, 10, 4)
    set_moving([ours, reference], mean, var)
    weights = rng.normal(size=shape).astype("float32")
    ddof = 1 if variance == "unbiased" else 0
    for _ in range(3):
        x = batch(rng, shape)
        assert_same(forward_and_grads(ours, x, True, weights), forward_and_grads(reference, x, True, weights))
        mean, var = renorm_moving_reference(x, settings["momentum"], settings["epsilon"], mean, var, moving_average, ddof)
    if moving_average == "variance":
        assert_moving_equal(ours, reference)
    np.testing.assert_allclose(ours.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), var, rtol=1e-5, atol=1e-6)
    assert int(ours.step.numpy()) == 3
    x = batch(rng, shape)
    set_moving([reference], ours.moving_mean.numpy(), ours.moving_variance.numpy())  # the same (sigma) statistics
    assert_same(forward_and_grads(ours, x, False, weights), forward_and_grads(reference, x, False, weights))
    assert int(ours.step.numpy()) == 3  # inference is not a training step


@pytest.mark.parametrize("moving_average", ["sigma", "variance"])
@pytest.mark.parametrize("variance", ["biased", "unbiased"])
@pytest.mark.parametrize("r_max, d_max", [(1e4, 1e4), (1.2, 0.3)], ids=["unclipped", "clipped"])
def test_batch_renorm_training_matches_numpy_algorithm1(r_max, d_max, variance, moving_average):
    rng = np.random.default_rng(2)
    momentum, epsilon, shape = 0.7, 1e-3, (12, 5)
    layer = BatchRenorm(momentum=momentum, epsilon=epsilon, r_max=r_max, d_max=d_max, variance=variance,
                        moving_average=moving_average, **NO_RAMP)
    layer.build(shape)
    gamma, beta = set_affine(layer, rng, 5)
    moving_mean, moving_var = rng.normal(size=5), rng.uniform(0.2, 5, 5)
    set_moving([layer], moving_mean, moving_var)
    x = batch(rng, shape)

    y = layer(x, training=True).numpy()
    expected, r, d = renorm_reference(x, gamma, beta, epsilon, moving_mean, moving_var, r_max, d_max)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    if r_max > 100:  # nothing clipped: training computes exactly the inference output (the paper's point)
        np.testing.assert_allclose(y, gamma * (x - moving_mean) / np.sqrt(moving_var + epsilon) + beta, rtol=1e-5, atol=1e-5)
    else:  # the clips really bind
        assert np.any(np.isclose(r, r_max) | np.isclose(r, 1 / r_max)) and np.any(np.isclose(np.abs(d), d_max))
    # The moving statistics then move: sigma towards sigma_B, or the variance towards the (m/(m−1)·) variance.
    ddof = 1 if variance == "unbiased" else 0
    mean, var = renorm_moving_reference(x, momentum, epsilon, moving_mean, moving_var, moving_average, ddof)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), var, rtol=1e-5)
    if moving_average == "variance":  # the old average, spelled out as before issue 13
        np.testing.assert_allclose(var, momentum * moving_var + (1 - momentum) * x.var(0, ddof=ddof), rtol=1e-6)


def test_batch_renorm_inference_is_batch_norm_inference():
    rng = np.random.default_rng(3)
    layer = BatchRenorm(epsilon=1e-2, **NO_RAMP)
    layer.build((10, 4))
    gamma, beta = set_affine(layer, rng, 4)
    mean, var = rng.normal(size=4), rng.uniform(0.1, 4, 4)
    set_moving([layer], mean, var)
    x = batch(rng, (10, 4))
    np.testing.assert_allclose(layer(x, training=False).numpy(), gamma * (x - mean) / np.sqrt(var + 1e-2) + beta, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("r_max, d_max", [(1e4, 1e4), (1.2, 0.3)], ids=["unclipped", "clipped"])
def test_batch_renorm_gradients_treat_r_and_d_as_constants(r_max, d_max):
    """Finite differences of Algorithm 1 with r and d frozen at their values for x (float64)."""
    rng = np.random.default_rng(4)
    epsilon, shape = 1e-3, (6, 3)
    layer = BatchRenorm(epsilon=epsilon, r_max=r_max, d_max=d_max, dtype="float64", **NO_RAMP)
    layer.build(shape)
    gamma, beta = set_affine(layer, rng, 3)
    moving_mean, moving_var = rng.normal(size=3), rng.uniform(0.2, 5, 3)
    set_moving([layer], moving_mean, moving_var)
    x = batch(rng, shape, "float64")
    weights = rng.normal(size=shape)
    _, grads = forward_and_grads(layer, x, True, weights)
    _, r, d = renorm_reference(x, gamma, beta, epsilon, moving_mean, moving_var, r_max, d_max)

    def loss(x_):
        return np.sum(weights * (gamma * ((x_ - x_.mean(0)) / np.sqrt(x_.var(0) + epsilon) * r + d) + beta))

    h, numeric = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        numeric[i] = (loss(x + e) - loss(x - e)) / (2 * h)
    np.testing.assert_allclose(grads["x"], numeric, rtol=1e-6, atol=1e-8)
    x_hat = (x - x.mean(0)) / np.sqrt(x.var(0) + epsilon) * r + d
    np.testing.assert_allclose(grads[layer.gamma.name], (weights * x_hat).sum(0), rtol=1e-10)
    np.testing.assert_allclose(grads[layer.beta.name], weights.sum(0), rtol=1e-10)


def test_batch_renorm_warm_up_schedule_follows_the_paper_by_default():
    """r_max = 1, d_max = 0 for 5k steps; then linear: r_max 3 at 40k, d_max 5 at 25k."""
    layer = BatchRenorm()
    expected = {0: (1, 0), 4999: (1, 0), 5000: (1, 0), 15_000: (1 + 2 * 10 / 35, 2.5), 25_000: (1 + 2 * 20 / 35, 5),
                40_000: (3, 5), 10**7: (3, 5)}
    for step, (r_max, d_max) in expected.items():
        got = [float(v) for v in layer.limits(step)]
        np.testing.assert_allclose(got, [r_max, d_max], rtol=1e-6, err_msg=f"step {step}")


def test_batch_renorm_warm_up_schedule_is_configurable():
    layer = BatchRenorm(r_max=2.0, d_max=1.0, warmup_steps=10, r_max_ramp_steps=0, d_max_ramp_steps=4)
    got = {step: [float(v) for v in layer.limits(step)] for step in (0, 9, 10, 11, 12, 14, 100)}
    assert got == {0: [1, 0], 9: [1, 0], 10: [2, 0], 11: [2, 0.25], 12: [2, 0.5], 14: [2, 1], 100: [2, 1]}


def test_batch_renorm_counts_training_steps_and_uses_the_limits_of_the_current_step():
    rng = np.random.default_rng(5)
    layer = BatchRenorm(momentum=0.9)  # the paper's schedule
    layer.build((8, 3))
    gamma, beta = set_affine(layer, rng, 3)
    step = tf.function(lambda x: layer(x, training=True), jit_compile=True)
    for _ in range(4):
        step(batch(rng, (8, 3)))
    layer(batch(rng, (8, 3)), training=False)
    assert int(layer.step.numpy()) == 4 and any(v is layer.step for v in layer.non_trainable_weights)  # so checkpoints keep it

    layer.step.assign(15_000)  # mid-ramp: r_max = 1 + 2/3.5, d_max = 2.5
    moving_mean, moving_var = np.array([5.0, -5.0, 0.0]), np.array([100.0, 0.01, 1.0])  # both clips bind
    set_moving([layer], moving_mean, moving_var)
    x = batch(rng, (8, 3))
    expected, _, _ = renorm_reference(x, gamma, beta, 1e-3, moving_mean, moving_var, 1 + 2 / 3.5, 2.5)
    np.testing.assert_allclose(step(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert int(layer.step.numpy()) == 15_001


def test_batch_renorm_sigma_average_follows_algorithm1_over_many_steps():
    """Ioffe (2017) Algorithm 1 step after step in float64: outputs, r and d from the moving
    statistics before each step, then mu += α(mu_B − mu), sigma += α(sigma_B − sigma)."""
    rng = np.random.default_rng(20)
    momentum, epsilon, r_max, d_max, shape = 0.6, 1e-3, 1.5, 0.5, (8, 4)
    layer = BatchRenorm(momentum=momentum, epsilon=epsilon, r_max=r_max, d_max=d_max, dtype="float64", **NO_RAMP)
    layer.build(shape)
    gamma, beta = set_affine(layer, rng, 4)
    mu, sigma = np.zeros(4), np.sqrt(1.0 + epsilon)  # moving_variance starts at 1
    clipped = 0
    for step in range(12):
        x = batch(rng, shape, "float64") * (1 + step % 3)  # the scale drifts: r must follow
        mu_b, sigma_b = x.mean(0), np.sqrt(x.var(0) + epsilon)
        r, d = np.clip(sigma_b / sigma, 1 / r_max, r_max), np.clip((mu_b - mu) / sigma, -d_max, d_max)
        clipped += np.sum((r == r_max) | (r == 1 / r_max)) + np.sum(np.abs(d) == d_max)
        np.testing.assert_allclose(layer(x, training=True).numpy(), gamma * ((x - mu_b) / sigma_b * r + d) + beta, rtol=1e-10)
        mu, sigma = mu + (1 - momentum) * (mu_b - mu), sigma + (1 - momentum) * (sigma_b - sigma)
        np.testing.assert_allclose(layer.moving_mean.numpy(), mu, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(np.sqrt(layer.moving_variance.numpy() + epsilon), sigma, rtol=1e-10)
    assert clipped > 0  # the clips were exercised
    x = batch(rng, shape, "float64")
    np.testing.assert_allclose(layer(x, training=False).numpy(), gamma * (x - mu) / sigma + beta, rtol=1e-10)


def average_r(moving_average, variance, m, steps=3000, warmup=1000, units=256, momentum=0.99, epsilon=1e-3):
    """The mean of the unclipped r = sigma_B / sigma over `steps` training steps on N(0, 1) batches of m."""
    layer = BatchRenorm(momentum=momentum, epsilon=epsilon, variance=variance, moving_average=moving_average,
                        r_max=1e6, d_max=1e6, **NO_RAMP)
    layer.build((m, units))

    @tf.function(jit_compile=True)
    def run(seed):
        total = tf.zeros(units)
        for t in tf.range(warmup + steps):
            x = tf.random.stateless_normal((m, units), seed=tf.stack([seed, tf.cast(t, tf.int64)]))
            sigma = tf.sqrt(layer.moving_variance + epsilon)
            r = tf.sqrt(tf.math.reduce_variance(x, axis=0) + epsilon) / sigma
            total += tf.where(t >= warmup, r, 0.0)
            layer(x, training=True)
        return tf.reduce_mean(total) / steps

    return float(run(tf.constant(7, tf.int64)))


def expected_sigma_b(m, epsilon, ddof=0):
    """E[sqrt(v_B + ε)] for N(0, 1) batches of m: v_B = χ²_(m−1) / (m − ddof) (SciPy's expectation)."""
    return stats.chi2(m - 1).expect(lambda q: np.sqrt(q / (m - ddof) + epsilon))


@pytest.mark.parametrize("m", [2, 16])
def test_batch_renorm_average_r_is_1_with_the_sigma_average_and_below_1_with_the_variance_average(m):
    """Why the paper averages sigma: with the variance average sigma = sqrt(E[var_B] + ε) exceeds
    E[sigma_B] (Jensen), so r is biased low, most at small m; averaging sigma_B centres r on 1."""
    epsilon = 1e-3
    sigma_b = expected_sigma_b(m, epsilon)
    np.testing.assert_allclose(average_r("sigma", "biased", m), 1.0, atol=0.01)
    np.testing.assert_allclose(average_r("variance", "biased", m), sigma_b / np.sqrt((m - 1) / m + epsilon), atol=0.01)
    np.testing.assert_allclose(average_r("variance", "unbiased", m), sigma_b / np.sqrt(1 + epsilon), atol=0.01)
    np.testing.assert_allclose(average_r("sigma", "unbiased", m), sigma_b / expected_sigma_b(m, epsilon, ddof=1), atol=0.01)


def test_batch_renorm_keeps_its_checkpoint_variables_whichever_average():
    """Old checkpoints (variance average) load into either: the same names, and sigma = sqrt(moving_variance + ε)."""
    names = {}
    for moving_average in ("sigma", "variance"):
        model = keras.Sequential([keras.Input((3,)), BatchRenorm(moving_average=moving_average, name="norm_0")])
        names[moving_average] = [v.path.split("/", 1)[1] for v in model.weights]
    assert names["sigma"] == names["variance"] == ["norm_0/gamma", "norm_0/beta", "norm_0/moving_mean", "norm_0/moving_variance", "norm_0/step"]


# --- ghost_batch (Hoffer et al. 2017) -------------------------------------------------------


def ghost_moving_reference(chunks, momentum, moving_mean, moving_var, moving_update, ddof=0):
    """The moving statistics after one training step over the ghost batches `chunks`, in float64.

    "per_virtual_batch": Hoffer et al. Algorithm 1 as the authors' code runs it, one EMA step
    per ghost batch, in order; "per_step": one step towards the size-weighted mean of their
    statistics.
    """
    chunks = [np.asarray(c, np.float64) for c in chunks]
    means, variances = [c.mean(0) for c in chunks], [c.var(0, ddof=ddof) if len(c) > 1 else 0 * c[0] for c in chunks]
    if moving_update == "per_step":
        sizes = np.array([len(c) for c in chunks])[:, None] / sum(len(c) for c in chunks)
        means, variances = [np.sum(sizes * means, 0)], [np.sum(sizes * variances, 0)]
    for mean, var in zip(means, variances):
        moving_mean = momentum * moving_mean + (1 - momentum) * mean
        moving_var = momentum * moving_var + (1 - momentum) * var
    return moving_mean, moving_var


@pytest.mark.parametrize("variance", ["biased", "unbiased"])
@pytest.mark.parametrize("settings", SETTINGS)
def test_ghost_batch_with_virtual_size_equal_to_the_batch_is_batch_norm(settings, variance):
    rng = np.random.default_rng(6)
    shape = (12, 4)
    ours, reference = GhostBatchNorm(12, **settings, variance=variance), BatchNorm(**settings, variance=variance)
    for layer in (ours, reference):
        layer.build(shape)
        set_affine(layer, np.random.default_rng(1), shape[1])
    weights = rng.normal(size=shape).astype("float32")
    for _ in range(3):
        x = batch(rng, shape)
        assert_same(forward_and_grads(ours, x, True, weights), forward_and_grads(reference, x, True, weights))
    assert_moving_equal(ours, reference)
    x = batch(rng, shape)
    assert_same(forward_and_grads(ours, x, False, weights), forward_and_grads(reference, x, False, weights))


@pytest.mark.parametrize("moving_update", ["per_virtual_batch", "per_step"])
@pytest.mark.parametrize("variance", ["biased", "unbiased"])
@pytest.mark.parametrize("m, v", [(12, 4), (12, 2), (30, 10)])
def test_ghost_batch_normalises_each_virtual_batch_by_itself(m, v, variance, moving_update):
    rng = np.random.default_rng(7)
    momentum, epsilon = 0.6, 1e-3
    layer = GhostBatchNorm(v, momentum=momentum, epsilon=epsilon, variance=variance, moving_update=moving_update)
    layer.build((m, 5))
    gamma, beta = set_affine(layer, rng, 5)
    x = batch(rng, (m, 5))
    x[:v] += 10  # the first ghost batch is shifted: its own statistics must remove it

    y = layer(x, training=True).numpy()
    chunks = np.split(x.astype(np.float64), m // v)
    # float32 rounds a ghost batch's mean to the spacing of its magnitude (about 1e-6 at the
    # shifted batch's 10); x − mean carries that error, and normalising multiplies it by
    # |γ|/sqrt(var + ε), up to |γ|/sqrt(ε) ≈ 32|γ| when the batch's variance is small, as it
    # can be at v = 2. Twice that bound per ghost batch, on top of 1e-5 for the rest.
    rounding = [np.broadcast_to(2 * np.abs(gamma) * np.spacing(np.abs(c.mean(0)).astype(np.float32)) / np.sqrt(epsilon),
                                c.shape) for c in chunks]
    expected = np.concatenate([gamma * standardize(c, epsilon) + beta for c in chunks])
    assert np.all(np.abs(y - expected) <= 1e-5 + 1e-5 * np.abs(expected) + np.concatenate(rounding))
    ddof = 1 if variance == "unbiased" else 0
    mean, var = ghost_moving_reference(chunks, momentum, np.zeros(5), np.ones(5), moving_update, ddof)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), var, rtol=1e-5)
    if moving_update == "per_step":  # spelled out: one EMA step towards the mean over ghost batches
        np.testing.assert_allclose(mean, (1 - momentum) * np.mean([c.mean(0) for c in chunks], axis=0), atol=1e-12)


@pytest.mark.parametrize("variance", ["biased", "unbiased"])
def test_ghost_batch_per_virtual_batch_update_is_batch_norm_run_on_each_ghost_batch_in_turn(variance):
    """The authors' implementation of Algorithm 1 (BatchNorm called on each chunk in order), over
    several training steps, against our BatchNorm doing exactly that, in float64."""
    rng = np.random.default_rng(21)
    ghost = GhostBatchNorm(4, momentum=0.7, variance=variance, dtype="float64")
    reference = BatchNorm(momentum=0.7, variance=variance, dtype="float64")
    for layer in (ghost, reference):
        layer.build((None, 3))
        set_affine(layer, np.random.default_rng(1), 3)
    for step in range(4):
        x = batch(rng, (16, 3), "float64") * (1 + step)
        y = ghost(x, training=True).numpy()
        np.testing.assert_allclose(y, np.concatenate([reference(c, training=True).numpy() for c in np.split(x, 4)]), rtol=1e-10)
        assert_moving_equal(ghost, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.99, 1.0])
def test_ghost_batch_per_virtual_batch_update_handles_the_extreme_momenta(momentum):
    """momentum 0 keeps only the last ghost batch's statistics; 1 never moves."""
    rng = np.random.default_rng(22)
    layer = GhostBatchNorm(2, momentum=momentum, dtype="float64")
    x = batch(rng, (6, 3), "float64")
    layer(x, training=True)
    mean, var = ghost_moving_reference(np.split(x, 3), momentum, np.zeros(3), np.ones(3), "per_virtual_batch")
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.moving_variance.numpy(), var, rtol=1e-12)


def test_ghost_batch_gradients_are_those_of_batch_norm_on_each_virtual_batch():
    rng = np.random.default_rng(8)
    ghost, reference = GhostBatchNorm(4), BatchNorm()
    for layer in (ghost, reference):
        layer.build((12, 3))
        set_affine(layer, np.random.default_rng(1), 3)
    x, weights = batch(rng, (12, 3)), rng.normal(size=(12, 3)).astype("float32")
    y, grads = forward_and_grads(ghost, x, True, weights)
    parts = [forward_and_grads(reference, xc, True, wc) for xc, wc in zip(np.split(x, 3), np.split(weights, 3))]
    np.testing.assert_allclose(y, np.concatenate([p[0] for p in parts]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["x"], np.concatenate([p[1]["x"] for p in parts]), rtol=1e-5, atol=1e-5)
    for name in ("gamma", "beta"):  # parameters are shared: their gradients add up over ghost batches
        np.testing.assert_allclose(grads[name], sum(p[1][name] for p in parts), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("moving_update", ["per_virtual_batch", "per_step"])
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "xla, unknown batch size"])
def test_ghost_batch_ends_with_a_smaller_virtual_batch_when_the_size_does_not_divide(compiled, moving_update):
    """As evaluation's last batch may: 10 examples in ghost batches of 4, 4 and 2."""
    rng = np.random.default_rng(9)
    layer = GhostBatchNorm(4, momentum=0.5, variance="unbiased", moving_update=moving_update)
    layer.build((None, 3))
    x = batch(rng, (10, 3))
    forward = lambda x: layer(x, training=True)  # noqa: E731
    if compiled:
        forward = tf.function(forward, jit_compile=True, input_signature=[tf.TensorSpec((None, 3), tf.float32)])
    y = forward(tf.constant(x)).numpy()
    chunks = [x[:4], x[4:8], x[8:]]
    np.testing.assert_allclose(y, np.concatenate([standardize(c, 1e-3) for c in chunks]), rtol=1e-5, atol=1e-5)
    mean, var = ghost_moving_reference(chunks, 0.5, np.zeros(3), np.ones(3), moving_update, ddof=1)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), var, rtol=1e-5)
    if moving_update == "per_step":  # spelled out: each ghost batch weighted by its size
        size_weighted = sum(len(c) * c.astype(np.float64).var(0, ddof=1) for c in chunks) / 10
        np.testing.assert_allclose(var, 0.5 + 0.5 * size_weighted, rtol=1e-12)


@pytest.mark.parametrize("make, argument", [
    (lambda: GhostBatchNorm(1), "virtual_batch_size"),
    (lambda: GhostBatchNorm(4.0), "virtual_batch_size"),
    (lambda: GhostBatchNorm(4, moving_update="per_epoch"), "moving_update"),
    (lambda: GhostBatchNorm(4, momentum=2), "momentum"),
    (lambda: BatchRenorm(r_max=0.5), "r_max"),
    (lambda: BatchRenorm(d_max=-1), "d_max"),
    (lambda: BatchRenorm(r_max=float("nan")), "r_max"),
    (lambda: BatchRenorm(warmup_steps=-1), "warmup_steps"),
    (lambda: BatchRenorm(r_max_ramp_steps=2.5), "r_max_ramp_steps"),
    (lambda: BatchRenorm(moving_average="std"), "moving_average"),
    (lambda: BatchRenorm(epsilon=0), "epsilon"),
    (lambda: LayerNorm(epsilon=-1), "epsilon"),
    (lambda: LayerNorm(center="yes"), "center"),
    (lambda: GroupNorm(0), "groups"),
    (lambda: GroupNorm(True), "groups"),
    (lambda: GroupNorm(2, scale=None), "scale"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_variant_arguments_are_validated_naming_the_argument(make, argument):
    with pytest.raises(ValueError, match=f"^{argument} must be"):
        make()


# --- the unbiased moving variance -----------------------------------------------------------


@pytest.mark.parametrize("make, group", [
    (lambda: BatchNorm(momentum=0.5, variance="unbiased"), 16),
    (lambda: BatchRenorm(momentum=0.5, variance="unbiased", moving_average="variance"), 16),
    (lambda: GhostBatchNorm(4, momentum=0.5, variance="unbiased", moving_update="per_step"), 4),
], ids=["batch", "batch_renorm", "ghost_batch"])
def test_unbiased_moving_variance_matches_numpy_ddof_1(make, group):
    """m/(m−1) · the biased variance, m the examples each statistic is computed over."""
    rng = np.random.default_rng(10)
    layer = make()
    x = batch(rng, (16, 3))
    layer(x, training=True)
    var = np.mean([c.var(0, ddof=1) for c in np.split(x.astype(np.float64), 16 // group)], axis=0)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.5 * 1.0 + 0.5 * var, rtol=1e-5)


# --- layer (Ba et al. 2016) and group (Wu & He 2018) ----------------------------------------


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("settings", [
    dict(epsilon=1e-3, center=True, scale=True),
    dict(epsilon=1e-5, center=True, scale=False),
    dict(epsilon=1e-1, center=False, scale=True),
    dict(epsilon=1e-3, center=False, scale=False),
])
def test_layer_norm_matches_keras_layer_normalization(settings, training):
    rng = np.random.default_rng(11)
    shape = (6, 7)
    ours, theirs = LayerNorm(**settings), keras.layers.LayerNormalization(**settings)
    for layer in (ours, theirs):
        layer.build(shape)
        set_affine(layer, np.random.default_rng(1), shape[1])
    x = (rng.normal(size=shape) * rng.uniform(0.5, 3, (shape[0], 1)) + rng.uniform(-2, 2, (shape[0], 1))).astype("float32")  # per-example scales
    weights = rng.normal(size=shape).astype("float32")
    assert_same(forward_and_grads(ours, x, training, weights), forward_and_grads(theirs, x, training, weights))


def test_layer_norm_is_per_example_and_has_no_moving_statistics():
    rng = np.random.default_rng(12)
    layer = LayerNorm()
    x = rng.normal(size=(5, 8)).astype("float32")
    np.testing.assert_allclose(layer(x, training=True).numpy(), layer(x, training=False).numpy())
    np.testing.assert_allclose(layer(x[2:3]).numpy()[0], layer(x).numpy()[2], rtol=1e-6)
    assert layer.non_trainable_weights == [] and not hasattr(layer, "moving_mean")


@pytest.mark.parametrize("settings", [dict(epsilon=1e-3), dict(epsilon=1e-5, center=False), dict(epsilon=1e-1, scale=False)])
def test_group_norm_with_one_group_is_layer_norm(settings):
    rng = np.random.default_rng(13)
    shape = (5, 9)
    group, layer = GroupNorm(1, **settings), LayerNorm(**settings)
    for each in (group, layer):
        each.build(shape)
        set_affine(each, np.random.default_rng(1), shape[1])
    x, weights = batch(rng, shape), rng.normal(size=shape).astype("float32")
    assert_same(forward_and_grads(group, x, True, weights), forward_and_grads(layer, x, True, weights))


@pytest.mark.parametrize("groups", [2, 3, 6])
def test_group_norm_matches_numpy_per_group_statistics(groups):
    """Wu & He section 3, with S_k the k-th run of C/G consecutive units, in float64."""
    rng = np.random.default_rng(14)
    epsilon, (m, c) = 1e-3, (4, 12)
    layer = GroupNorm(groups, epsilon=epsilon)
    layer.build((m, c))
    gamma, beta = set_affine(layer, rng, c)
    x = rng.normal(size=(m, c)) * rng.uniform(0.5, 3, c) + rng.uniform(-2, 2, c)
    expected = np.empty((m, c))
    size = c // groups
    for i in range(m):
        for k in range(groups):
            units = slice(k * size, (k + 1) * size)
            a = x[i, units]
            expected[i, units] = (a - a.mean()) / np.sqrt(a.var() + epsilon)
    expected = gamma * expected + beta
    for training in (True, False):
        np.testing.assert_allclose(layer(x.astype("float32"), training=training).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_group_norm_refuses_groups_not_dividing_the_width_and_defaults_per_width():
    with pytest.raises(ValueError, match="groups=5 does not divide the layer width 12"):
        GroupNorm(5).build((None, 12))
    layer = GroupNorm()
    layer.build((None, 48))
    assert layer.groups == 16


# --- every new layer: config round trip, float16, XLA ---------------------------------------


LAYERS = {
    "batch_renorm": lambda: BatchRenorm(momentum=0.7, epsilon=1e-4, variance="unbiased", r_max=2.0, d_max=1.5,
                                        warmup_steps=3, r_max_ramp_steps=7, d_max_ramp_steps=11, name="n"),
    "batch_renorm_variance": lambda: BatchRenorm(momentum=0.7, moving_average="variance", name="n"),
    "ghost_batch": lambda: GhostBatchNorm(4, momentum=0.7, epsilon=1e-4, center=False, name="n"),
    "ghost_batch_per_step": lambda: GhostBatchNorm(4, momentum=0.7, moving_update="per_step", name="n"),
    "layer": lambda: LayerNorm(epsilon=1e-4, scale=False, name="n"),
    "group": lambda: GroupNorm(2, epsilon=1e-4, name="n"),
}


@pytest.mark.parametrize("kind", LAYERS)
def test_get_config_round_trip_keeps_settings(kind):
    layer = LAYERS[kind]()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("kind", LAYERS)
def test_float16_compute_dtype_gives_float16_output_close_to_float32(kind):
    rng = np.random.default_rng(15)
    x = (batch(rng, (16, 6)) + 50).astype("float16")  # a large mean: float16 moments would lose it
    layer = type(LAYERS[kind]()).from_config({**LAYERS[kind]().get_config(), "dtype": "mixed_float16"})
    reference = LAYERS[kind]()
    for training in (True, False):
        y = layer(x, training=training)
        assert y.dtype == "float16"
        y_ref = reference(x.astype("float32"), training=training).numpy()
        np.testing.assert_allclose(y.numpy().astype("float32"), y_ref, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("kind", LAYERS)
def test_each_layer_runs_inside_xla_in_training_and_inference(kind):
    rng = np.random.default_rng(16)
    eager, compiled = LAYERS[kind](), LAYERS[kind]()
    x = batch(rng, (16, 6))
    for layer in (eager, compiled):
        layer.build(x.shape)
        set_affine(layer, np.random.default_rng(1), 6)

    @tf.function(jit_compile=True)
    def forward(x, training):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = compiled(x, training=training)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, x)

    for training in (True, True, False):
        y, g = forward(tf.constant(x), training)
        with tf.GradientTape() as tape:
            xt = tf.constant(x)
            tape.watch(xt)
            y_ref = eager(xt, training=training)
            loss = tf.reduce_sum(y_ref * y_ref)
        np.testing.assert_allclose(y.numpy(), y_ref.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g.numpy(), tape.gradient(loss, xt).numpy(), rtol=1e-4, atol=1e-4)
    for a, b in zip(eager.weights, compiled.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7, err_msg=a.name)  # float32 ulps


# --- the config: defaults resolved, sizes refused -------------------------------------------


def config(kind, hidden=(100, 100), batch_size=60, **norm):
    return Config.model_validate({"model": {"hidden": list(hidden), "norm": {"kind": kind, **norm}}, "train": {"batch_size": batch_size}})


@pytest.mark.parametrize("batch_size, expected", [(60, 30), (100, 25), (50, 25), (64, 32), (2, 2), (37, 37), (74, 2), (1000, 25)])
def test_default_virtual_batch_size_is_the_largest_divisor_up_to_32(batch_size, expected):
    assert default_virtual_batch_size(batch_size) == expected
    assert config("ghost_batch", batch_size=batch_size).model.norm.virtual_batch_size == expected


@pytest.mark.parametrize("hidden, expected", [([100, 100], 4), ([512, 512], 32), ([100, 64], 4), ([32], 16), ([30, 6], 2), ([7], 1), ([2], 1)])
def test_default_groups_divide_every_width(hidden, expected):
    assert default_groups(hidden) == expected
    assert config("group", hidden=hidden).model.norm.groups == expected


def test_defaults_are_resolved_only_for_their_kind_and_written_to_config_yaml(tmp_path):
    ghost = config("ghost_batch")
    assert "virtual_batch_size: 30" in to_yaml(ghost) and "groups: null" in to_yaml(ghost)
    assert "groups: 4" in to_yaml(config("group"))
    for kind in ("batch", "batch_renorm", "layer"):
        norm = config(kind).model.norm
        assert (norm.virtual_batch_size, norm.groups) == (None, None)
    path = tmp_path / "c.yaml"
    path.write_text(to_yaml(ghost))
    assert load_config(path) == ghost
    # Explicit values are kept, and the caller's objects are never changed.
    norm = Norm(kind="ghost_batch", virtual_batch_size=6)
    model = Model(hidden=[10], norm=norm)
    assert Config(model=model).model.norm.virtual_batch_size == 6
    assert Config(model=Model(norm=Norm(kind="ghost_batch"))).model.norm.virtual_batch_size == 30
    unresolved = Model(norm=Norm(kind="group"))
    Config(model=unresolved)
    assert unresolved.norm.groups is None


def test_new_settings_have_the_documented_defaults():
    norm = Norm()
    assert (norm.r_max, norm.d_max, norm.renorm_warmup_steps, norm.r_max_ramp_steps, norm.d_max_ramp_steps) == (3.0, 5.0, 5000, 35_000, 20_000)
    assert (norm.virtual_batch_size, norm.groups) == (None, None)


def error(tmp_path, text, overrides=()):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, list(overrides))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_virtual_batch_size_not_dividing_the_batch_size_is_refused(tmp_path):
    message = error(tmp_path, "model: {norm: {kind: ghost_batch, virtual_batch_size: 25}}\ntrain: {batch_size: 60}")
    assert "model.norm.virtual_batch_size=25 does not divide train.batch_size=60" in message
    assert "unset, it is 30" in message
    assert "greater than or equal to 2" in error(tmp_path, "model: {norm: {kind: ghost_batch, virtual_batch_size: 1}}")


def test_groups_not_dividing_a_width_is_refused_naming_the_width(tmp_path):
    message = error(tmp_path, "model: {hidden: [100, 90], norm: {kind: group, groups: 4}}")
    assert "model.norm.groups=4 does not divide the width 90 of model.hidden[1]" in message
    assert "unset, it is 2" in message


def test_groups_of_a_single_unit_are_refused(tmp_path):
    assert "each unit of model.hidden[0] (width 8) alone" in error(tmp_path, "model: {hidden: [8], norm: {kind: group, groups: 8}}")
    assert "each unit of model.hidden[1] (width 1) alone" in error(tmp_path, "model: {hidden: [8, 1], norm: {kind: layer}}")


def test_settings_of_another_kind_are_not_checked():
    assert config("batch", hidden=[100], virtual_batch_size=7, groups=3).model.norm.groups == 3


@pytest.mark.parametrize("kind", ["batch_renorm", "ghost_batch"])
def test_batch_statistics_kinds_need_two_examples(tmp_path, kind):
    assert "at least 2" in error(tmp_path, f"model: {{norm: {{kind: {kind}}}}}\ntrain: {{batch_size: 1}}")


FEEDFORWARD = [p for p in SHIPPED if p.name != "rnn.yaml"]  # an LSTM takes none, batch or layer (tests/test_recurrent.py)


@pytest.mark.parametrize("kind", NEW_KINDS)
@pytest.mark.parametrize("path", FEEDFORWARD, ids=[p.name for p in FEEDFORWARD])
def test_every_shipped_config_works_with_only_the_kind_changed(path, kind):
    cfg = load_config(path, [f"model.norm.kind={kind}"])
    model = build_model(cfg.model, cfg.seed)
    layers = norm_layers(model)
    assert len(layers) == len(cfg.model.hidden) + len(cfg.model.conv or [])
    assert len(moving_stat_layers(model)) == (len(layers) if kind in ("batch_renorm", "ghost_batch") else 0)
    x = np.random.default_rng(0).uniform(size=(cfg.train.batch_size, 784)).astype("float32")
    for training in (True, False):
        assert model(x, training=training).shape == (cfg.train.batch_size, 10)


# --- the model: which layers, and a few training steps --------------------------------------


@pytest.mark.parametrize("kind, cls", [("batch_renorm", BatchRenorm), ("ghost_batch", GhostBatchNorm), ("layer", LayerNorm), ("group", GroupNorm)])
def test_model_builds_the_configured_layer_with_its_settings(kind, cls):
    cfg = config(kind, hidden=(8, 6), batch_size=48, momentum=0.9, epsilon=1e-5, center=False, r_max=2.0, d_max=1.0,
                 renorm_warmup_steps=1, r_max_ramp_steps=2, d_max_ramp_steps=3, groups=2 if kind == "group" else None)
    layers = norm_layers(build_model(cfg.model, 0))
    assert [type(layer) for layer in layers] == [cls, cls]
    for layer in layers:
        assert (layer.epsilon, layer.center, layer.scale) == (1e-5, False, True)
    if kind in ("batch_renorm", "ghost_batch"):
        assert all(layer.momentum == 0.9 for layer in layers)
    if kind == "batch_renorm":
        assert [(x.r_max, x.d_max, x.warmup_steps, x.r_max_ramp_steps, x.d_max_ramp_steps) for x in layers] == [(2.0, 1.0, 1, 2, 3)] * 2
        steps = [v.path for v in build_model(cfg.model, 0).non_trainable_weights if v.name == "step"]
        assert [path.split("/", 1)[1] for path in steps] == ["norm_0/step", "norm_1/step"]  # so checkpoints keep them
    if kind == "ghost_batch":
        assert [layer.virtual_batch_size for layer in layers] == [24, 24]
    if kind == "group":
        assert [layer.groups for layer in layers] == [2, 2]


def test_norm_layers_lists_all_kinds_and_moving_stat_layers_only_those_with_moving_statistics():
    for kind in ("batch", "keras", "batch_renorm", "ghost_batch"):
        model = build_model(config(kind, hidden=(8, 6)).model, 0)
        assert [layer.name for layer in moving_stat_layers(model)] == [layer.name for layer in norm_layers(model)] == ["norm_0", "norm_1"]
    for kind in ("layer", "group"):
        model = build_model(config(kind, hidden=(8, 6)).model, 0)
        assert [layer.name for layer in norm_layers(model)] == ["norm_0", "norm_1"] and moving_stat_layers(model) == []
    assert norm_layers(build_model(config("none").model, 0)) == []


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_a_few_compiled_sgd_steps_reduce_the_loss(kind):
    """Catches shape, gradient and XLA problems in a whole network: a learnable task, 40 steps."""
    cfg = config(kind, hidden=(32, 16), batch_size=64, momentum=0.9, renorm_warmup_steps=5, r_max_ramp_steps=10, d_max_ramp_steps=10)
    model = build_model(cfg.model, seed=0)
    rng = np.random.default_rng(17)
    x = rng.uniform(size=(64, 784)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(784, 10)), axis=1).astype("int32")  # a fixed linear teacher
    variables = model.trainable_variables

    @tf.function(jit_compile=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True)))
        for v, g in zip(variables, tape.gradient(loss, variables), strict=True):
            v.assign_sub(0.1 * g)
        return loss

    losses = [float(step(x, y)) for _ in range(40)]
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses
    inference = tf.function(lambda x: model(x, training=False), jit_compile=True)(x).numpy()
    assert np.all(np.isfinite(inference)) and inference.shape == (64, 10)
    if kind == "batch_renorm":
        assert [int(layer.step.numpy()) for layer in norm_layers(model)] == [40, 40]
