"""Issue 13's features end to end through `bnexp train` on the bundled sample: dropout, weight
decay, BN-only training and its control, noisy BN, Santurkar et al.'s measurements,
`bnexp eval --stats all` and extending a finished run. The layers and measures themselves
are tested against independent computations in test_stochastic, test_regularize and
test_landscape; these tests check the wiring with values, not just that files appear."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_train import TINY, metrics_without_timing, train, write_config
from typer.testing import CliRunner

from bnexp import rundir
from bnexp.cli import app
from bnexp.config import load_config

FEATURES = Path(__file__).resolve().parents[1] / "configs" / "features"
SHORT = ["--set", "train.epochs=1", "--set", "train.eval_every=50"]  # 100 steps of the sample's 5,000 at batch 50


def checkpoint(run: Path) -> dict:
    with np.load(run / "checkpoint.npz") as f:
        return {name: f[name] for name in f.files if name != "state"}


def initial_weights(run: Path) -> dict:
    """The weights a fresh model of the run's config and seed starts from, by checkpoint name."""
    from bnexp.model import build_model

    config = rundir.RunDir(run).read_config()
    return {name: v.numpy() for name, v in rundir.model_variables(build_model(config.model, config.seed)).items()}


def trained(tmp_path: Path, config: str, *extra: str) -> Path:
    result = train(FEATURES / config, *SHORT, *extra, "--run-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    return tmp_path / "run"


@pytest.mark.parametrize("name, expected", [
    ("dropout.yaml", {"model.dropout.rate": 0.3, "model.dropout.input_rate": 0.2}),
    ("weight_decay.yaml", {"train.weight_decay": 5e-4}),
    ("bn_only.yaml", {"train.trainable": "norm"}),
    ("bn_only_control.yaml", {"train.trainable": "random_weights"}),
    ("noisy_bn.yaml", {"model.norm.noise.scale": 0.5}),
    ("santurkar_measures.yaml", {"diagnostics.ics": True, "diagnostics.landscape": True}),
])
def test_each_feature_config_turns_its_feature_on(name, expected):
    from bnexp.config import flatten

    values = flatten(load_config(FEATURES / name).model_dump())
    assert {key: values[key] for key in expected} == expected


def test_dropout_run_draws_at_every_training_step_and_never_in_evaluation(tmp_path):
    run = trained(tmp_path, "dropout.yaml")
    weights = checkpoint(run)
    counters = {name: int(value) for name, value in weights.items() if name.endswith("/step")}
    # One draw per training step in each dropout layer; the two evaluations and eval drew none.
    assert counters == {"model/mlp/dropout_input/step": 100, "model/mlp/dropout_0/step": 100, "model/mlp/dropout_1/step": 100}
    summary = json.loads((run / "summary.json").read_text())
    result = CliRunner().invoke(app, ["eval", str(run), "--json"])
    assert json.loads(result.output)["accuracy"] == summary["test_accuracy"] > 0.5


def test_dropout_last_sits_only_after_the_last_hidden_block(tmp_path):
    run = trained(tmp_path, "dropout.yaml", "--set", "model.dropout.layers=last", "--set", "model.dropout.input_rate=0")
    assert sorted(n for n in checkpoint(run) if n.endswith("/step")) == ["model/mlp/dropout_1/step"]


def test_weight_decay_adds_lambda_w_to_one_sgd_step(tmp_path):
    """One plain SGD step with and without λ from the same start: the kernels differ by
    exactly −η·λ·W₀ (the penalty's gradient, closed form); nothing else differs."""
    runs = {}
    for decay in (0.0, 0.5):
        config = write_config(tmp_path, {"train.optimizer": "sgd", "train.steps": 1, "train.eval_every": 1,
                                         "train.weight_decay": decay}, f"wd{decay}.yaml")
        assert train(config, "--run-dir", tmp_path / f"wd{decay}").exit_code == 0
        runs[decay] = checkpoint(tmp_path / f"wd{decay}")
    start = initial_weights(tmp_path / "wd0.5")
    eta = TINY["train"]["learning_rate"]
    for name, plain in runs[0.0].items():
        if not name.startswith("model/"):
            continue
        expected = plain - eta * 0.5 * start[name] if name.endswith("/kernel") else plain
        np.testing.assert_allclose(runs[0.5][name], expected, rtol=1e-5, atol=1e-7, err_msg=name)
    assert any(not np.array_equal(runs[0.5][n], runs[0.0][n]) for n in runs[0.0] if n.endswith("/kernel"))


def test_bn_only_training_keeps_every_other_weight_bit_identical(tmp_path):
    run = trained(tmp_path, "bn_only.yaml")
    start, end = initial_weights(run), checkpoint(run)
    for name, value in start.items():
        if name.endswith(("/gamma", "/beta")):
            assert not np.array_equal(end[name], value), f"{name} did not train"
        elif not name.endswith(("/moving_mean", "/moving_variance")):
            assert np.array_equal(end[name], value), f"{name} changed"  # the output layer's too
    assert json.loads((run / "summary.json").read_text())["test_accuracy"] > 0.3


def test_random_weights_control_trains_exactly_its_chosen_kernel_weights(tmp_path):
    from bnexp.model import build_model
    from bnexp.regularize import random_kernel_masks

    run = trained(tmp_path, "bn_only_control.yaml")
    config = rundir.RunDir(run).read_config()
    model = build_model(config.model, config.seed)
    masks = {f"model/{v.path}": m for v, m in random_kernel_masks(model, config.seed)}
    start, end = initial_weights(run), checkpoint(run)
    for name, value in start.items():
        if name in masks:
            chosen = masks[name].astype(bool)
            assert np.array_equal(end[name][~chosen], value[~chosen]), name
            # Most chosen weights moved (not all: some of dense_0's sit on pixels that are 0 in every image).
            assert (end[name][chosen] != value[chosen]).mean() > 0.75, name
            assert chosen.sum() == 2 * value.shape[1]  # as many as γ and β of its layer
        elif not name.endswith(("/moving_mean", "/moving_variance")):
            assert np.array_equal(end[name], value), f"{name} changed"


@pytest.mark.long
def test_noisy_bn_perturbs_training_only(tmp_path):
    run = trained(tmp_path, "noisy_bn.yaml")
    weights = checkpoint(run)
    assert {n: int(v) for n, v in weights.items() if n.endswith("/step")} == {
        "model/mlp/noise_0/step": 100, "model/mlp/noise_1/step": 100}
    plain = trained(tmp_path / "plain", "noisy_bn.yaml", "--set", "model.norm.noise.scale=0")
    noisy, quiet = (rundir.RunDir(r).read_metrics() for r in (run, plain))
    assert [r["train_loss"] for r in noisy] != [r["train_loss"] for r in quiet]  # the noise reached training
    # Evaluation sees the trained network without noise: eval reproduces the summary.
    summary = json.loads((run / "summary.json").read_text())
    result = CliRunner().invoke(app, ["eval", str(run), "--json"])
    assert json.loads(result.output)["accuracy"] == summary["test_accuracy"]


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("measured")
    result = train(FEATURES / "santurkar_measures.yaml", *SHORT, "--run-dir", tmp / "run")
    assert result.exit_code == 0, result.output
    return tmp / "run"


def test_ics_and_landscape_tables_have_one_sane_entry_per_evaluation(measured):
    run = rundir.RunDir(measured)
    ics, landscape = run.read_diagnostics("ics"), run.read_diagnostics("landscape")
    assert [(r["step"], r["layer"]) for r in ics] == [(s, layer) for s in (50, 100) for layer in (0, 1, 2)]
    for r in ics:
        if r["layer"] == 0:  # no layer before the first: no shift, by definition
            assert (r["ics_l2"], r["ics_cosine"]) == (0.0, pytest.approx(1.0))
        else:
            assert r["ics_l2"] > 0 and -1 <= r["ics_cosine"] <= 1 + 1e-9
    assert [r["step"] for r in landscape] == [50, 100]
    for r in landscape:
        assert 0 < r["loss_min"] <= r["loss_max"] < 10 and r["grad_change_max"] > 0 and r["beta_smoothness"] > 0
    assert not run.has_diagnostics("activations")  # diagnostics.enabled is separate


def test_landscape_row_is_the_measure_of_the_final_model_on_the_last_batch(measured):
    """Recompute the last row from the checkpoint, the last training batch and the run's rate."""
    import tensorflow as tf

    from bnexp.data import load
    from bnexp.evaluate import load_model
    from bnexp.landscape import loss_landscape
    from bnexp.regularize import Objective
    from bnexp.training import epoch_order

    run = rundir.RunDir(measured)
    config = run.read_config()
    model, step = load_model(run, config)
    data = load("mnist-sample")
    batch = epoch_order(config.seed, 0, len(data.x_train))[(step - 1) * 50:step * 50]
    objective = Objective.of(model, config.train, config.seed)
    expected = loss_landscape(model, objective.loss, tf.constant(data.x_train[batch]), tf.constant(data.y_train[batch].astype(np.int32)),
                              config.train.learning_rate, objective.variables, objective.masks)
    row = run.read_diagnostics("landscape")[-1]
    assert {k: row[k] for k in expected} == pytest.approx(expected, rel=1e-4)


def test_ics_and_landscape_reach_tensorboard(measured):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(measured / "tb"))
    events.Reload()
    rows = rundir.RunDir(measured).read_diagnostics("landscape")
    assert [(e.step, e.value) for e in events.Scalars("landscape/beta_smoothness")] == [
        (r["step"], pytest.approx(r["beta_smoothness"], rel=1e-6)) for r in rows]
    assert "ics/layer2/l2" in events.Tags()["scalars"]


def test_eval_stats_all_is_the_three_single_sources_side_by_side(measured):
    def evaluate(*args):
        result = CliRunner().invoke(app, ["eval", str(measured), *args])
        assert result.exit_code == 0, result.output
        return result.output

    both = json.loads(evaluate("--stats", "all", "--json"))
    assert list(both) == ["moving", "batch", "precise"]
    for source, record in both.items():
        alone = json.loads(evaluate("--stats", source, "--json"))
        assert {k: v for k, v in record.items() if k != "evaluated_at"} == {k: v for k, v in alone.items() if k != "evaluated_at"}
    assert both["batch"]["batch_size"] == 50  # the training batch size
    table = evaluate("--stats", "all")
    assert "moving" in table and "batch (batch size 50)" in table and "precise" in table
    assert f"{both['precise']['accuracy']:.4f}" in table


# --- extending a finished run ------------------------------------------------------------------


def extension_matches(tmp_path: Path, old_steps: int, epochs: int, settings: dict) -> None:
    config = write_config(tmp_path, {"train.eval_every": 50, **settings})
    assert train(config, "--set", f"train.steps={old_steps}", "--run-dir", tmp_path / "extended").exit_code == 0
    result = train("--resume", tmp_path / "extended", "--set", f"train.epochs={epochs}")
    assert result.exit_code == 0, result.output
    assert train(config, "--set", f"train.epochs={epochs}", "--run-dir", tmp_path / "reference").exit_code == 0
    assert metrics_without_timing(tmp_path / "extended") == metrics_without_timing(tmp_path / "reference")
    summaries = [json.loads((tmp_path / r / "summary.json").read_text()) for r in ("extended", "reference")]
    for key in ("status", "steps", "total_steps", "test_accuracy", "best_test_accuracy", "best_step"):
        assert summaries[0][key] == summaries[1][key], key
    assert load_config(tmp_path / "extended" / "config.yaml") == load_config(tmp_path / "reference" / "config.yaml")


@pytest.mark.long
def test_extending_from_an_epoch_boundary_ends_as_the_longer_run(tmp_path):
    extension_matches(tmp_path, 100, 2, {})


@pytest.mark.long
def test_extending_from_the_middle_of_an_epoch_drops_the_old_end_row(tmp_path):
    """Step 120 is neither an epoch end nor an evaluation of the 2-epoch run: its row goes, and
    the row at 150 averages steps 100 to 150 as the longer run's does."""
    extension_matches(tmp_path, 120, 2, {"diagnostics.landscape": True})
    assert [r["step"] for r in rundir.RunDir(tmp_path / "extended").read_diagnostics("landscape")] == [50, 100, 150, 200]


def test_a_run_without_unrolling_extends_from_any_step(tmp_path):
    extension_matches(tmp_path, 130, 2, {"train.unroll": 1})


@pytest.mark.long
def test_a_run_that_ended_off_the_unroll_grid_extends_from_its_tail_checkpoint(tmp_path):
    """250 steps with unroll 4 and evaluations every 100: the last call, 200 → 250, ran 48
    steps unrolled and 2 alone, where a 450-step run runs 200 → 300 unrolled. The run kept a
    checkpoint at 200; the extension replays 200 → 250 from it and ends bit for bit as the
    450-step run made here."""
    config = write_config(tmp_path, {"train.eval_every": 100, "train.unroll": 4})
    assert train(config, "--set", "train.steps=250", "--run-dir", tmp_path / "extended").exit_code == 0
    tail = rundir.RunDir(tmp_path / "extended").load_checkpoint(tail=True)
    assert tail.step == 200
    result = train("--resume", tmp_path / "extended", "--set", "train.steps=450")
    assert result.exit_code == 0, result.output
    assert train(config, "--set", "train.steps=450", "--run-dir", tmp_path / "reference").exit_code == 0
    assert metrics_without_timing(tmp_path / "extended") == metrics_without_timing(tmp_path / "reference")
    extended, reference = (rundir.RunDir(tmp_path / r).load_checkpoint() for r in ("extended", "reference"))
    assert extended.arrays.keys() == reference.arrays.keys()
    assert [k for k in reference.arrays if k != "state" and not np.array_equal(extended.arrays[k], reference.arrays[k])] == []
    timing = {"elapsed", "train_seconds", "epoch_seconds", "sessions"}  # of the sessions, not the training
    assert {k: v for k, v in extended.state.items() if k not in timing} == {
        k: v for k, v in reference.state.items() if k not in timing}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    config = write_config(tmp, {"train.steps": 130, "train.eval_every": 50})
    assert train(config, "--run-dir", tmp / "run").exit_code == 0
    return tmp / "run"


@pytest.mark.parametrize("args, says", [
    (["--set", "train.learning_rate=0.1"], "only --set train.epochs=N or train.steps=N"),
    (["--set", "train.epochs=3", "--set", "seed=2"], "not 'seed'"),
    (["--set", "train.steps=130"], "extending needs more than 130"),
    (["--set", "train.steps=300"], "no checkpoint at step 100 to replay them from"),
])
def test_extensions_that_cannot_end_identically_are_refused_in_one_line(finished, args, says, tmp_path):
    """The last case: a run of bnexp 0.1 ended off the unroll grid without a tail checkpoint."""
    finished = Path(shutil.copytree(finished, tmp_path / "run"))
    (finished / rundir.TAIL_CHECKPOINT).unlink()
    before = {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()}
    result = train("--resume", finished, *args)
    assert result.exit_code == 2 and says in result.output and len(result.output.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in finished.iterdir() if p.is_file()} == before


def test_a_cosine_schedule_cannot_be_extended(tmp_path):
    config = write_config(tmp_path, {"train.steps": 100, "train.schedule": {"kind": "cosine"}})
    assert train(config, "--run-dir", tmp_path / "r").exit_code == 0
    result = train("--resume", tmp_path / "r", "--set", "train.epochs=2")
    assert result.exit_code == 2 and "cosine" in result.output
