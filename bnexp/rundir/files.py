"""The names of a run directory's files, and how any one of them is written and read whole.

Every whole-file write goes to a temporary file that is renamed into place, so a crash
never leaves a torn file; every read goes through bnexp.rundir.guard (no links, regular
files only, a size cap). This module, and the rest of bnexp.rundir, are the only code
that spells a run file's name.
"""

from __future__ import annotations

import json
from pathlib import Path

from bnexp.errors import RunFileError
from bnexp.rundir.guard import read_text, write_atomic

__all__ = ["read_json", "write_atomic", "write_json", "diag_file"]

CONFIG, METRICS, SUMMARY, LOG, CHECKPOINT, EVAL, TENSORBOARD, LOCK = (
    "config.yaml", "metrics.csv", "summary.json", "log.txt", "checkpoint.npz", "eval.json", "tb", ".lock",
)
# The state at the start of a run's last compiled call, kept when that call ends off the
# unroll grid: extending the run replays its tail from here (bnexp.training.extension.extended).
TAIL_CHECKPOINT = "checkpoint_tail.npz"
SWEEP_MANIFEST = "sweep.json"  # in a sweep directory: its points in grid order (bnexp.sweep writes it)


def diag_file(kind: str) -> str:
    """The file of one diagnostics table: diag_<kind>.csv."""
    return f"diag_{kind}.csv"


def read_json(path: Path) -> dict:
    """A JSON object from `path`; RunFileError naming the file when it is missing or corrupt."""
    text = read_text(path)  # no link, a regular file, a size cap: RunFileError otherwise
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path} is corrupt: {e}") from None
    except RecursionError:
        raise RunFileError(f"{path} is corrupt: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path} is corrupt: expected a JSON object")
    return data


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=2, allow_nan=False, default=str) + "\n")
