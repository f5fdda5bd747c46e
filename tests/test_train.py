"""bnexp train end to end on the bundled sample: the run directory, determinism, resume,
interrupts, divergence and hostile input. Each run is small (a few seconds)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import HANG_GUARD_SECONDS
import yaml
from typer.testing import CliRunner

from bnexp import rundir
from bnexp.cli import app
from bnexp.config import load_config

TINY = {
    "name": "tiny",
    "seed": 3,
    "data": {"dataset": "mnist-sample"},
    "model": {"hidden": [32, 16], "activation": "relu", "norm": {"kind": "batch", "momentum": 0.9}},
    "train": {"optimizer": "momentum", "learning_rate": 0.05, "batch_size": 50, "steps": 300, "eval_every": 100},
}


def write_config(tmp_path: Path, overrides: dict | None = None, name: str = "config.yaml", base: dict = TINY) -> Path:
    """Write `base` with dotted-key `overrides` applied as a config file; return its path."""
    config = json.loads(json.dumps(base))
    for key, value in (overrides or {}).items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def assert_config_error(tmp_path: Path, overrides: dict, named: str) -> None:
    """A config error: exit 2, one line naming `named`, and no run directory made."""
    result = train(write_config(tmp_path, overrides), "--run-dir", tmp_path / "r")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.output
    assert not (tmp_path / "r").exists()


def train(*args: str):
    return CliRunner().invoke(app, ["train", *map(str, args), "--quiet"])


def metrics_without_timing(run: Path) -> list[list[str]]:
    lines = (run / rundir.METRICS).read_text().splitlines()
    elapsed = lines[0].split(",").index("elapsed_s")
    return [[cell for i, cell in enumerate(line.split(",")) if i != elapsed] for line in lines]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One completed tiny run, shared by the read-only tests."""
    tmp = tmp_path_factory.mktemp("finished")
    result = train(write_config(tmp), "--run-dir", tmp / "run")
    assert result.exit_code == 0, result.output
    return tmp / "run"


def test_run_directory_holds_every_promised_file(finished_run):
    names = {p.name for p in finished_run.iterdir()}
    assert {"config.yaml", "metrics.csv", "summary.json", "log.txt", "checkpoint.npz"} <= names
    summary = json.loads((finished_run / "summary.json").read_text())
    for key in ("status", "test_accuracy", "test_loss", "best_test_accuracy", "steps", "epochs",
                "seconds_per_epoch", "examples_per_second", "wall_seconds", "train_seconds", "seed",
                "versions", "host", "started_at", "ended_at", "git_commit"):
        assert key in summary
    assert summary["status"] == "completed"
    assert summary["steps"] == 300 and summary["epochs"] == pytest.approx(3.0)
    assert set(summary["versions"]) == {"python", "tensorflow", "keras", "numpy", "bnexp"}
    assert 0.5 < summary["test_accuracy"] <= 1.0


def test_metrics_rows_are_evaluations_with_fractions(finished_run):
    rows = rundir.RunDir(finished_run).read_metrics()
    assert [r["step"] for r in rows] == [100, 200, 300]
    assert [r["epoch"] for r in rows] == [1.0, 2.0, 3.0]
    for row in rows:
        assert 0 <= row["train_accuracy"] <= 1 and 0 <= row["test_accuracy"] <= 1
        assert row["learning_rate"] == pytest.approx(0.05)
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["test_accuracy"] == rows[-1]["test_accuracy"]
    assert summary["best_test_accuracy"] == max(r["test_accuracy"] for r in rows)


def test_saved_config_is_fully_resolved_and_reloads(finished_run, tmp_path):
    saved = load_config(finished_run / "config.yaml")
    assert saved.train.steps == 300 and saved.train.epochs is None
    assert saved.model.norm.epsilon == 1e-3  # a default, written out
    assert saved == load_config(write_config(tmp_path))


def test_log_records_every_evaluation(finished_run):
    log = (finished_run / "log.txt").read_text()
    assert log.count(" test loss ") == 3 and "completed" in log


def test_same_seed_gives_byte_identical_metrics(finished_run, tmp_path):
    assert train(write_config(tmp_path), "--run-dir", tmp_path / "again").exit_code == 0
    assert metrics_without_timing(tmp_path / "again") == metrics_without_timing(finished_run)


def test_batch_and_keras_norm_follow_the_same_curve(tmp_path):
    """Same seed: identical initial weights and batch order, and BN maths equal to 1e-5."""
    for kind in ("batch", "keras"):
        config = write_config(tmp_path, {"model.norm.kind": kind, "train.steps": 100}, f"{kind}.yaml")
        assert train(config, "--run-dir", tmp_path / kind).exit_code == 0
    ours, theirs = (rundir.RunDir(tmp_path / kind).read_metrics()[0] for kind in ("batch", "keras"))
    assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
    assert ours["test_loss"] == pytest.approx(theirs["test_loss"], rel=1e-3)
    assert abs(ours["test_accuracy"] - theirs["test_accuracy"]) <= 0.003


def test_set_overrides_and_prints_run_path(tmp_path):
    result = train(write_config(tmp_path), "--set", "train.epochs=1", "--set", "model.hidden=[8]", "--run-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(tmp_path / "r")
    saved = load_config(tmp_path / "r" / "config.yaml")
    assert saved.train.epochs == 1 and saved.train.steps is None and saved.model.hidden == [8]


def test_default_run_directory_is_name_and_timestamp(tmp_path, monkeypatch):
    monkeypatch.setenv("BNEXP_RUNS_DIR", str(tmp_path / "runs"))
    config = write_config(tmp_path, {"train.steps": 20, "train.eval_every": 20})
    assert train(config).exit_code == 0 and train(config).exit_code == 0
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 2 and all(r.name.startswith("tiny-") for r in runs)  # never the same directory


@pytest.mark.parametrize("override, key", [
    (["--set", "model.norm.momentum=1.5"], "model.norm.momentum"),
    (["--set", "train.learnng_rate=0.1"], "train.learning_rate"),
    (["--set", "train.batch_size=0"], "train.batch_size"),
    (["--set", "model.hidden=[]"], "model.hidden"),
])
def test_bad_config_exits_2_with_one_line_and_no_run_directory(tmp_path, monkeypatch, override, key):
    monkeypatch.setenv("BNEXP_RUNS_DIR", str(tmp_path / "runs"))
    result = train(write_config(tmp_path), *override)
    assert result.exit_code == 2
    assert key in result.output and len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_missing_data_dir_exits_1_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BNEXP_RUNS_DIR", str(tmp_path / "runs"))
    config = write_config(tmp_path, {"data.dataset": "mnist"})
    result = train(config, "--data-dir", tmp_path / "nowhere")
    assert result.exit_code == 1 and "nowhere" in result.output
    assert not (tmp_path / "runs").exists()


def test_run_dir_that_holds_a_run_is_refused(finished_run, tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in finished_run.iterdir()}
    result = train(write_config(tmp_path), "--run-dir", finished_run)
    assert result.exit_code == 2 and "--resume" in result.output
    assert {p.name: p.stat().st_mtime_ns for p in finished_run.iterdir()} == before


def test_run_dir_locked_by_another_process_is_refused(tmp_path):
    (tmp_path / "busy").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from bnexp.rundir import RunDir; r = RunDir(sys.argv[1]); r.lock(); "
        "print('locked', flush=True); time.sleep(30)"), str(tmp_path / "busy")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = train(write_config(tmp_path), "--run-dir", tmp_path / "busy")
        assert result.exit_code == 2 and "in use by another bnexp process" in result.output
    finally:
        holder.kill()
        holder.wait()


def test_unwritable_output_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = train(write_config(tmp_path), "--run-dir", blocker / "run")
    assert result.exit_code == 2 and "cannot create run directory" in result.output


def test_divergence_stops_with_status_diverged_and_exit_1(tmp_path):
    config = write_config(tmp_path, {
        "model.norm.kind": "none", "model.activation": "linear", "model.init": {"kind": "normal", "std": 1.0},
        "train.optimizer": "sgd", "train.learning_rate": 10.0,
    })
    result = train(config, "--run-dir", tmp_path / "r")
    assert result.exit_code == 1
    assert "diverged at step" in result.output and "learning_rate" in result.output
    lines = sorted(result.output.strip().splitlines())  # stdout: the run directory; stderr: one error line
    assert len(lines) == 2 and lines[0] == str(tmp_path / "r") and lines[1].startswith("error: training diverged")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "diverged" and "diverged at step" in summary["message"]
    assert (tmp_path / "r" / "metrics.csv").read_text().startswith("step,")  # metrics kept


def interrupt_at(monkeypatch, step: int, signum: int) -> None:
    """Send `signum` to this process once training passes `step` (as a user's Ctrl-C would)."""
    from bnexp.present.training import TrainDisplay

    def progress(self, at, *args):
        if at >= step and not getattr(self, "sent", False):
            self.sent = True
            os.kill(os.getpid(), signum)

    monkeypatch.setattr(TrainDisplay, "progress", progress)


@pytest.fixture(scope="module")
def long_interval(tmp_path_factory) -> tuple[Path, Path]:
    """A config whose step 200 is a progress boundary but no evaluation (500 steps an epoch),
    so an interrupt there leaves running means half-accumulated; and its uninterrupted run."""
    tmp = tmp_path_factory.mktemp("interval")
    config = write_config(tmp, {"train.batch_size": 10, "train.steps": 300, "train.eval_every": 300})
    assert train(config, "--run-dir", tmp / "reference").exit_code == 0
    return config, tmp / "reference"


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_saves_checkpoint_and_resume_matches_uninterrupted(long_interval, tmp_path, monkeypatch, signum, code):
    config, reference = long_interval
    interrupt_at(monkeypatch, 150, signum)
    result = train(config, "--run-dir", tmp_path / "r")
    assert result.exit_code == code, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == 200
    assert signal.Signals(signum).name in summary["message"]
    assert rundir.RunDir(tmp_path / "r").read_metrics() == []  # no evaluation was due yet
    monkeypatch.undo()
    result = train("--resume", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["status"] == "completed"
    assert metrics_without_timing(tmp_path / "r") == metrics_without_timing(reference)


@pytest.mark.long
def test_resume_after_kill_9_replaces_rows_after_the_checkpoint(finished_run, tmp_path):
    config = write_config(tmp_path, {"train.steps": 3000, "train.eval_every": 50, "train.checkpoint_every": 100})
    run = tmp_path / "r"
    process = subprocess.Popen([sys.executable, "-m", "bnexp", "train", str(config), "--run-dir", str(run), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + HANG_GUARD_SECONDS
        while time.time() < deadline and len(rundir.RunDir(run).read_metrics() if (run / "metrics.csv").exists() else []) < 5:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert json.loads((run / "summary.json").read_text())["status"] == "running"
    # Pretend the kill tore the last line mid-write: resume must cope.
    with open(run / "metrics.csv", "a") as f:
        f.write("999,9.9,0.1")
    result = train("--resume", run)
    assert result.exit_code == 0, result.output
    steps = [r["step"] for r in rundir.RunDir(run).read_metrics()]
    assert steps == list(range(50, 3001, 50))  # no duplicates, none missing, the torn row gone
    reference = tmp_path / "reference"
    assert train(config, "--run-dir", reference).exit_code == 0
    assert metrics_without_timing(run) == metrics_without_timing(reference)


def test_resume_refuses_set_and_completed_runs(finished_run):
    assert train("--resume", finished_run, "--set", "seed=1").exit_code == 2
    result = train("--resume", finished_run)
    assert result.exit_code == 2 and "already completed" in result.output


def test_tensorboard_events_hold_every_metrics_row(finished_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(finished_run / "tb"))
    events.Reload()
    rows = rundir.RunDir(finished_run).read_metrics()
    for tag, column in [("test/accuracy", "test_accuracy"), ("train/loss", "train_loss"), ("learning_rate", "learning_rate")]:
        logged = [(e.step, e.value) for e in events.Scalars(tag)]
        assert [step for step, _ in logged] == [r["step"] for r in rows]
        assert [value for _, value in logged] == pytest.approx([r[column] for r in rows], rel=1e-6)


@pytest.mark.long
@pytest.mark.mnist
@pytest.mark.slow
def test_mnist_bn_config_reaches_98_percent_on_full_mnist(mnist_dir, tmp_path):
    config = Path(__file__).resolve().parent.parent / "configs" / "mnist_bn.yaml"
    result = train(config, "--data-dir", mnist_dir, "--run-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["data"]["train_examples"] == 60000 and summary["data"]["test_examples"] == 10000
    assert summary["test_accuracy"] >= 0.98


@pytest.mark.parametrize("content, says", [
    (b"name: [unclosed", "not valid YAML"),
    (b"", "the file is empty"),
    (bytes(range(256)) * 4, "not a text file"),
    (b"- just\n- a list\n", "a config is a YAML mapping"),
    (b"model:\n  hidden: [1000000000]\n", "model.hidden"),
    (b"train:\n  epochs: 1000000000000\n", "train.epochs"),
])
def test_hostile_config_files_exit_2_with_one_line_and_touch_nothing(tmp_path, monkeypatch, finished_run, content, says):
    monkeypatch.setenv("BNEXP_RUNS_DIR", str(tmp_path / "runs"))
    before = {p.name: p.stat().st_mtime_ns for p in finished_run.iterdir()}
    (tmp_path / "bad.yaml").write_bytes(content)
    result = train(tmp_path / "bad.yaml")
    assert result.exit_code == 2 and says in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()
    assert {p.name: p.stat().st_mtime_ns for p in finished_run.iterdir()} == before


def test_corrupt_dataset_file_exits_1_naming_it_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("BNEXP_RUNS_DIR", str(tmp_path / "runs"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist.npz").write_bytes(b"PK\x03\x04 truncated zip")
    result = train(write_config(tmp_path, {"data.dataset": "mnist"}), "--data-dir", data)
    assert result.exit_code == 1 and "mnist.npz" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


# --- the train-test gap, and divergence above train.divergence_loss (issue 12) ----------------


def test_train_subset_depends_on_the_dataset_size_only():
    from bnexp.training import train_subset

    subset = train_subset(60_000, 10_000)
    assert len(subset) == len(set(subset)) == 10_000 and list(subset) == sorted(subset)
    assert subset.max() < 60_000 and (subset == train_subset(60_000, 10_000)).all()  # no seed in it
    assert set(train_subset(60_000, 1_000)) <= set(subset)  # a smaller subset is part of a larger one
    assert list(train_subset(5_000, 10_000)) == list(range(5_000))  # more than there are: all of them
    assert len(train_subset(5_000, 0)) == 0


def test_train_set_columns_are_the_inference_mode_result_on_the_fixed_subset(tmp_path):
    """metrics.csv and summary.json against a NumPy re-computation from the saved weights."""
    import numpy as np

    from bnexp.data import load
    from bnexp.evaluate import load_model
    from bnexp.model import pixels
    from bnexp.training import train_subset

    config = write_config(tmp_path, {"train.steps": 100, "train.eval_train_examples": 1000})
    assert train(config, "--run-dir", tmp_path / "r").exit_code == 0
    run = rundir.RunDir(tmp_path / "r")
    assert {"train_set_loss", "train_set_accuracy"} <= set((tmp_path / "r" / "metrics.csv").read_text().split("\n")[0].split(","))
    [row] = run.read_metrics()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    model, _ = load_model(run, run.read_config())
    data = load("mnist-sample", None)
    subset = train_subset(len(data.x_train), 1000)
    logits = np.asarray(model(pixels(data.x_train[subset]), training=False), dtype=np.float64)
    labels = data.y_train[subset]
    accuracy = float(np.mean(logits.argmax(axis=1) == labels))
    shifted = logits - logits.max(axis=1, keepdims=True)
    loss = float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]))
    assert row["train_set_accuracy"] == summary["train_set_accuracy"] == accuracy
    assert row["train_set_loss"] == pytest.approx(loss, rel=1e-5) and summary["train_set_loss"] == row["train_set_loss"]
    assert summary["generalization_gap"] == summary["train_set_accuracy"] - summary["test_accuracy"]
    assert row["train_accuracy"] != row["train_set_accuracy"]  # the running training-mode mean is another number


def test_eval_train_examples_zero_leaves_the_train_set_empty(tmp_path):
    config = write_config(tmp_path, {"train.steps": 100, "train.eval_train_examples": 0})
    assert train(config, "--run-dir", tmp_path / "r").exit_code == 0
    [row] = rundir.RunDir(tmp_path / "r").read_metrics()
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert row["train_set_accuracy"] is None and row["train_set_loss"] is None
    assert summary["generalization_gap"] is None and summary["test_accuracy"] is not None


QUICKSTART = Path(__file__).resolve().parents[1] / "configs" / "quickstart.yaml"


@pytest.mark.parametrize("learning_rate", [3, 10])
def test_the_no_bn_quickstart_diverges_at_learning_rates_3_and_10(tmp_path, learning_rate):
    """Its loss explodes (to 1.5e7 and 5.6e11, docs/reference.md) without ever becoming NaN: the limit catches it."""
    result = CliRunner().invoke(app, ["train", str(QUICKSTART), "--set", "model.norm.kind=none", "--set",
                                      f"train.learning_rate={learning_rate}", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 1
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert re.fullmatch(r"training diverged at step \d+: the training loss reached [0-9.e+]+, above "
                        r"train.divergence_loss = 100; try a lower train.learning_rate \(now \d+\), "
                        rf"e.g. --set train.learning_rate={learning_rate / 10:g}", summary["message"])
    # Issue 23, reproduction 7: the run ends at the step its loss first crossed the limit,
    # and the message is printed once (the error line), not by the log and the table too.
    step = int(re.match(r"training diverged at step (\d+)", summary["message"]).group(1))
    assert summary["steps"] == step < 100 and summary["total_steps"] == 800
    assert result.output.count("diverged at step") == 1
    assert result.output.count(summary["message"]) == 1
    assert f"{step} / 800" in result.output


def test_a_run_that_learns_nothing_is_marked_failed_to_learn(tmp_path):
    """Issue 23, reproduction 6: a run that ends no better than always answering the most
    frequent test class (plus the rarest class's share) completes, marked failed to learn."""
    result = CliRunner().invoke(app, ["train", str(QUICKSTART), "--set", "model.norm.kind=none", "--set",
                                      "train.learning_rate=1e-6", "--set", "train.steps=20", "--set",
                                      "train.eval_every=20", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    with np.load(Path(__file__).resolve().parents[1] / "bnexp" / "sample" / "mnist_sample.npz") as sample:
        counts = np.bincount(sample["y_test"], minlength=10)
    assert summary["data"]["test_class_counts"] == counts.tolist()
    threshold = (counts.max() + counts.min()) / counts.sum()
    assert summary["status"] == "completed" and summary["test_accuracy"] <= threshold
    assert summary["failed_to_learn"] is True
    assert "failed to learn" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["batch", "none"])
@pytest.mark.parametrize("learning_rate", [0.1, 1.0])
def test_the_quickstart_completes_at_learning_rates_0_1_and_1_with_and_without_bn(tmp_path, kind, learning_rate):
    result = train(QUICKSTART, "--set", f"model.norm.kind={kind}", "--set", f"train.learning_rate={learning_rate}",
                   "--run-dir", tmp_path / "r")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 800
    assert summary["test_accuracy"] > 0.8


def test_a_multi_step_program_records_divergence_at_the_step_a_step_by_step_run_finds():
    """Trainer.record does the loop's bookkeeping once per compiled program, after its steps:
    the first bad step, the last finite loss and the sums must still be those of the steps
    one by one (the reference: single-step programs, read after every step)."""
    from bnexp import data as data_module
    from bnexp.training import Plan, Trainer

    config = load_config(QUICKSTART, ["model.norm.kind=none", "train.learning_rate=10"])
    data = data_module.load(config.data.dataset)
    plan = Plan.of(config, len(data.x_train))
    indices = (np.arange(200 * plan.batch_size) % len(data.x_train)).reshape(200, plan.batch_size)

    reference = Trainer(config, data, plan)
    losses, before = [], 0.0
    for row in indices:
        reference.run_steps(row[None])  # (1, batch): a single-step program
        total = float(reference.totals.numpy()[0])
        losses.append(total - before)
        before = total
    first_bad = next(i + 1 for i, loss in enumerate(losses) if not np.isfinite(loss) or loss > config.train.divergence_loss)
    assert 1 < first_bad < 200 and first_bad % config.train.unroll != 1  # inside a program, not at its start

    trainer = Trainer(config, data, plan)
    trainer.run_steps(indices)  # 50 programs of 4 steps
    assert int(trainer.first_bad_step.numpy()) == first_bad == int(reference.first_bad_step.numpy())
    assert float(trainer.last_finite_loss.numpy()) == float(reference.last_finite_loss.numpy())
    assert trainer.totals.numpy()[1] == reference.totals.numpy()[1]
