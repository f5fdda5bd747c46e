"""Recurrent networks (`model.kind: rnn`): the LSTM, Cooijmans et al.'s recurrent BN and
Ba et al.'s layer-norm LSTM against NumPy written from the papers' equations, the plain
LSTM against Keras' own, per-time-step inference and PreciseBN, the config's rules, and
configs/rnn.yaml end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_train import assert_config_error, metrics_without_timing, train, write_config

from bnexp import rundir
from bnexp.backend import tensorflow
from bnexp.config import Config
from bnexp.evaluate import precise_statistics
from bnexp.model import build_model, moving_stat_layers, pixel_permutation, pixels
from bnexp.recurrent import LSTM, TimeBatchNorm

tf = tensorflow()
import keras  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EPS = 1e-3
B, T, D, H = 16, 6, 5, 4


def sequences(seed=0, shape=(B, T, D)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def batch_norm(a, gamma, beta, mean, var):
    return gamma * (a - mean) / np.sqrt(var + EPS) + beta


def layer_norm(a, gain, bias):
    mean, var = a.mean(axis=1, keepdims=True), a.var(axis=1, keepdims=True)
    return gain * (a - mean) / np.sqrt(var + EPS) + bias


def reference_lstm(x, lstm, training=True, moving=None):
    """Cooijmans et al. (2016) eq. 6-8 (norm "batch"), Ba et al. (2016)'s LN-LSTM ("layer") or
    the plain LSTM ("none"), step by step in float64, with the layer's own weights. Returns
    h_T and, for "batch", each normalisation's batch statistics per step {name: (means, variances)}.
    `moving` {name: (means (T_max, F), variances)}: inference with step min(t, T_max − 1)'s."""
    w = lambda v: None if v is None else v.numpy().astype(np.float64)  # noqa: E731
    Wx, Wh, b = w(lstm.kernel), w(lstm.recurrent_kernel), w(lstm.bias)
    norms = {name: getattr(lstm, f"norm_{name}", None) for name in "xhc"}
    x = x.astype(np.float64)
    h = c = np.zeros((x.shape[0], Wh.shape[0]))
    stats = {name: ([], []) for name in "xhc"}

    def norm(name, a, t):
        layer = norms[name]
        if lstm.norm == "none":
            return a
        if lstm.norm == "layer":
            return layer_norm(a, w(layer.gamma), w(layer.beta))
        if training:
            mean, var = a.mean(axis=0), a.var(axis=0)
        else:
            k = min(t, layer.t_max - 1)
            mean, var = moving[name][0][k], moving[name][1][k]
        stats[name][0].append(mean)
        stats[name][1].append(var)
        beta = 0.0 if layer.beta is None else w(layer.beta)  # β_x = β_h = 0: the paper fixes them
        return batch_norm(a, w(layer.gamma), beta, mean, var)

    for t in range(x.shape[1]):
        pre = norm("h", h @ Wh, t) + norm("x", x[:, t] @ Wx, t) + b
        f, i, o, g = np.split(pre, 4, axis=1)  # (f, i, o, g): eq. 6's order
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(norm("c", c, t))
    return h, {name: (np.array(m), np.array(v)) for name, (m, v) in stats.items()}


def lstm_layer(norm, t_max=None, momentum=0.5, gamma_init=None):
    layer = LSTM(H, norm=norm, seed=3, t_max=t_max, momentum=momentum, epsilon=EPS, gamma_init=gamma_init)
    layer.build((None, T, D))
    return layer


# --- recurrent BN: Cooijmans et al. 2016 ------------------------------------------------------------


def test_recurrent_bn_initialises_gamma_to_0_1_and_has_no_beta_on_the_separate_terms():
    layer = lstm_layer("batch")
    assert [type(n) for n in layer.norms] == [TimeBatchNorm] * 3
    for norm, width in zip(layer.norms, (4 * H, 4 * H, H)):
        np.testing.assert_array_equal(norm.gamma.numpy(), np.full(width, 0.1, np.float32))
        assert norm.moving_mean.shape == (T, width) and norm.moving_variance.shape == (T, width)  # T_max = T
    assert layer.norm_x.beta is None and layer.norm_h.beta is None  # β_x = β_h = 0, not trained
    np.testing.assert_array_equal(layer.norm_c.beta.numpy(), np.zeros(H, np.float32))
    assert [v.path.split("/")[-2:] for v in layer.trainable_weights][-4:] == [["norm_x", "gamma"], ["norm_h", "gamma"], ["norm_c", "gamma"], ["norm_c", "beta"]]
    np.testing.assert_array_equal(lstm_layer("batch", gamma_init=1.0).norm_c.gamma.numpy(), np.ones(H, np.float32))


def test_recurrent_bn_training_pass_and_per_step_statistics_match_the_paper():
    """Training mode: every step normalised by its own batch statistics (eq. 6-8), and each
    step's moving statistics one EMA step (momentum 0.5) from their initial 0 and 1 towards them.
    float32 against float64 over 6 steps of values of size ~1-5: 1e-4 covers the rounding."""
    layer = lstm_layer("batch")
    for norm in layer.norms:  # γ away from the initial 0.1 and β_c from 0, so each is seen in the output
        norm.gamma.assign(np.random.default_rng(5).uniform(0.5, 1.5, norm.gamma.shape).astype(np.float32))
    layer.norm_c.beta.assign(np.linspace(-0.5, 0.5, H).astype(np.float32))
    x = sequences(1)
    expected, stats = reference_lstm(x, layer, training=True)
    np.testing.assert_allclose(layer(tf.constant(x), training=True).numpy(), expected, rtol=1e-4, atol=1e-5)
    for norm, name in zip(layer.norms, "xhc"):
        means, variances = stats[name]
        assert means.shape == (T, norm.gamma.shape[0])
        np.testing.assert_allclose(norm.moving_mean.numpy(), 0.5 * means, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(norm.moving_variance.numpy(), 0.5 + 0.5 * variances, rtol=1e-4, atol=1e-5)
    assert stats["h"][1][0].max() == 0  # h_0 = 0: the first step's hidden term is constant, as in the paper


def test_recurrent_bn_inference_uses_each_steps_statistics_and_those_of_t_max_beyond():
    """Section 3: population statistics per time step; for t ≥ T_max those of step T_max − 1."""
    layer = lstm_layer("batch", t_max=4)
    rng = np.random.default_rng(2)
    moving = {}
    for norm, name in zip(layer.norms, "xhc"):
        width = norm.gamma.shape[0]
        mean, var = rng.normal(size=(4, width)), rng.uniform(0.2, 3.0, size=(4, width))
        norm.moving_mean.assign(mean.astype(np.float32))
        norm.moving_variance.assign(var.astype(np.float32))
        moving[name] = (mean.astype(np.float32).astype(np.float64), var.astype(np.float32).astype(np.float64))
    x = sequences(3)
    expected, _ = reference_lstm(x, layer, training=False, moving=moving)
    np.testing.assert_allclose(layer(tf.constant(x), training=False).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_recurrent_bn_keeps_statistics_for_t_max_steps_only():
    layer = lstm_layer("batch", t_max=4, momentum=0.0)
    x = sequences(4)
    _, stats = reference_lstm(x, layer, training=True)
    layer(tf.constant(x), training=True)
    np.testing.assert_allclose(layer.norm_h.moving_variance.numpy(), stats["h"][1][:4], rtol=1e-4, atol=1e-6)


def test_the_batch_moments_are_those_training_would_use_and_change_nothing():
    layer = lstm_layer("batch")
    x = sequences(6)
    _, stats = reference_lstm(x, layer, training=True)
    moments = layer.batch_moments(tf.constant(x))
    for (mean, var), name in zip(moments, "xhc"):
        np.testing.assert_allclose(mean.numpy(), stats[name][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(var.numpy(), stats[name][1], rtol=1e-4, atol=1e-5)
    assert all(np.all(norm.moving_mean.numpy() == 0) for norm in layer.norms)


# --- layer-norm LSTM and the plain LSTM ------------------------------------------------------------


def test_layer_norm_lstm_matches_ba_et_al():
    layer = lstm_layer("layer")
    for norm in layer.norms:
        np.testing.assert_array_equal(norm.gamma.numpy(), np.ones(norm.gamma.shape, np.float32))  # Ba et al.'s gains start at 1
        norm.gamma.assign(np.random.default_rng(7).uniform(0.5, 1.5, norm.gamma.shape).astype(np.float32))
        norm.beta.assign(np.random.default_rng(8).normal(size=norm.beta.shape).astype(np.float32))
    x = sequences(9)
    expected, _ = reference_lstm(x, layer)
    for training in (True, False):  # no batch statistics: both modes compute the same
        np.testing.assert_allclose(layer(tf.constant(x), training=training).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert moving_stat_layers(build_model(rnn_config("layer").model, 0)) == []


def test_plain_lstm_equals_keras_lstm():
    """Keras orders its gates (i, f, g, o), ours (f, i, o, g): the same weights reordered give
    the same last hidden state (float32, two implementations: 1e-5)."""
    ours = lstm_layer("none")
    theirs = keras.layers.LSTM(H)
    theirs.build((None, T, D))
    f, i, o, g = (slice(k * H, (k + 1) * H) for k in range(4))

    def keras_order(w):
        return np.concatenate([w[..., i], w[..., f], w[..., g], w[..., o]], axis=-1)

    theirs.set_weights([keras_order(v.numpy()) for v in (ours.kernel, ours.recurrent_kernel, ours.bias)])
    x = tf.constant(sequences(10))
    np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ours.bias.numpy()[f], np.ones(H, np.float32))  # the forget gate's bias starts at 1


# --- the model, PreciseBN, the config -------------------------------------------------------------


def rnn_config(norm="batch", **model):
    return Config.model_validate({"model": {"kind": "rnn", "lstm": {"units": H}, "hidden": [6], "norm": {"kind": norm}, **model}})


def test_rows_and_pixels_sequences_and_the_fixed_permutation():
    images = np.random.default_rng(0).integers(0, 256, size=(3, 784), dtype=np.uint8)
    rows = build_model(rnn_config().model, 0)
    assert rows.get_layer("sequence").output.shape[1:] == (28, 28) and rows.get_layer("lstm").norm_x.t_max == 28
    permuted = build_model(rnn_config(sequence="pixels", permute=True).model, 0)
    assert permuted.get_layer("sequence").output.shape[1:] == (784, 1)
    order = pixel_permutation()
    np.testing.assert_array_equal(order, pixel_permutation())  # fixed, whatever the run's seed
    assert sorted(order) == list(range(784)) and (order != np.arange(784)).any()
    x = pixels(images)
    np.testing.assert_array_equal(permuted.get_layer("permute")(x).numpy(), x.numpy()[:, order])


def test_precise_statistics_are_per_time_step():
    """PreciseBN (Ioffe & Szegedy Algorithm 2) on one batch of all the images: each recurrent
    BN's training-mode statistics of every step, the variance times m/(m − 1)."""
    model = build_model(rnn_config().model, 0)
    images = np.random.default_rng(1).integers(0, 256, size=(10, 784), dtype=np.uint8)
    stats = precise_statistics(model, images, batch_size=10)
    layers = moving_stat_layers(model)
    assert [layer.name for layer in layers] == ["norm_x", "norm_h", "norm_c", "norm_0"]
    lstm = model.get_layer("lstm")
    moments = lstm.batch_moments(model.get_layer("sequence")(pixels(images)))
    for (mean, var), (precise_mean, precise_var) in zip(moments, stats):
        assert precise_mean.shape == (28, mean.shape[1])
        np.testing.assert_allclose(precise_mean, mean.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(precise_var, var.numpy() * 10 / 9, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("overrides, named", [
    ({"model.kind": "rnn", "model.norm.kind": "ghost_batch"}, "model.norm.kind=ghost_batch"),
    ({"model.kind": "rnn", "model.norm.kind": "keras"}, "model.norm.kind=keras"),
    ({"model.kind": "rnn", "model.norm.placement": "after_activation"}, "model.norm.placement"),
    ({"model.kind": "rnn", "model.norm.noise.scale": 0.1}, "model.norm.noise.scale"),
    ({"model.kind": "rnn", "model.lstm": {"t_max": 29}}, "model.lstm.t_max=29"),
    ({"model.lstm": {"units": 8}}, "model.lstm applies to model.kind=rnn"),
    ({"model.sequence": "pixels"}, "model.sequence applies to model.kind=rnn"),
    ({"model.kind": "rnn", "model.norm.kind": "instance"}, "model.norm.kind=instance"),
])
def test_rnn_config_errors_are_one_line_exit_2(tmp_path, overrides, named):
    assert_config_error(tmp_path, overrides, named)


# --- runs -------------------------------------------------------------------------------------------

TINY_RNN = {"model.kind": "rnn", "model.lstm": {"units": 8}, "model.hidden": [8], "train.eval_train_examples": 0}


@pytest.mark.long
def test_rnn_run_evaluates_with_batch_and_precise_statistics_and_records_diagnostics(tmp_path):
    config = write_config(tmp_path, {**TINY_RNN, "train.steps": 40, "train.eval_every": 20,
                                     "diagnostics": {"enabled": True, "ics": True, "examples": 50}})
    result = train(config, "--run-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    run = rundir.RunDir(tmp_path / "r")
    assert [r["layer"] for r in run.read_diagnostics("bn") if r["step"] == 40] == [0, 1, 2, 3]  # norm_x, norm_h, norm_c, norm_0
    assert [r["layer"] for r in run.read_diagnostics("ics") if r["step"] == 40] == [0, 1, 2]  # the LSTM's W_x, dense_0, logits
    from bnexp.evaluate import evaluate_run

    records = evaluate_run(tmp_path / "r", stats="all", precise_examples=500)
    summary = json.loads((tmp_path / "r" / rundir.SUMMARY).read_text())
    assert records["moving"]["accuracy"] == summary["test_accuracy"]  # eval reproduces training's evaluation
    assert all(0 < records[s]["accuracy"] <= 1 for s in ("batch", "precise"))


def test_a_pixel_by_pixel_permuted_rnn_trains(tmp_path):
    config = write_config(tmp_path, {**TINY_RNN, "model.sequence": "pixels", "model.permute": True,
                                     "train.steps": 4, "train.eval_every": 4, "train.batch_size": 10})
    result = train(config, "--run-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / rundir.SUMMARY).read_text())["status"] == "completed"


@pytest.mark.long
def test_an_extended_rnn_run_ends_as_one_planned_that_long(tmp_path):
    """Resume and extension with per-time-step moving statistics in the checkpoint."""
    long = write_config(tmp_path, {**TINY_RNN, "train.steps": 40, "train.eval_every": 20}, "long.yaml")
    short = write_config(tmp_path, {**TINY_RNN, "train.steps": 20, "train.eval_every": 20}, "short.yaml")
    assert train(long, "--run-dir", tmp_path / "long").exit_code == 0
    assert train(short, "--run-dir", tmp_path / "short").exit_code == 0
    result = train("--resume", tmp_path / "short", "--set", "train.steps=40")
    assert result.exit_code == 0, result.output
    assert metrics_without_timing(tmp_path / "short") == metrics_without_timing(tmp_path / "long")


@pytest.mark.long
def test_rnn_yaml_shortened_reaches_90_percent(tmp_path):
    """configs/rnn.yaml (BN-LSTM over rows) for 4 of its 10 epochs (its cosine schedule over
    those 4) on the bundled sample: above the 0.90 the full config must reach."""
    result = train(CONFIGS / "rnn.yaml", "--set", "train.epochs=4", "--set", "train.eval_train_examples=0", "--run-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / rundir.SUMMARY).read_text())["test_accuracy"] > 0.90


NETWORK_CLAIMS = sorted(p for p in (CONFIGS / "claims").glob("*.yaml") if "cnn" in p.stem or "rnn" in p.stem)


def test_there_are_network_claims_from_at_least_three_papers_including_cooijmans():
    papers = {p.stem.split("_")[0] for p in NETWORK_CLAIMS}
    assert len(NETWORK_CLAIMS) >= 6 and len(papers) >= 3 and "cooijmans2016" in papers


@pytest.mark.parametrize("path", NETWORK_CLAIMS, ids=[p.stem for p in NETWORK_CLAIMS])
def test_network_claim_files_load_with_their_kind_and_say_how_they_depart(path, tmp_path):
    """Each expands into valid points of the kind its name says, on full MNIST, 5 seeds a side;
    its opening comments give the setup (fixed before any run) and what differs from the paper."""
    from bnexp.sweep import load_sweep

    sweep = load_sweep(path, tmp_path / "out")
    kind = "cnn" if "cnn" in path.stem else "rnn"
    assert {p.config.model.kind for p in sweep.points} == {kind}
    assert {p.config.data.dataset for p in sweep.points} == {"mnist"} and len(sweep.seeds) == 5
    assert sweep.claims and all(entry.source for entry in sweep.claims)
    header = " ".join(line.lstrip("# ") for line in path.read_text().split("\nname:")[0].splitlines())
    assert "Setup (adapted" in header and "fixed before any run" in header
