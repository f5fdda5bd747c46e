"""Warm workers (bnexp.sweep.worker and the sweep's executors): a point trained on a worker that
has trained others ends byte for byte as `bnexp train` alone ends it; a worker killed
mid-point fails that point, is replaced, and the rerun completes the point as if nothing
had happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import HANG_GUARD_SECONDS
import yaml

from bnexp import rundir
from bnexp.sweep import MANIFEST

TINY = {
    "name": "tiny",
    "data": {"dataset": "mnist-sample"},
    "model": {"hidden": [16], "norm": {"kind": "batch", "momentum": 0.9}},
    "train": {"optimizer": "momentum", "learning_rate": 0.05, "batch_size": 50, "steps": 300, "eval_every": 100},
}
THREADS = "1"  # the sweeps' and the lone runs' thread count: the identity holds only with one count


def env() -> dict:
    return {**os.environ, "BNEXP_THREADS": THREADS}


def write_sweep(folder: Path, **fields) -> Path:
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump({"base": TINY, **fields}, sort_keys=False))
    return path


def sweep_command(path: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bnexp", "sweep", str(path), "--out", str(out), "--quiet", *args]


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())


def metrics_without_timing(run: Path) -> list[list[str]]:
    lines = (run / rundir.METRICS).read_text().splitlines()
    elapsed = lines[0].split(",").index("elapsed_s")
    return [[cell for i, cell in enumerate(line.split(",")) if i != elapsed] for line in lines]


def train_alone(point_run: Path, out: Path) -> Path:
    """The point's own config trained by `bnexp train` in a process of its own."""
    done = subprocess.run([sys.executable, "-m", "bnexp", "train", str(point_run / rundir.CONFIG), "--run-dir", str(out),
                           "--quiet"], env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def worker_pids(parent: int) -> list[int]:
    """The warm workers among `parent`'s children (Linux /proc)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children if b"bnexp.sweep.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()]


@pytest.mark.long
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the worker through Linux's /proc")
def test_kill_9_of_a_worker_fails_its_point_replaces_the_worker_and_the_rerun_completes_it_identically(tmp_path):
    long = {"train.steps": 4000, "train.eval_every": 100, "train.checkpoint_every": 100}
    path, out = write_sweep(tmp_path, set=long, seeds=[0, 1]), tmp_path / "out"
    process = subprocess.Popen(sweep_command(path, out, "--workers", "1"), env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = out / "seed=0"
        deadline = time.time() + HANG_GUARD_SECONDS
        while not ((first / rundir.METRICS).exists() and len((first / rundir.METRICS).read_text().splitlines()) >= 3):
            assert time.time() < deadline and process.poll() is None, process.communicate()
            time.sleep(0.02)
        [worker] = worker_pids(process.pid)
        os.kill(worker, signal.SIGKILL)  # mid-point: past its checkpoint at step 200, far from step 4000
        _, stderr = process.communicate(timeout=HANG_GUARD_SECONDS)
    finally:
        process.kill()
    assert process.returncode == 1, stderr
    killed, other = manifest(out)["points"]
    assert killed["status"] == "failed" and "killed by SIGKILL" in killed["message"]
    assert other["status"] == "completed"  # on the worker that replaced the killed one
    assert (first / rundir.CHECKPOINT).exists()

    rerun = subprocess.run(sweep_command(path, out, "--workers", "1"), env=env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert [p["status"] for p in manifest(out)["points"]] == ["completed", "completed"]
    resumed = json.loads((first / rundir.SUMMARY).read_text())
    assert resumed["sessions"] == 2 and resumed["steps"] == 4000
    alone = train_alone(first, tmp_path / "alone")
    assert metrics_without_timing(first) == metrics_without_timing(alone)


REUSED = "reusing compiled programs"  # the log line of a run trained on an earlier run's programs
FEATURES = {"model": {"hidden": [16], "norm": {"kind": "batch", "momentum": 0.9, "noise": {"scale": 0.2}},
                      "dropout": {"rate": 0.1}},
            "train": {**TINY["train"], "weight_decay": 0.001, "eval_train_examples": 500}}


def worker_tasks(tasks: list[dict]) -> list[dict]:
    """Replies of one `python -m bnexp.sweep.worker` to `tasks`, in order."""
    lines = "".join(json.dumps(task) + "\n" for task in tasks)
    done = subprocess.run([sys.executable, "-m", "bnexp.sweep.worker"], input=lines, env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.long
def test_a_point_on_reused_programs_equals_bnexp_train_alone(tmp_path):
    """Two points that differ in every program input at once (seed, and with it the weights and
    the dropout and noise seeds; learning rate, momentum, weight decay, noise scale, divergence
    threshold): the second trains on the first's programs with every input reassigned, and
    ends byte for byte as `bnexp train` alone ends it."""
    first = {**TINY, **FEATURES, "seed": 3}
    second = {**first, "seed": 4,
              "model": {**first["model"], "norm": {**first["model"]["norm"], "noise": {"scale": 0.5}}},
              "train": {**first["train"], "learning_rate": 0.2, "momentum": 0.5, "weight_decay": 0.01,
                        "divergence_loss": 50.0}}
    runs = [tmp_path / "first", tmp_path / "second"]
    replies = worker_tasks([{"config": yaml.safe_dump(c), "run_dir": str(r), "data_dir": None}
                            for c, r in zip((first, second), runs)])
    assert replies == [{"code": 0, "message": ""}] * 2
    assert REUSED not in (runs[0] / rundir.LOG).read_text() and REUSED in (runs[1] / rundir.LOG).read_text()
    assert metrics_without_timing(runs[1]) == metrics_without_timing(train_alone(runs[1], tmp_path / "alone"))
    assert metrics_without_timing(runs[1]) != metrics_without_timing(runs[0])


@pytest.mark.long
def test_a_sweep_reuses_programs_across_learning_rates_and_seeds_equal_to_bnexp_train_alone(tmp_path):
    path, out = write_sweep(tmp_path, grid={"train.learning_rate": [0.05, 0.2]}, seeds=[3, 4]), tmp_path / "out"
    done = subprocess.run(sweep_command(path, out, "--workers", "1"), env=env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert manifest(out)["threads"] == int(THREADS)
    runs = [out / p["run_dir"] for p in manifest(out)["points"]]
    assert [REUSED in (run / rundir.LOG).read_text() for run in runs] == [False, True, True, True]
    last = runs[-1]  # learning rate and seed both differ from the point that compiled its programs
    assert metrics_without_timing(last) == metrics_without_timing(train_alone(last, tmp_path / "alone"))


def test_a_feature_turned_off_is_another_program():
    from bnexp.config import validate
    from bnexp.training.programs import program_key

    def key(**train):
        return program_key(validate({**TINY, "train": {**TINY["train"], **train}}, "test"))

    assert key(learning_rate=0.05) == key(learning_rate=0.2)  # an input
    assert key(momentum=0.9) == key(momentum=0.5) != key(momentum=0.0)  # 0: plain SGD, no momentum slots
    assert key(weight_decay=0.01) == key(weight_decay=0.1) != key(weight_decay=0.0)  # 0: no penalty term
    assert key(eval_every=10) == key(eval_every=20)  # the loop's, not the program's
    assert key(batch_size=50) != key(batch_size=25) and key(unroll=4) != key(unroll=2)
    assert key(schedule={"kind": "cosine"}, steps=300) != key(schedule={"kind": "cosine"}, steps=400)


@pytest.mark.long
def test_ray_actors_train_points_as_bnexp_train_alone(tmp_path):
    """Without --address the sweep starts a Ray instance of its own: whatever cluster runs on
    the machine, and whatever RAY_ADDRESS names (here nobody), is not its business."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e .[ray]")
    path, out = write_sweep(tmp_path, seeds=[0, 1]), tmp_path / "out"
    done = subprocess.run(sweep_command(path, out, "--executor", "ray", "--workers", "1"),
                          env={**env(), "RAY_ADDRESS": "127.0.0.1:1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [p["status"] for p in manifest(out)["points"]] == ["completed", "completed"]
    second = out / "seed=1"
    assert metrics_without_timing(second) == metrics_without_timing(train_alone(second, tmp_path / "alone"))
