"""Shared fixtures. No test downloads data or reads the user's caches unless it asks to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
