"""bnexp eval on tiny runs of the bundled sample: the default equals the summary, batch
statistics degrade at small batches, PreciseBN equals a NumPy Algorithm 2, results are
recorded without touching training files, and bad input is one clear line.

Reference values come from a NumPy forward pass over the checkpoint's own arrays."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from test_train import write_config as train_config

from bnexp.cli import app

TINY = {
    "name": "tiny",
    "seed": 3,
    "data": {"dataset": "mnist-sample"},
    "model": {"hidden": [32, 16], "activation": "relu", "norm": {"kind": "batch", "momentum": 0.9}},
    "train": {"optimizer": "momentum", "learning_rate": 0.05, "batch_size": 50, "steps": 600, "eval_every": 200},
}
TRAINING_FILES = ("config.yaml", "metrics.csv", "summary.json", "checkpoint.npz", "log.txt")
SAMPLE_TRAIN, SAMPLE_TEST = 5000, 1000


def write_config(folder: Path, overrides: dict | None = None, name: str = "config.yaml") -> Path:
    return train_config(folder, overrides, name, base=TINY)


def train_run(folder: Path, overrides: dict | None = None, expect: int | None = 0) -> Path:
    """Train a run in-process under the same isolation conftest gives each test."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BNEXP_OFFLINE", "1")
        mp.setenv("KERAS_HOME", str(folder / "keras_home"))
        mp.delenv("BNEXP_DATA_DIR", raising=False)
        result = CliRunner().invoke(app, ["train", str(write_config(folder, overrides)), "--run-dir", str(folder / "run"), "--quiet"])
    assert expect is None or result.exit_code == expect, result.output
    return folder / "run"


def run_eval(run: Path, *args: str):
    return CliRunner().invoke(app, ["eval", str(run), *map(str, args)])


def eval_json(run: Path, *args: str) -> dict:
    result = run_eval(run, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def snapshot(folder: Path) -> dict:
    """Every file under `folder` (hidden ones too) by its SHA-256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("eval.json", ".lock"))
    return to


# NumPy references, written from the paper, over the checkpoint's arrays.

def weights(run: Path) -> dict:
    with np.load(run / "checkpoint.npz") as f:
        return {name.removeprefix("model/mlp/"): f[name].astype(np.float64) for name in f.files if name.startswith("model/")}


def sample():
    with np.load(Path(__file__).resolve().parents[1] / "bnexp" / "sample" / "mnist_sample.npz") as f:
        return {k: f[k] for k in f.files}


def epsilon(run: Path) -> float:
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["norm"]["placement"] == "before_activation" and config["model"]["activation"] == "relu"
    return float(config["model"]["norm"]["epsilon"])


def forward(w: dict, eps: float, images: np.ndarray, statistics=None, record=None) -> np.ndarray:
    """Logits of Dense → BN → relu layers: BN with `statistics` [(mean, var)], else the batch's own
    (mean and biased variance, appended to `record` when given)."""
    h = images.reshape(len(images), -1).astype(np.float64) / 255.0
    layers = sorted({k.split("/")[0] for k in w if k.startswith("norm_")})
    for i in range(len(layers)):
        z = h @ w[f"dense_{i}/kernel"]
        if statistics is None:
            mean, var = z.mean(axis=0), z.var(axis=0)
            if record is not None:
                record.append((i, mean, var))
        else:
            mean, var = statistics[i]
        h = np.maximum((z - mean) / np.sqrt(var + eps) * w[f"norm_{i}/gamma"] + w[f"norm_{i}/beta"], 0.0)
    return h @ w["logits/kernel"] + w["logits/bias"]


def loss_and_accuracy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean()), float((logits.argmax(axis=1) == labels).mean())


def numpy_precise(w: dict, eps: float, images: np.ndarray, m: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Algorithm 2: E = mean of batch means, Var = m/(m−1) · mean of biased batch variances."""
    record = []
    for b in range(len(images) // m):
        forward(w, eps, images[b * m:(b + 1) * m], record=record)
    layers = sorted({i for i, _, _ in record})
    return [(np.mean([mu for j, mu, _ in record if j == i], axis=0),
             m / (m - 1) * np.mean([v for j, _, v in record if j == i], axis=0)) for i in layers]


def moving(w: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    layers = sorted({k.split("/")[0] for k in w if k.startswith("norm_")})
    return [(w[f"{n}/moving_mean"], w[f"{n}/moving_variance"]) for n in layers]


@pytest.fixture(scope="module")
def bn_run(tmp_path_factory) -> Path:
    """A completed run with our BatchNorm before relu: hidden [32, 16], batch 50, 600 steps."""
    return train_run(tmp_path_factory.mktemp("bn"))


@pytest.fixture(scope="module")
def keras_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("keras"), {"model.norm.kind": "keras", "train.steps": 300})


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("plain"), {"model.norm.kind": "none", "model.hidden": [8], "train.steps": 20})


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory) -> Path:
    """A run stopped by SIGINT partway; it evaluates every 100 steps, as often as it can stop."""
    from bnexp.present.training import TrainDisplay

    def progress(self, at, *args):
        if at >= 200 and not getattr(self, "sent", False):
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TrainDisplay, "progress", progress)
        run = train_run(tmp_path_factory.mktemp("interrupted"), {"model.hidden": [16], "train.steps": 2000, "train.eval_every": 100},
                        expect=None)  # train's exit code (130) is test_train's concern
    assert summary(run)["status"] == "interrupted" and summary(run)["steps"] < 2000
    return run


# 1. The default eval is the summary's final evaluation.

def test_default_eval_equals_the_run_summary_exactly(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    record = eval_json(run)
    assert (record["stats"], record["split"], record["step"]) == ("moving", "test", 600)
    assert record["accuracy"] == summary(run)["test_accuracy"]
    assert record["loss"] == summary(run)["test_loss"]
    assert record["total"] == SAMPLE_TEST and record["notes"] == []


def test_table_shows_accuracy_and_a_consistent_confusion_matrix(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    result = run_eval(run)
    assert result.exit_code == 0, result.output
    accuracy = summary(run)["test_accuracy"]
    assert f"{accuracy:.4f}" in result.stdout and f"{round(accuracy * SAMPLE_TEST)}/{SAMPLE_TEST}" in result.stdout
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("confusion matrix"))
    rows = [[int(c) for c in re.findall(r"\d+", line)] for line in lines[start:] if re.match(r"^│ \d ", line)]
    matrix = np.array([row[1:] for row in rows])
    assert matrix.shape == (10, 10) and [row[0] for row in rows] == list(range(10))
    assert matrix.sum() == SAMPLE_TEST
    assert np.trace(matrix) / matrix.sum() == accuracy
    assert np.array_equal(matrix.sum(axis=1), np.bincount(sample()["y_test"], minlength=10))
    title = next(i for i, line in enumerate(lines) if line.startswith("per-class accuracy"))
    shown = [float(c) for c in re.findall(r"\d\.\d{3}", next(line for line in lines[title:] if re.search(r"\d\.\d{3}", line)))]
    assert shown == [round(a, 3) for a in np.diag(matrix) / matrix.sum(axis=1)]
    record = eval_json(run)
    assert record["confusion"] == matrix.tolist()
    assert record["per_class_accuracy"] == (np.diag(matrix) / matrix.sum(axis=1)).tolist()


# 2. Batch statistics: as training normalises, each batch by itself.

def test_batch_statistics_at_batch_2_are_worse_and_the_gap_closes_with_batch_size(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    reference = eval_json(run)["accuracy"]
    by_size = {b: eval_json(run, "--stats", "batch", "--batch-size", b) for b in (2, 8, 32, 500)}
    accuracy = {b: r["accuracy"] for b, r in by_size.items()}
    assert all(r["batch_size"] == b and r["stats"] == "batch" for b, r in by_size.items())
    assert accuracy[2] <= reference - 0.2  # measured: 0.37 against 0.93
    assert accuracy[2] < accuracy[8] < accuracy[32]
    assert by_size[2]["loss"] > by_size[8]["loss"] > by_size[32]["loss"]
    assert abs(accuracy[500] - reference) <= 0.01
    assert eval_json(run, "--stats", "batch")["batch_size"] == 50  # the run's train.batch_size by default


@pytest.mark.parametrize("batch", [2, 300])  # 300: the last of four batches holds only 100
def test_batch_statistics_match_a_numpy_training_mode_forward_pass(bn_run, tmp_path, batch):
    run = copy_run(bn_run, tmp_path / "run")
    data, w, eps = sample(), weights(run), epsilon(run)
    x, y = data["x_test"], data["y_test"].astype(np.int64)
    logits = np.concatenate([forward(w, eps, x[s:s + batch]) for s in range(0, len(x), batch)])
    loss, accuracy = loss_and_accuracy(logits, y)
    record = eval_json(run, "--stats", "batch", "--batch-size", batch)
    assert record["loss"] == pytest.approx(loss, rel=1e-4)
    assert abs(record["accuracy"] - accuracy) <= 2 / SAMPLE_TEST  # float32 may flip a tie-close argmax


# 3. PreciseBN (Ioffe & Szegedy, Algorithm 2).

@pytest.mark.parametrize("which", ["bn_run", "keras_run"])
def test_precise_statistics_equal_numpy_algorithm_2(which, request):
    from bnexp.evaluate import load_model, precise_statistics
    from bnexp.model import norm_layers
    from bnexp.rundir import RunDir

    run = request.getfixturevalue(which)
    config = RunDir(run).read_config()
    model, _ = load_model(RunDir(run), config)
    images = sample()["x_train"][:1030]  # 20 batches of 50; the last 30 are dropped
    got = precise_statistics(model, images, 50)
    w = weights(run)
    want = numpy_precise(w, config.model.norm.epsilon, images, 50)
    assert len(got) == len(want) == 2
    for (mean, var), (e, v), (moving_mean, _) in zip(got, want, moving(w)):
        np.testing.assert_allclose(mean, e, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(var, v, rtol=1e-5)
        assert not np.allclose(mean, moving_mean, rtol=1e-2)  # a real recomputation, not the saved EMA
    for layer, (moving_mean, _) in zip(norm_layers(model), moving(w)):
        np.testing.assert_array_equal(layer.moving_mean.numpy(), moving_mean.astype(np.float32))  # the model is left as it was


def test_precise_eval_over_the_whole_split_matches_numpy_and_keeps_the_checkpoint(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    before = (run / "checkpoint.npz").read_bytes()
    record = eval_json(run, "--stats", "precise", "--precise-examples", SAMPLE_TRAIN)
    assert (record["stats"], record["precise_examples"], record["batch_size"], record["notes"]) == ("precise", SAMPLE_TRAIN, 50, [])
    data, w, eps = sample(), weights(run), epsilon(run)
    statistics = numpy_precise(w, eps, data["x_train"], 50)  # the whole split: 100 batches in order
    loss, accuracy = loss_and_accuracy(forward(w, eps, data["x_test"], statistics), data["y_test"].astype(np.int64))
    assert record["loss"] == pytest.approx(loss, rel=1e-4)
    assert abs(record["accuracy"] - accuracy) <= 2 / SAMPLE_TEST
    assert (run / "checkpoint.npz").read_bytes() == before


def test_precise_examples_beyond_the_split_use_all_of_it_and_say_so(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    everything = eval_json(run, "--stats", "precise", "--precise-examples", SAMPLE_TRAIN)
    beyond = eval_json(run, "--stats", "precise", "--precise-examples", 6000)
    assert beyond["precise_examples"] == SAMPLE_TRAIN
    assert (beyond["accuracy"], beyond["loss"]) == (everything["accuracy"], everything["loss"])
    assert len(beyond["notes"]) == 1 and "6000" in beyond["notes"][0] and str(SAMPLE_TRAIN) in beyond["notes"][0]
    table = run_eval(run, "--stats", "precise").stdout  # the default, 10,000, exceeds the sample too
    assert "10000" in table and f"used all {SAMPLE_TRAIN}" in table


# 4. The training split.

def test_train_split_evaluates_all_5000_examples_like_numpy(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    record = eval_json(run, "--split", "train")
    assert (record["split"], record["total"]) == ("train", SAMPLE_TRAIN)
    assert np.array(record["confusion"]).sum() == SAMPLE_TRAIN and record["accuracy"] == record["correct"] / SAMPLE_TRAIN
    data, w = sample(), weights(run)
    loss, accuracy = loss_and_accuracy(forward(w, epsilon(run), data["x_train"], moving(w)), data["y_train"].astype(np.int64))
    assert record["loss"] == pytest.approx(loss, rel=1e-4)
    assert abs(record["accuracy"] - accuracy) <= 2 / SAMPLE_TRAIN


# 5. eval.json, and training files untouched.

def test_evals_accumulate_in_eval_json_and_leave_training_files_byte_identical(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    before = snapshot(run)
    assert set(TRAINING_FILES) <= set(before)
    records = {}
    for args in ([], ["--stats", "batch", "--batch-size", "8"], ["--stats", "precise", "--precise-examples", "1000"], ["--split", "train"]):
        record = eval_json(run, *args)
        records[f"{record['stats']}/{record['split']}"] = record
        assert json.loads((run / "eval.json").read_text()) == records  # earlier keys kept, the new one added
    assert set(records) == {"moving/test", "batch/test", "precise/test", "moving/train"}
    assert records["precise/test"]["precise_examples"] == 1000 and records["precise/test"]["notes"] == []
    records["batch/test"] = eval_json(run, "--stats", "batch", "--batch-size", "32")  # the same key: replaced
    assert json.loads((run / "eval.json").read_text()) == records
    after = snapshot(run)
    assert after.pop("eval.json") and after == before  # nothing else added, removed or changed


# 6. Interrupted runs.

def test_interrupted_run_is_evaluated_from_its_last_checkpoint_and_says_so(interrupted_run, tmp_path):
    run = copy_run(interrupted_run, tmp_path / "run")
    stopped = summary(run)
    record = eval_json(run)
    assert record["step"] == stopped["steps"]
    assert record["accuracy"] == stopped["test_accuracy"] and record["loss"] == stopped["test_loss"]  # last eval = last checkpoint
    assert len(record["notes"]) == 1 and "interrupted" in record["notes"][0] and "last checkpoint" in record["notes"][0]
    table = run_eval(run).stdout
    assert "interrupted" in table and f"last checkpoint, at step {stopped['steps']}" in table


# 7. Bad input: one line, the right exit code, no traceback, nothing changed.

def assert_one_line_error(result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)  # not a crash
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "unexpected" not in lines[0], lines[0]  # the CLI's catch-all for bugs is not a clear error
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0]


def _truncate(run: Path) -> None:
    raw = (run / "checkpoint.npz").read_bytes()
    (run / "checkpoint.npz").write_bytes(raw[: len(raw) // 2])


def _flip_bytes(run: Path) -> None:
    raw = bytearray((run / "checkpoint.npz").read_bytes())
    for i in range(2000, 2100):  # inside the first kernel's data: the zip CRC catches it
        raw[i] ^= 0xFF
    (run / "checkpoint.npz").write_bytes(bytes(raw))


def _edit_config(change):
    def edit(run: Path) -> None:
        config = yaml.safe_load((run / "config.yaml").read_text())
        change(config)
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    return edit


BAD_RUNS = {
    # name: (break the copy, extra args, exit code, words the line must hold)
    "missing checkpoint": (lambda r: (r / "checkpoint.npz").unlink(), [], 1, ["checkpoint.npz", "missing"]),
    "random-bytes checkpoint": (lambda r: (r / "checkpoint.npz").write_bytes(np.random.default_rng(0).bytes(5000)), [], 1, ["checkpoint.npz", "corrupt"]),
    "truncated checkpoint": (_truncate, [], 1, ["checkpoint.npz", "corrupt"]),
    "bit-flipped checkpoint": (_flip_bytes, [], 1, ["checkpoint.npz", "corrupt"]),
    "config with an unknown key": (_edit_config(lambda c: c["train"].update(warmup=5)), [], 2, ["config.yaml", "warmup"]),
    "config whose model no longer matches the weights": (_edit_config(lambda c: c["model"].update(hidden=[32, 8])), [], 1, ["checkpoint.npz"]),
    "data directory gone": (_edit_config(lambda c: c.update(data={"dataset": "mnist", "dir": "/nonexistent/bnexp-data"})), [], 1, ["/nonexistent/bnexp-data"]),
    "corrupt summary": (lambda r: (r / "summary.json").write_text('{"status": "comp'), [], 1, ["summary.json", "corrupt"]),
    "unknown stats": (lambda r: None, ["--stats", "bogus"], 2, ["bogus", "'moving', 'batch', 'precise'"]),
    "unknown split": (lambda r: None, ["--split", "validation"], 2, ["validation"]),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_run_is_one_line_with_its_exit_code_and_changes_nothing(bn_run, tmp_path, case):
    damage, args, code, words = BAD_RUNS[case]
    run = copy_run(bn_run, tmp_path / "run")
    damage(run)
    before = snapshot(run)
    assert_one_line_error(run_eval(run, *args), code, *words)
    assert snapshot(run) == before


@pytest.mark.parametrize("stats", ["batch", "precise"])
def test_batch_or_precise_stats_without_bn_layers_is_a_usage_error(plain_run, tmp_path, stats):
    run = copy_run(plain_run, tmp_path / "run")
    before = snapshot(run)
    assert_one_line_error(run_eval(run, "--stats", stats), 2, "norm.kind=none")
    assert snapshot(run) == before
    assert eval_json(run)["accuracy"] == summary(run)["test_accuracy"]  # moving (no statistics at all) still works


def test_paths_that_are_not_runs_exit_2(tmp_path):
    assert_one_line_error(run_eval(tmp_path / "nowhere"), 2, str(tmp_path / "nowhere"), "does not exist")
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("not a run\n")
    assert_one_line_error(run_eval(tmp_path / "notes"), 2, "not a bnexp run directory")
    assert snapshot(tmp_path / "notes") == {"todo.txt": hashlib.sha256(b"not a run\n").hexdigest()}
    assert_one_line_error(run_eval(tmp_path / "notes" / "todo.txt"), 2, "not a directory")


def test_precise_examples_fewer_than_one_batch_is_a_usage_error(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    before = snapshot(run)
    assert_one_line_error(run_eval(run, "--stats", "precise", "--precise-examples", 10), 2, "--precise-examples")
    assert snapshot(run) == before


def test_checkpoint_with_unreadable_loop_state_is_reported_as_corrupt(bn_run, tmp_path):
    run = copy_run(bn_run, tmp_path / "run")
    with np.load(run / "checkpoint.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["state"] = np.frombuffer(b"\xff\x00not json", np.uint8)
    with open(run / "checkpoint.npz", "wb") as f:
        np.savez(f, **arrays)
    before = snapshot(run)
    assert_one_line_error(run_eval(run), 1, "checkpoint.npz", "corrupt")
    assert snapshot(run) == before


# 8. Keras' own BatchNormalization.

def test_keras_norm_run_evaluates_like_its_summary_and_with_precise_stats(keras_run, tmp_path):
    run = copy_run(keras_run, tmp_path / "run")
    record = eval_json(run)
    assert (record["accuracy"], record["loss"]) == (summary(run)["test_accuracy"], summary(run)["test_loss"])
    precise = eval_json(run, "--stats", "precise", "--precise-examples", SAMPLE_TRAIN)
    data, w, eps = sample(), weights(run), epsilon(run)
    loss, accuracy = loss_and_accuracy(forward(w, eps, data["x_test"], numpy_precise(w, eps, data["x_train"], 50)), data["y_test"].astype(np.int64))
    assert precise["loss"] == pytest.approx(loss, rel=1e-4) and abs(precise["accuracy"] - accuracy) <= 2 / SAMPLE_TEST
    batch = eval_json(run, "--stats", "batch", "--batch-size", 2)
    assert batch["accuracy"] <= record["accuracy"] - 0.2


# 3b. PreciseBN for batch renorm (issue 23, reproduction 4): the layer keeps an average of
# sigma_B itself (Ioffe 2017, Algorithm 1), so precise statistics must too.

RENORM = {"model.norm.kind": "batch_renorm", "model.norm.renorm_warmup_steps": 50, "model.norm.r_max_ramp_steps": 100,
          "model.norm.d_max_ramp_steps": 100, "train.batch_size": 4, "train.steps": 300, "train.eval_every": 300}


@pytest.fixture(scope="module")
def renorm_run(tmp_path_factory) -> Path:
    """Batch renorm at batch 4, past its warm-up and ramps: r and d clip at 3 and 5."""
    return train_run(tmp_path_factory.mktemp("renorm"), RENORM)


def numpy_renorm_precise(w: dict, eps: float, images: np.ndarray, m: int, r_max=3.0, d_max=5.0):
    """Training-mode Dense → renorm → relu over consecutive batches of m, r and d from the
    checkpoint's moving statistics (Ioffe 2017, Algorithm 1); returns, per layer, the average
    batch mean and the average sigma_B = sqrt(biased variance + ε), stored as sigma² − ε."""
    layers = sorted({k.split("/")[0] for k in w if k.startswith("norm_")})
    means, sigmas = [[] for _ in layers], [[] for _ in layers]
    for b in range(len(images) // m):
        h = images[b * m:(b + 1) * m].reshape(m, -1).astype(np.float64) / 255.0
        for i in range(len(layers)):
            z = h @ w[f"dense_{i}/kernel"]
            mu_b, sigma_b = z.mean(0), np.sqrt(z.var(0) + eps)
            sigma = np.sqrt(w[f"norm_{i}/moving_variance"] + eps)
            r = np.clip(sigma_b / sigma, 1 / r_max, r_max)
            d = np.clip((mu_b - w[f"norm_{i}/moving_mean"]) / sigma, -d_max, d_max)
            means[i].append(mu_b)
            sigmas[i].append(sigma_b)
            h = np.maximum(((z - mu_b) / sigma_b * r + d) * w[f"norm_{i}/gamma"] + w[f"norm_{i}/beta"], 0.0)
    return [(np.mean(mu, axis=0), np.mean(s, axis=0) ** 2 - eps) for mu, s in zip(means, sigmas)]


def test_precise_statistics_of_batch_renorm_average_sigma_b_as_the_layer_does(renorm_run):
    from bnexp.evaluate import load_model, precise_statistics
    from bnexp.rundir import RunDir

    config = RunDir(renorm_run).read_config()
    assert config.model.norm.moving_average == "sigma"
    model, _ = load_model(RunDir(renorm_run), config)
    images = sample()["x_train"][:1002]  # 250 batches of 4; the last 2 are dropped
    got = precise_statistics(model, images, 4)
    w = weights(renorm_run)
    want = numpy_renorm_precise(w, epsilon(renorm_run), images, 4)
    assert len(got) == len(want) == 2
    for (mean, stored), (e, v) in zip(got, want):
        np.testing.assert_allclose(mean, e, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(stored, v, rtol=1e-4, atol=1e-7)
    # Algorithm 2's population variance of the first layer's input (what was written before) is
    # another, larger number at m = 4: E[sigma_B]² < m/(m−1) · E[sigma_B²] (Jensen, and the correction)
    [(_, population), _] = numpy_precise(w, epsilon(renorm_run), images, 4)
    assert np.mean(population) > 1.3 * np.mean(got[0][1])


def test_precise_eval_of_batch_renorm_matches_numpy_and_stays_near_the_moving_statistics(renorm_run, tmp_path):
    run = copy_run(renorm_run, tmp_path / "run")
    records = eval_json(run, "--stats", "all", "--precise-examples", SAMPLE_TRAIN)
    data, w, eps = sample(), weights(run), epsilon(run)
    statistics = numpy_renorm_precise(w, eps, data["x_train"], 4)
    loss, accuracy = loss_and_accuracy(forward(w, eps, data["x_test"], statistics), data["y_test"].astype(np.int64))
    assert records["precise"]["loss"] == pytest.approx(loss, rel=1e-4)
    assert abs(records["precise"]["accuracy"] - accuracy) <= 2 / SAMPLE_TEST
    assert records["precise"]["accuracy"] >= records["moving"]["accuracy"] - 0.03


@pytest.fixture(scope="module")
def layer_run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("layer"), {"model.norm.kind": "layer", "model.hidden": [8], "train.steps": 20})


def test_stats_all_on_a_norm_without_batch_statistics_says_not_applicable_and_exits_0(layer_run, tmp_path):
    run = copy_run(layer_run, tmp_path / "run")
    result = run_eval(run, "--stats", "all")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("not applicable") >= 2 * 12  # batch and precise: accuracy, loss, ten classes
    records = eval_json(run, "--stats", "all")
    assert records["moving"]["accuracy"] == summary(run)["test_accuracy"]
    assert [records[s]["applicable"] for s in ("batch", "precise")] == [False, False]
    assert "not applicable: --stats batch needs layers with batch statistics" in records["batch"]["notes"][0]
    assert set(json.loads((run / "eval.json").read_text())) == {"moving/test"}  # nothing made up is recorded
    assert_one_line_error(run_eval(run, "--stats", "precise"), 2, "model.norm.kind=layer")
