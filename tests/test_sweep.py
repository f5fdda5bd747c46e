"""bnexp sweep: the sweep file's schema, points and their directories, running them in
child processes (locally and through Ray), rerunning, failures and interrupts.

Every point is a tiny run on the bundled sample; each costs a child process's TensorFlow
import (several seconds), so the runs are few and shared where the tests only read them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HANG_GUARD_SECONDS
import yaml
from typer.testing import CliRunner

from bnexp import compare, rundir
from bnexp.cli import app
from bnexp.sweep import MANIFEST, fit, load_sweep, short_keys, value_slugs

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "name": "tiny",
    "data": {"dataset": "mnist-sample"},
    "model": {"hidden": [16], "norm": {"kind": "batch", "momentum": 0.9}},
    "train": {"optimizer": "momentum", "learning_rate": 0.05, "batch_size": 50, "steps": 40, "eval_every": 20},
}
MOMENTA = {"model.norm.momentum": [0.9, 0.99]}


def write_sweep(folder: Path, name: str = "study.yaml", **fields) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"base": TINY, **fields}, sort_keys=False))
    return path


def sweep(*args):
    return CliRunner().invoke(app, ["sweep", *map(str, args)])


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())


def summary(run: Path) -> dict:
    return json.loads((run / rundir.SUMMARY).read_text())


# --- the sweep file -------------------------------------------------------------------------


@pytest.mark.parametrize("fields, named", [
    ({"grdi": MOMENTA}, "unknown key 'grdi'; did you mean 'grid'?"),
    ({"grid": {"model.norm.momentm": [0.9]}}, "point momentm=0.9/seed=0: unknown key 'model.norm.momentm'"),
    ({"grid": {"model.norm.momentum": [0.9, 1.5]}}, "point momentum=1.5/seed=0: model.norm.momentum = 1.5"),
    ({"grid": {"train.batch_size": 8}}, "grid.train.batch_size = 8"),
    ({"grid": {"train.batch_size": []}}, "grid.train.batch_size"),
    ({"grid": {"train.batch_size": [8, 8]}}, "grid.train.batch_size [8, 8] lists a value twice"),
    ({"grid": {"seed": [1, 2]}}, "seeds are listed under 'seeds:'"),
    ({"seeds": [0, 0]}, "lists a seed twice"),
    ({"set": {"train.learning_rate": "fast"}}, "point seed=0: train.learning_rate = 'fast'"),
])
def test_bad_sweep_file_exits_2_with_one_line_naming_it_and_creates_nothing(tmp_path, fields, named):
    result = sweep(write_sweep(tmp_path, **fields), "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert named in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_points_cross_grid_values_and_seeds_in_file_order(tmp_path):
    path = write_sweep(tmp_path, grid={**MOMENTA, "train.batch_size": [8, 60]}, seeds=[0, 1])
    points = load_sweep(path, tmp_path / "out").points
    assert [p.run_dir for p in points] == [
        f"momentum={m},batch_size={b}/seed={s}" for m in (0.9, 0.99) for b in (8, 60) for s in (0, 1)]
    assert points[5].overrides == {"model.norm.momentum": 0.99, "train.batch_size": 8, "seed": 1}
    config = points[5].config
    assert (config.model.norm.momentum, config.train.batch_size, config.seed, config.model.hidden) == (0.99, 8, 1, [16])
    assert not (tmp_path / "out").exists()


def test_base_file_is_relative_to_the_sweep_file_and_set_applies_to_every_point(tmp_path, monkeypatch):
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "sweeps" / "base.yaml").write_text(yaml.safe_dump(TINY))
    path = tmp_path / "sweeps" / "s.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", "set": {"train.epochs": 1}, "seeds": [4, 5]}))
    monkeypatch.chdir(tmp_path)  # not the sweep file's folder
    sweep_ = load_sweep(path, tmp_path / "out")
    assert sweep_.name == "s"  # the file's stem, by default
    assert [p.run_dir for p in sweep_.points] == ["seed=4", "seed=5"]
    assert all(p.config.train.epochs == 1 and p.config.train.steps is None for p in sweep_.points)  # set epochs cleared steps


def test_directory_names_are_short_unique_and_file_name_safe():
    assert short_keys(["model.norm.momentum", "train.momentum", "train.batch_size"]) == {
        "model.norm.momentum": "norm.momentum", "train.momentum": "train.momentum", "train.batch_size": "batch_size"}
    assert value_slugs([[16], [16, 16], True, None, 1e-5]) == ["16", "16_16", "true", "null", "1e-05"]
    assert value_slugs(["a/b", "a b"]) == ["a_b_0", "a_b_1"]  # one spelling for both: numbered
    long_a, long_b = "k=" + "x" * 300 + "a", "k=" + "x" * 300 + "b"
    assert len(fit(long_a).encode()) <= 200 and fit(long_a) != fit(long_b)


def test_dry_run_lists_points_and_run_directories_and_creates_nothing(tmp_path):
    result = sweep(write_sweep(tmp_path, grid=MOMENTA, seeds=[0, 1]), "--out", tmp_path / "out", "--dry-run")
    assert result.exit_code == 0, result.output
    for run_dir in ("momentum=0.9/seed=0", "momentum=0.9/seed=1", "momentum=0.99/seed=0", "momentum=0.99/seed=1"):
        assert run_dir in result.output
    assert "pending" in result.output and not (tmp_path / "out").exists()


def test_default_sweep_directory_is_named_after_the_sweep_under_the_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BNEXP_RUNS_DIR", str(tmp_path / "runs"))
    out = load_sweep(write_sweep(tmp_path), None).out
    assert out.parent == tmp_path / "runs" and out.name.startswith("study-")


@pytest.mark.parametrize("args, message", [
    (["--executor", "dask"], "'dask' is not one of 'local', 'ray'"),
    (["--address", "10.0.0.1:6379"], "--address is for --executor ray"),
])
def test_bad_executor_options_exit_2(tmp_path, args, message):
    result = sweep(write_sweep(tmp_path), "--out", tmp_path / "out", *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "out").exists()


def test_ray_executor_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    result = sweep(write_sweep(tmp_path), "--out", tmp_path / "out", "--executor", "ray")
    assert result.exit_code == 1 and "pip install -e .[ray]" in result.output


def test_out_holding_something_else_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result = sweep(write_sweep(tmp_path), "--out", tmp_path / "out")
    assert result.exit_code == 2 and "holds no sweep.json" in result.output


def test_batch_size_study_is_bn_layer_and_group_norm_at_four_batch_sizes_and_three_seeds(tmp_path):
    study = load_sweep(REPO / "configs" / "sweeps" / "batch_size_study.yaml", tmp_path / "out")
    assert len(study.points) == 3 * 4 * 3
    assert {(p.config.model.norm.kind, p.config.train.batch_size, p.config.seed) for p in study.points} == {
        (k, b, s) for k in ("batch", "layer", "group") for b in (2, 8, 60, 600) for s in (0, 1, 2)}
    assert all(p.config.data.dataset == "mnist" for p in study.points)


# --- running a sweep ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    """Two momenta × two seeds, two points at a time, all completed: shared by read-only tests."""
    tmp = tmp_path_factory.mktemp("sweep")
    result = sweep(write_sweep(tmp, grid=MOMENTA, seeds=[0, 1]), "--out", tmp / "out", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert f"bnexp compare {tmp / 'out'}" in result.output
    return tmp / "out"


def test_local_sweep_writes_a_run_per_point_and_their_status_to_sweep_json(finished_sweep):
    points = manifest(finished_sweep)["points"]
    assert [p["run_dir"] for p in points] == [
        "momentum=0.9/seed=0", "momentum=0.9/seed=1", "momentum=0.99/seed=0", "momentum=0.99/seed=1"]
    assert points[3]["overrides"] == {"model.norm.momentum": 0.99, "seed": 1}
    for point in points:
        run = summary(finished_sweep / point["run_dir"])
        assert point["status"] == run["status"] == "completed" and point["message"] is None
        assert point["test_accuracy"] == run["test_accuracy"] and run["steps"] == 40
    found = sorted(str(p.parent.relative_to(finished_sweep)) for p in finished_sweep.rglob(rundir.SUMMARY))
    assert found == sorted(p["run_dir"] for p in points)  # only run directories hold a summary


def test_compare_finds_the_sweeps_runs_and_groups_seeds_by_grid_point(finished_sweep):
    comparison = compare.compare(compare.load_runs([str(finished_sweep)]))
    assert len(comparison.rows) == 4
    assert sorted((g.label, len(g.rows)) for g in comparison.groups) == [
        ("model.norm.momentum=0.9", 2), ("model.norm.momentum=0.99", 2)]


def test_rerun_skips_finished_points_resumes_interrupted_and_restarts_unsaved(finished_sweep, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished_sweep, out)
    interrupted, unsaved = out / "momentum=0.9/seed=0", out / "momentum=0.99/seed=1"
    for run, status in ((interrupted, "interrupted"), (unsaved, "running")):
        found = rundir.RunDir(run)
        found.write_summary(dataclasses.replace(found.read_summary(), status=status))
    (unsaved / rundir.CHECKPOINT).unlink()  # as if killed before its first checkpoint
    kept = [out / "momentum=0.9/seed=1", out / "momentum=0.99/seed=0"]
    before = [(run / rundir.SUMMARY).stat().st_mtime_ns for run in kept]

    result = sweep(write_sweep(tmp_path, grid=MOMENTA, seeds=[0, 1]), "--out", out, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert [(run / rundir.SUMMARY).stat().st_mtime_ns for run in kept] == before
    assert summary(interrupted)["sessions"] == 2 and "resuming" in (interrupted / rundir.LOG).read_text()
    assert summary(unsaved)["sessions"] == 1 and "resuming" not in (unsaved / rundir.LOG).read_text()
    assert [p["status"] for p in manifest(out)["points"]] == ["completed"] * 4


def test_changed_sweep_is_refused_in_the_old_directory(finished_sweep, tmp_path):
    changed = write_sweep(tmp_path, grid=MOMENTA, seeds=[0, 1], set={"train.learning_rate": 0.1})
    result = sweep(changed, "--out", finished_sweep)
    assert result.exit_code == 2 and "train.learning_rate" in result.output and "another --out" in result.output


def test_failing_point_is_reported_and_the_others_complete(tmp_path):
    missing = tmp_path / "missing"
    path = write_sweep(tmp_path, grid={"data.dataset": ["mnist", "mnist-sample"]}, set={"data.dir": str(missing)})
    result = sweep(path, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert f"data directory {missing} does not exist" in result.output
    failed, completed = manifest(tmp_path / "out")["points"]
    assert failed["status"] == "failed" and str(missing) in failed["message"]
    assert not (tmp_path / "out" / failed["run_dir"]).exists()  # bnexp train creates nothing for bad data
    assert completed["status"] == "completed"


def test_sigint_stops_running_points_with_a_checkpoint_and_exits_130(tmp_path):
    path = write_sweep(tmp_path, set={"train.steps": 10_000_000, "train.eval_every": 1_000_000})
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "bnexp", "sweep", str(path), "--out", str(out), "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + HANG_GUARD_SECONDS
        while not (out / "seed=0" / rundir.METRICS).exists():  # written once training has begun
            assert time.time() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=HANG_GUARD_SECONDS)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert manifest(out)["points"][0]["status"] == "interrupted"
    assert summary(out / "seed=0")["status"] == "interrupted"
    assert (out / "seed=0" / rundir.CHECKPOINT).exists()


@pytest.mark.long
def test_ray_executor_runs_points_as_tasks_on_a_local_instance(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e .[ray]")
    result = sweep(write_sweep(tmp_path, seeds=[0, 1]), "--out", tmp_path / "out", "--executor", "ray", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert [p["status"] for p in manifest(tmp_path / "out")["points"]] == ["completed", "completed"]
    assert summary(tmp_path / "out" / "seed=1")["seed"] == 1


def test_paper_reproduction_is_bn_against_none_over_five_seeds_with_the_papers_claims(tmp_path):
    sweep_ = load_sweep(REPO / "configs" / "claims" / "ioffe2015_figure1.yaml", tmp_path / "out")
    assert {(p.config.model.norm.kind, p.config.seed) for p in sweep_.points} == {
        (k, s) for k in ("batch", "none") for s in range(5)}
    for p in sweep_.points:
        c = p.config
        assert (c.model.hidden, c.model.activation, c.train.batch_size, c.train.steps, c.train.optimizer) == (
            [100, 100, 100], "sigmoid", 60, 50_000, "sgd")
        assert c.model.norm.placement == "before_activation" and c.diagnostics.enabled
    assert [(e.name, e.metric, e.direction, e.better, e.than) for e in sweep_.claims] == [
        ("bn-reaches-95-sooner", "steps_to_threshold", "lower", {"model.norm.kind": "batch"}, {"model.norm.kind": "none"}),
        ("bn-ends-higher", "final_accuracy", "higher", {"model.norm.kind": "batch"}, {"model.norm.kind": "none"}),
        ("bn-smaller-generalization-gap", "generalization_gap", "lower", {"model.norm.kind": "batch"},
         {"model.norm.kind": "none"}),
    ]
    assert sweep_.claims[0].threshold == 0.95
