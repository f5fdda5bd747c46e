"""Opt-in diagnostics: the three CSV files, their rows and columns, and their values."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from test_train import train, write_config

# The tables' columns, as docs/reference.md documents them.
FILES = {
    "diag_activations.csv": ["step", "layer", "unit", "p15", "p50", "p85"],
    "diag_bn.csv": ["step", "layer", "mean_gap", "variance_gap"],
    "diag_gradients.csv": ["step", "variable", "grad_norm"],
}


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def diagnosed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("diag")
    config = write_config(tmp, {"train.steps": 200, "diagnostics": {"enabled": True, "units": [0, 5], "examples": 300}})
    assert train(config, "--run-dir", tmp / "run").exit_code == 0
    return tmp / "run"


def test_files_have_expected_columns(diagnosed):
    for name, columns in FILES.items():
        with open(diagnosed / name) as f:
            assert f.readline().strip().split(",") == columns


def test_activation_percentiles_one_row_per_evaluation_layer_and_unit(diagnosed):
    rows = read(diagnosed / "diag_activations.csv")
    keys = [(int(r["step"]), int(r["layer"]), int(r["unit"])) for r in rows]
    assert keys == [(s, layer, u) for s in (100, 200) for layer in (0, 1) for u in (0, 5)]
    for r in rows:
        assert float(r["p15"]) <= float(r["p50"]) <= float(r["p85"])


def test_bn_gap_and_gradient_rows(diagnosed):
    bn = read(diagnosed / "diag_bn.csv")
    assert [(int(r["step"]), int(r["layer"])) for r in bn] == [(100, 0), (100, 1), (200, 0), (200, 1)]
    assert all(float(r["mean_gap"]) >= 0 and float(r["variance_gap"]) >= 0 for r in bn)
    grads = read(diagnosed / "diag_gradients.csv")
    variables = [r["variable"] for r in grads if r["step"] == "100"]
    # Dense kernels (no bias before BN), gamma and beta per BN layer, the output layer's kernel and bias.
    assert variables == ["mlp/dense_0/kernel", "mlp/norm_0/gamma", "mlp/norm_0/beta", "mlp/dense_1/kernel",
                         "mlp/norm_1/gamma", "mlp/norm_1/beta", "mlp/logits/kernel", "mlp/logits/bias"]
    assert all(np.isfinite(float(r["grad_norm"])) and float(r["grad_norm"]) > 0 for r in grads)


def test_activation_percentiles_match_numpy_on_the_final_model(diagnosed):
    """Recompute the last row's percentiles from the saved weights with NumPy."""
    from bnexp.data import load
    from bnexp.evaluate import load_model
    from bnexp.rundir import RunDir

    run = RunDir(diagnosed)
    model, _ = load_model(run, run.read_config())
    x = load("mnist-sample").x_test[:300].reshape(300, -1).astype(np.float64) / 255
    w = model.get_layer("dense_0").kernel.numpy()
    bn = model.get_layer("norm_0")
    z = x @ w
    z = (z - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + bn.epsilon) * bn.gamma.numpy() + bn.beta.numpy()
    last = [r for r in read(diagnosed / "diag_activations.csv") if r["step"] == "200" and r["layer"] == "0"]
    for r in last:
        expected = np.percentile(z[:, int(r["unit"])], [15, 50, 85])
        assert [float(r["p15"]), float(r["p50"]), float(r["p85"])] == pytest.approx(expected, abs=1e-4)


def test_no_diagnostics_files_unless_enabled(tmp_path):
    assert train(write_config(tmp_path, {"train.steps": 100}), "--run-dir", tmp_path / "r").exit_code == 0
    assert not any((tmp_path / "r" / name).exists() for name in FILES)


def test_diagnostics_also_reach_tensorboard(diagnosed):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(diagnosed / "tb"))
    events.Reload()
    bn = read(diagnosed / "diag_bn.csv")
    logged = [(e.step, e.value) for e in events.Scalars("bn_gap/layer1/mean")]
    assert logged == [(int(r["step"]), pytest.approx(float(r["mean_gap"]), rel=1e-6)) for r in bn if r["layer"] == "1"]
    tags = events.Tags()["scalars"]
    assert "activation_input/layer0/unit5/p85" in tags and "grad_norm/mlp/dense_0/kernel" in tags
