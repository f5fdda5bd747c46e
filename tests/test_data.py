"""Data: IDX and npz readers, validation, the search order, the bundled sample and full MNIST."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from bnexp import data
from bnexp.data import load
from bnexp.errors import DataError

STEMS = data.IDX_NAMES  # x_train -> train-images-idx3-ubyte, ...


def synthetic(n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file written independently of the reader: big-endian header, then raw uint8."""
    if array.ndim == 3:
        header = struct.pack(">IIII", magic or 2051, *array.shape)
    else:
        header = struct.pack(">II", magic or 2049, len(array))
    return header + array.astype(np.uint8).tobytes()


def write_idx(folder: Path, arrays: dict[str, np.ndarray], gz: bool = False) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, stem in STEMS.items():
        raw = idx_bytes(arrays[key])
        paths[key] = folder / (stem + (".gz" if gz else ""))
        paths[key].write_bytes(gzip.compress(raw) if gz else raw)
    return paths


def write_npz(folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "mnist.npz", **arrays)
    return folder / "mnist.npz"


def assert_same(dataset: data.Dataset, arrays: dict[str, np.ndarray]) -> None:
    for key, expected in arrays.items():
        got = getattr(dataset, key)
        assert got.dtype == np.uint8 and got.shape == expected.shape, key
        np.testing.assert_array_equal(got, expected, err_msg=key)


def data_error(*args) -> str:
    with pytest.raises(DataError) as info:
        load(*args)
    message = str(info.value)
    assert "\n" not in message, repr(message)
    return message


# --- readers --------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_reads_idx_files(tmp_path, gz):
    arrays = synthetic()
    write_idx(tmp_path, arrays, gz=gz)
    dataset = load("mnist", tmp_path)
    assert_same(dataset, arrays)
    assert (dataset.x_train.shape, dataset.x_test.shape) == ((20, 28, 28), (10, 28, 28))
    assert dataset.source == str(tmp_path)


def test_reads_keras_npz(tmp_path):
    arrays = synthetic()
    write_npz(tmp_path, arrays)
    assert_same(load("mnist", tmp_path), arrays)


def test_idx_preferred_over_npz_in_same_folder(tmp_path):
    write_npz(tmp_path, synthetic(seed=1))
    write_idx(tmp_path, arrays := synthetic(seed=2))
    assert_same(load("mnist", tmp_path), arrays)


# --- corrupt files: each a DataError naming the file -----------------------------------------


def test_truncated_image_file(tmp_path):
    path = write_idx(tmp_path, synthetic())["x_train"]
    path.write_bytes(path.read_bytes()[:-100])
    assert f"{path} is truncated or corrupt: {20 * 784 - 100} data bytes, header says {20 * 784}" in data_error("mnist", tmp_path)


def test_empty_label_file(tmp_path):
    path = write_idx(tmp_path, synthetic())["y_test"]
    path.write_bytes(b"")
    assert f"{path} is truncated: 0 bytes, no IDX header" in data_error("mnist", tmp_path)


def test_truncated_gzip_file(tmp_path):
    path = write_idx(tmp_path, synthetic(), gz=True)["x_train"]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert data_error("mnist", tmp_path).startswith(f"cannot read {path}: ")


def test_corrupt_gzip_file(tmp_path):
    arrays = synthetic()
    arrays["x_train"] = np.tile(np.arange(28, dtype=np.uint8), (20, 28, 1))  # compressible, as real images are
    path = write_idx(tmp_path, arrays, gz=True)["x_train"]
    raw = bytearray(path.read_bytes())
    raw[20:60] = bytes(b ^ 0xFF for b in raw[20:60])  # inside the deflate stream, past the 10-byte header
    path.write_bytes(bytes(raw))
    assert data_error("mnist", tmp_path).startswith(f"cannot read {path}: ")


def test_wrong_magic_number(tmp_path):
    arrays = synthetic()
    paths = write_idx(tmp_path, arrays)
    paths["x_test"].write_bytes(idx_bytes(arrays["x_test"], magic=2052))
    assert f"{paths['x_test']} is not an MNIST IDX file (magic number 2052" in data_error("mnist", tmp_path)


def test_label_above_nine(tmp_path):
    arrays = synthetic()
    arrays["y_train"][7] = 10
    write_idx(tmp_path, arrays)
    assert data_error("mnist", tmp_path) == f"{tmp_path}: train labels must be 0-9, found 10"


def test_image_and_label_counts_differ(tmp_path):
    arrays = synthetic()
    arrays["y_test"] = arrays["y_test"][:9]
    write_idx(tmp_path, arrays)
    assert data_error("mnist", tmp_path) == f"{tmp_path}: 10 test images but (9,) labels"


def test_images_not_28_by_28(tmp_path):
    arrays = synthetic()
    arrays["x_train"] = np.zeros((20, 27, 27), np.uint8)
    write_idx(tmp_path, arrays)
    assert data_error("mnist", tmp_path) == f"{tmp_path}: train images have shape (20, 27, 27), expected (N, 28, 28)"


def test_npz_missing_an_array(tmp_path):
    arrays = synthetic()
    del arrays["y_test"]
    path = write_npz(tmp_path, arrays)
    assert data_error("mnist", tmp_path) == f"{path} lacks the arrays y_test"


@pytest.mark.parametrize("corrupt", ["random", "truncated"])
def test_corrupt_npz(tmp_path, corrupt):
    path = write_npz(tmp_path, synthetic())
    raw = np.random.default_rng(0).bytes(4096) if corrupt == "random" else path.read_bytes()[:-200]
    path.write_bytes(raw)
    assert data_error("mnist", tmp_path).startswith(f"cannot read {path}: ")


def test_npz_with_float_images(tmp_path):
    arrays = synthetic()
    arrays["x_train"] = arrays["x_train"].astype(np.float32)
    write_npz(tmp_path, arrays)
    assert "train arrays are float32/uint8, expected uint8" in data_error("mnist", tmp_path)


# --- where the files are looked for ---------------------------------------------------------


def test_explicit_dir_missing_never_falls_through(tmp_path, monkeypatch):
    write_idx(tmp_path / "env", synthetic())
    monkeypatch.setenv("BNEXP_DATA_DIR", str(tmp_path / "env"))
    missing = tmp_path / "missing"
    assert data_error("mnist", missing) == f"data directory {missing} does not exist"


def test_explicit_dir_without_files_lists_expected(tmp_path, monkeypatch):
    write_idx(tmp_path / "env", synthetic())
    monkeypatch.setenv("BNEXP_DATA_DIR", str(tmp_path / "env"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train-images-idx3-ubyte").write_bytes(idx_bytes(synthetic()["x_train"]))  # one of four
    message = data_error("mnist", empty)
    assert message.startswith(f"data directory {empty} has no mnist files (")
    assert "mnist.npz" in message and "train-images-idx3-ubyte" in message and "train-labels-idx1-ubyte" in message


def test_env_dir_used_without_explicit_dir(tmp_path, monkeypatch):
    write_idx(tmp_path / "env", arrays := synthetic(seed=1))
    monkeypatch.setenv("BNEXP_DATA_DIR", str(tmp_path / "env"))
    dataset = load("mnist")
    assert dataset.source == str(tmp_path / "env")
    assert_same(dataset, arrays)


def test_env_dir_before_keras_cache(tmp_path, monkeypatch):
    write_idx(tmp_path / "env", arrays := synthetic(seed=1))
    write_npz(data.keras_cache_dir(), synthetic(seed=2))
    monkeypatch.setenv("BNEXP_DATA_DIR", str(tmp_path / "env"))
    assert_same(load("mnist"), arrays)


def test_keras_cache_used_when_no_env_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    path = write_npz(tmp_path / "kh" / "datasets", arrays := synthetic(seed=3))
    dataset = load("mnist")
    assert dataset.source == str(path.parent)
    assert_same(dataset, arrays)


def test_offline_and_nothing_found_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda *a, **k: pytest.fail("tried to download"))
    monkeypatch.setenv("BNEXP_DATA_DIR", str(tmp_path / "env"))
    message = data_error("mnist")
    assert f"mnist not found in {tmp_path / 'env'}, {data.keras_cache_dir()} and BNEXP_OFFLINE is set" in message
    assert "--data-dir DIR" in message and "mnist.npz" in message


def test_fashion_mnist_found_in_debian_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "debian")
    write_idx(tmp_path / "debian", arrays := synthetic(seed=4), gz=True)
    dataset = load("fashion_mnist")
    assert dataset.source == str(tmp_path / "debian")
    assert_same(dataset, arrays)


def test_fashion_mnist_ignores_mnist_npz(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "debian")
    write_npz(data.keras_cache_dir(), synthetic())
    assert "fashion_mnist not found in" in data_error("fashion_mnist")


def test_fashion_mnist_from_installed_debian_package():
    if data.read_folder(data.DEBIAN_FASHION_DIR, "fashion_mnist") is None:
        pytest.skip(f"{data.DEBIAN_FASHION_DIR} lacks the files (apt-get install dataset-fashion-mnist)")
    dataset = load("fashion_mnist")
    assert dataset.source == str(data.DEBIAN_FASHION_DIR)
    assert (dataset.x_train.shape, dataset.x_test.shape) == ((60000, 28, 28), (10000, 28, 28))


def test_unknown_dataset():
    assert data_error("cifar10") == "unknown dataset 'cifar10'; allowed: mnist, fashion_mnist, mnist-sample"


# --- the bundled sample ---------------------------------------------------------------------


def test_bundled_sample_is_5000_train_1000_test_all_classes():
    dataset = load("mnist-sample")
    assert (dataset.x_train.shape, dataset.y_train.shape) == ((5000, 28, 28), (5000,))
    assert (dataset.x_test.shape, dataset.y_test.shape) == ((1000, 28, 28), (1000,))
    for array in (dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test):
        assert array.dtype == np.uint8
    assert set(np.unique(dataset.y_train)) == set(range(10)) == set(np.unique(dataset.y_test))


# --- full MNIST -----------------------------------------------------------------------------

MNIST_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


@pytest.fixture(scope="module")
def full_mnist(mnist_dir):
    return load("mnist", mnist_dir)


@pytest.mark.mnist
@pytest.mark.parametrize("key", list(MNIST_SHA256))
def test_full_mnist_arrays_match_published_sha256(full_mnist, key):
    array = getattr(full_mnist, key)
    assert array.dtype == np.uint8 and array.flags.c_contiguous
    assert hashlib.sha256(array.tobytes()).hexdigest() == MNIST_SHA256[key]


@pytest.mark.mnist
def test_full_mnist_train_class_counts(full_mnist):
    counts = np.bincount(full_mnist.y_train, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.mnist
def test_full_mnist_train_pixel_mean_and_std(full_mnist):
    histogram = np.bincount(full_mnist.x_train.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256) / 255.0
    mean = histogram @ levels / histogram.sum()
    std = np.sqrt(histogram @ (levels - mean) ** 2 / histogram.sum())
    assert (round(mean, 4), round(std, 4)) == (0.1307, 0.3081)
