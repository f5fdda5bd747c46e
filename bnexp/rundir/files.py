"""The names of a run directory's files, and how any one of them is written and read whole.

Every whole-file write goes to a temporary file that is renamed into place, so a crash
never leaves a torn file. This module, and the rest of bnexp.rundir, are the only code
that spells a run file's name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from bnexp.errors import RunFileError

CONFIG, METRICS, SUMMARY, LOG, CHECKPOINT, EVAL, TENSORBOARD, LOCK = (
    "config.yaml", "metrics.csv", "summary.json", "log.txt", "checkpoint.npz", "eval.json", "tb", ".lock",
)
# The state at the start of a run's last compiled call, kept when that call ends off the
# unroll grid: extending the run replays its tail from here (bnexp.train.extended).
TAIL_CHECKPOINT = "checkpoint_tail.npz"
SWEEP_MANIFEST = "sweep.json"  # in a sweep directory: its points in grid order (bnexp.sweep writes it)


def diag_file(kind: str) -> str:
    """The file of one diagnostics table: diag_<kind>.csv."""
    return f"diag_{kind}.csv"


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
    """A JSON object from `path`; RunFileError naming the file when it is missing or corrupt."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFileError(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunFileError(f"{path} is corrupt: {e}") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path} is corrupt: expected a JSON object")
    return data


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")
