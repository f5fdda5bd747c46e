"""MNIST-format datasets: locate the files, read IDX or npz, validate what was read.

No TensorFlow here: the arrays stay uint8 (a quarter of float32's memory) and are
normalised inside the compiled training step.

Search order for `mnist` and `fashion_mnist`: an explicit directory (`data.dir` or
`--data-dir`, an error if it lacks the files), then `$BNEXP_DATA_DIR`, then the Keras
cache (`~/.keras/datasets`), then, for Fashion-MNIST, Debian's
/usr/share/datasets/fashion-mnist, and last a download into the Keras cache, as
`keras.datasets` does. `mnist-sample` is a real 5,000/1,000 subset shipped in the
package, so the quick start and fast tests run offline.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import tempfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnexp.errors import DataError

DATASETS = ("mnist", "fashion_mnist", "mnist-sample")

IDX_NAMES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
# SHA-256 of the files Keras downloads, so a broken download is never used.
MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
SAMPLE_PATH = Path(__file__).parent / "sample" / "mnist_sample.npz"


@dataclass
class Dataset:
    """Train and test arrays: images uint8 (N, 28, 28), labels uint8 (N,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def split(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """The (images, labels) of 'train' or 'test'."""
        return (self.x_train, self.y_train) if which == "train" else (self.x_test, self.y_test)


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def load(dataset: str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Find, read and validate `dataset`; `data_dir` is an explicit user choice."""
    if dataset == "mnist-sample":
        return _validated(read_npz(SAMPLE_PATH), "mnist-sample", str(SAMPLE_PATH))
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset '{dataset}'; allowed: {', '.join(DATASETS)}")
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data directory {folder} does not exist")
        arrays = read_folder(folder, dataset)
        if arrays is None:
            raise DataError(f"data directory {folder} has no {dataset} files ({_expected_files(dataset)})")
        return _validated(arrays, dataset, str(folder))
    tried = []
    for folder in _search_dirs(dataset):
        tried.append(str(folder))
        arrays = read_folder(folder, dataset)
        if arrays is not None:
            return _validated(arrays, dataset, str(folder))
    return _validated(*_download(dataset, tried))


def _search_dirs(dataset: str) -> list[Path]:
    dirs = []
    if os.environ.get("BNEXP_DATA_DIR"):
        dirs.append(Path(os.environ["BNEXP_DATA_DIR"]).expanduser())
    cache = keras_cache_dir()
    dirs += [cache, cache / "fashion-mnist"] if dataset == "fashion_mnist" else [cache]
    if dataset == "fashion_mnist":
        dirs.append(DEBIAN_FASHION_DIR)
    return dirs


def _expected_files(dataset: str) -> str:
    npz = "mnist.npz or " if dataset == "mnist" else ""
    return npz + "the four IDX files train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-..."


def read_folder(folder: Path, dataset: str) -> dict[str, np.ndarray] | None:
    """Read the four IDX files (gzipped or not) or, for MNIST, mnist.npz; None if absent."""
    paths = {}
    for key, stem in IDX_NAMES.items():
        found = [folder / (stem + ext) for ext in ("", ".gz") if (folder / (stem + ext)).is_file()]
        if not found:
            break
        paths[key] = found[0]
    if len(paths) == 4:
        return {key: read_idx(path) for key, path in paths.items()}
    if dataset == "mnist" and (folder / "mnist.npz").is_file():
        return read_npz(folder / "mnist.npz")
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzip detected by its magic bytes), checking header and length."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as e:  # BadGzipFile is an OSError
        raise DataError(f"cannot read {path}: {e}") from None
    if len(raw) < 8:
        raise DataError(f"{path} is truncated: {len(raw)} bytes, no IDX header")
    magic, count = struct.unpack(">II", raw[:8])
    if magic not in (IMAGE_MAGIC, LABEL_MAGIC):
        raise DataError(f"{path} is not an MNIST IDX file (magic number {magic}, expected {IMAGE_MAGIC} or {LABEL_MAGIC})")
    if magic == IMAGE_MAGIC:
        if len(raw) < 16:
            raise DataError(f"{path} is truncated: no image dimensions")
        rows, cols = struct.unpack(">II", raw[8:16])
        shape, offset = (count, rows, cols), 16
    else:
        shape, offset = (count,), 8
    expected = int(np.prod(shape))
    if len(raw) - offset != expected:
        raise DataError(f"{path} is truncated or corrupt: {len(raw) - offset} data bytes, header says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(shape)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Read a Keras-style npz holding x_train, y_train, x_test, y_test."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in IDX_NAMES if k not in f.files]
            if missing:
                raise DataError(f"{path} lacks the arrays {', '.join(missing)}")
            return {key: f[key] for key in IDX_NAMES}
    except DataError:
        raise
    except Exception as e:  # numpy raises many types (BadZipFile, ValueError, EOFError, OSError)
        raise DataError(f"cannot read {path}: {type(e).__name__}: {e}") from None


def _validated(arrays: dict[str, np.ndarray], name: str, source: str) -> Dataset:
    """Check shapes, dtypes, counts and label range, so bad files fail here, not mid-training."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{source}: {split} images have shape {x.shape}, expected (N, 28, 28)")
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{source}: {len(x)} {split} images but {y.shape} labels")
        if len(x) == 0:
            raise DataError(f"{source}: the {split} split is empty")
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise DataError(f"{source}: {split} arrays are {x.dtype}/{y.dtype}, expected uint8")
        if y.max() > 9:
            raise DataError(f"{source}: {split} labels must be 0-9, found {int(y.max())}")
    return Dataset(name, arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], source)


def _download(dataset: str, tried: list[str]) -> tuple[dict[str, np.ndarray], str, str]:
    """Fetch the files Keras fetches into the Keras cache; explain where we looked on failure."""
    cache = keras_cache_dir()
    how = f"put the files in one of those or pass --data-dir DIR ({_expected_files(dataset)})"
    if os.environ.get("BNEXP_OFFLINE", "0") not in ("", "0"):
        raise DataError(f"{dataset} not found in {', '.join(tried)} and BNEXP_OFFLINE is set; {how}")
    try:
        if dataset == "mnist":
            target = cache / "mnist.npz"
            _fetch(KERAS_ORIGIN + "mnist.npz", target, MNIST_NPZ_SHA256)
            return read_npz(target), dataset, str(target)
        folder = cache / "fashion-mnist"
        for stem in IDX_NAMES.values():
            _fetch(KERAS_ORIGIN + stem + ".gz", folder / (stem + ".gz"), None)
        return read_folder(folder, dataset), dataset, str(folder)
    except OSError as e:
        raise DataError(f"{dataset} not found in {', '.join(tried)}, and the download failed ({e}); {how}") from None


def _fetch(url: str, target: Path, sha256: str | None) -> None:
    """Download to a temporary file and rename, so an interrupted download leaves nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                shutil.copyfileobj(response, tmp)
            tmp.close()
            if sha256 and hashlib.sha256(Path(tmp.name).read_bytes()).hexdigest() != sha256:
                raise OSError(f"checksum mismatch for {url}")
            os.replace(tmp.name, target)
        finally:
            if os.path.exists(tmp.name):
                os.unlink(tmp.name)
