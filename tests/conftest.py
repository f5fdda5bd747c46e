"""Shared fixtures. No test downloads data or reads the user's caches unless it asks to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# How long a test waits for a process it started to reach a state before calling it stuck:
# a guard against hangs, never a speed check. Generous, so that a slow or loaded machine
# changes how long the suite takes, not whether it passes.
HANG_GUARD_SECONDS = 900
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch, tmp_path_factory):
    """Offline, an empty Keras cache, and no $BNEXP_DATA_DIR: tests see only what they set up."""
    monkeypatch.setenv("BNEXP_OFFLINE", "1")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))
    monkeypatch.delenv("BNEXP_DATA_DIR", raising=False)


def _has_mnist(folder: Path) -> bool:
    idx = all((folder / name).is_file() or (folder / f"{name}.gz").is_file() for name in MNIST_FILES)
    return idx or (folder / "mnist.npz").is_file()


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The full MNIST folder: $BNEXP_TEST_MNIST, else ../shared/data/mnist; skip when absent."""
    folder = Path(os.environ.get("BNEXP_TEST_MNIST") or REPO.parent / "shared" / "data" / "mnist")
    if not _has_mnist(folder):
        pytest.skip(f"full MNIST not found in {folder} (set BNEXP_TEST_MNIST to a folder with the four IDX files or mnist.npz)")
    return folder


@pytest.fixture(scope="session")
def trained_study(tmp_path_factory) -> Path:
    """A small real sweep on the bundled sample, trained by `bnexp sweep`: BN against no BN,
    three seeds each, 300 steps, every diagnostics table, and two claims (30-60 s on 2 cores).

    The report tests read it; what its runs score does not matter to them, only that
    the report shows what compare says about it.
    """
    import subprocess
    import sys

    import yaml

    tmp = tmp_path_factory.mktemp("trained_study")
    bn, plain = {"model.norm.kind": "batch"}, {"model.norm.kind": "none"}
    spec = {
        "name": "report-study",
        "base": {"name": "study", "data": {"dataset": "mnist-sample"},
                 "model": {"hidden": [32, 32], "activation": "sigmoid", "init": {"kind": "normal", "std": 0.1}},
                 "train": {"optimizer": "sgd", "learning_rate": 0.5, "batch_size": 50, "steps": 300,
                           "eval_every": 30, "eval_train_examples": 500},
                 "diagnostics": {"enabled": True, "examples": 200, "ics": True, "landscape": True}},
        "grid": {"model.norm.kind": ["batch", "none"]},
        "seeds": [0, 1, 2],
        "expect": [
            {"name": "bn-reaches-80-sooner", "claim": "BN reaches 80% test accuracy in fewer steps",
             "source": "Ioffe & Szegedy 2015, section 4.1", "metric": "steps_to_threshold", "threshold": 0.8,
             "better": bn, "than": plain, "direction": "lower"},
            {"name": "bn-ends-higher", "claim": "BN ends at a higher test accuracy",
             "source": "Ioffe & Szegedy 2015, section 4.1", "metric": "final_accuracy",
             "better": bn, "than": plain, "direction": "higher"},
        ],
    }
    sweep_file = tmp / "study.yaml"
    sweep_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = tmp / "study"
    env = {**os.environ, "BNEXP_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "bnexp", "sweep", str(sweep_file), "--out", str(out), "--workers", "2",
                    "--quiet"], cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=600)
    return out
