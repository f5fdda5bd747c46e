"""The run directory: the contract between `train`, `eval` and `compare`.

Plain files any tool can read (the README describes each): config.yaml, metrics.csv,
summary.json, log.txt, checkpoint.npz, eval.json. Every whole-file write goes to a
temporary file and is renamed into place, so a crash never leaves a torn file; metrics
rows are appended a whole line at a time. A lock file stops two processes writing one run.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

from bnexp.errors import RunDirError, RunFileError

CONFIG, METRICS, SUMMARY, LOG, CHECKPOINT, EVAL, TENSORBOARD = (
    "config.yaml", "metrics.csv", "summary.json", "log.txt", "checkpoint.npz", "eval.json", "tb",
)
METRICS_COLUMNS = [
    "step", "epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "learning_rate", "elapsed_s",
]


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` via a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; run files are for every reader
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RunFileError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFileError(f"{path} is corrupt: {e}") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path} is corrupt: expected a JSON object")
    return data


def format_row(row: dict) -> str:
    """One metrics.csv line; floats in repr form, so reruns compare byte for byte."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([row[c] for c in METRICS_COLUMNS])
    return buffer.getvalue()


class RunDir:
    """An open run directory, locked by this process while it writes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = None

    def file(self, name: str) -> Path:
        return self.path / name

    def lock(self) -> None:
        """Take the run's lock, or fail at once if another bnexp process holds it."""
        handle = open(self.path / ".lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunDirError(f"{self.path} is in use by another bnexp process") from None
        self._lock = handle

    def unlock(self) -> None:
        if self._lock:
            self._lock.close()
            self._lock = None

    def write_json(self, name: str, data: dict) -> None:
        write_atomic(self.file(name), json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")

    def read_json(self, name: str) -> dict:
        return read_json(self.file(name))

    def log(self, message: str) -> None:
        with open(self.file(LOG), "a") as f:
            f.write(f"{datetime.now().isoformat(timespec='seconds')} {message}\n")

    def start_metrics(self) -> None:
        write_atomic(self.file(METRICS), ",".join(METRICS_COLUMNS) + "\n")

    def append_metrics(self, row: dict) -> None:
        # One write call per line: a kill can cut the file only between whole lines or
        # inside the last one, which resume then drops.
        with open(self.file(METRICS), "a") as f:
            f.write(format_row(row))

    def read_metrics(self) -> list[dict]:
        """The complete rows of metrics.csv (a torn last line from a kill is skipped)."""
        path = self.file(METRICS)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return []
        lines = text.split("\n")
        if lines and lines[0] != ",".join(METRICS_COLUMNS):
            raise RunFileError(f"{path} is corrupt: unexpected header")
        rows = []
        for line in lines[1:-1]:  # the last element follows the final newline; partial if torn
            values = line.split(",")
            if len(values) != len(METRICS_COLUMNS):
                raise RunFileError(f"{path} is corrupt: a row has {len(values)} cells")
            try:
                rows.append({c: (int(v) if c == "step" else float(v)) for c, v in zip(METRICS_COLUMNS, values)})
            except ValueError:
                raise RunFileError(f"{path} is corrupt: non-numeric cell in '{line}'") from None
        return rows

    def rewrite_metrics(self, rows: list[dict]) -> None:
        write_atomic(self.file(METRICS), ",".join(METRICS_COLUMNS) + "\n" + "".join(format_row(r) for r in rows))


def create(runs_root: Path, name: str, explicit: Path | None = None) -> RunDir:
    """Make and lock a fresh run directory: `explicit`, or runs_root/<name>-<timestamp>[-N].

    An explicit path may exist only as an empty directory, so no run is ever overwritten.
    """
    if explicit is not None:
        path = Path(explicit)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create run directory {path}: {e.strerror}") from None
        had_lock = (path / ".lock").exists()
        run = RunDir(path)
        run.lock()
        if any(p.name != ".lock" for p in path.iterdir()):
            run.unlock()
            if not had_lock:  # leave the user's folder as we found it
                (path / ".lock").unlink(missing_ok=True)
            hint = "; use 'bnexp train --resume' to continue it" if (path / SUMMARY).exists() else ""
            raise RunDirError(f"run directory {path} is not empty{hint}")
        return run
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        Path(runs_root).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create {runs_root}: {e.strerror}") from None
    for n in range(1, 1000):
        path = Path(runs_root) / (f"{name}-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise RunDirError(f"cannot create run directory {path}: {e.strerror}") from None
        run = RunDir(path)
        run.lock()
        return run
    raise RunDirError(f"too many runs named {name} at {stamp} in {runs_root}")


def open_run(path: str | Path) -> RunDir:
    """An existing run directory (config.yaml and summary.json present), unlocked."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path} does not exist")
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory")
    missing = [name for name in (CONFIG, SUMMARY) if not (path / name).is_file()]
    if missing:
        raise RunDirError(f"{path} is not a bnexp run directory (no {' or '.join(missing)})")
    return RunDir(path)

