"""checkpoint.npz: every variable of a run, keyed by its path, and the loop's state.

Model variables are `model/<Keras variable path>` (so the output layer's are under
`model/mlp/logits/`); train adds its optimizer's and loop's own. The loop state is a JSON
object in the `state` array. Works on any objects with `numpy()`, `assign()` and `shape`,
so this module needs no TensorFlow.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import numpy as np

from bnexp.errors import RunFileError
from bnexp.rundir.guard import open_regular


def model_variables(model) -> dict:
    """The model's variables (weights and BN statistics) under their checkpoint names."""
    return {f"model/{v.path}": v for v in model.weights}


def to_bytes(variables: dict, state: dict) -> bytes:
    arrays = {name: np.asarray(v.numpy()) for name, v in variables.items()}
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@dataclass
class Checkpoint:
    """A checkpoint as read from disk: its arrays by name and the loop state saved with them."""

    path: Path
    arrays: dict[str, np.ndarray]
    state: dict

    @property
    def step(self) -> int:
        return self.state["step"]

    def restore(self, variables: dict) -> None:
        """Load the arrays into `variables` (name -> variable), refusing any mismatch in name or shape."""
        for name, variable in variables.items():
            if name not in self.arrays or self.arrays[name].shape != tuple(variable.shape):
                raise RunFileError(f"{self.path} does not match this run's model (variable {name})")
            variable.assign(self.arrays[name])


def max_bytes(hidden: list[int]) -> int:
    """The most bytes a checkpoint of an MLP with these hidden widths inflates to: its
    weights and per-unit normalisation variables (at most 8 a unit) as float64, four
    times over (the weights, two optimizer slots, and room), plus 16 MiB of slack.
    A zip that claims more is refused before a byte of it is inflated."""
    widths = [784, *hidden, 10]
    values = sum(a * b + b for a, b in zip(widths, widths[1:])) + 8 * sum(hidden)
    return 4 * 8 * values + 16 * 2**20


def load(path: Path, limit: int) -> Checkpoint:
    """Read a checkpoint of at most `limit` inflated bytes; RunFileError naming the file
    when it is missing, a link, not a regular file, too large or damaged."""
    fd = open_regular(path)
    try:
        with os.fdopen(fd, "rb") as handle, np.load(handle, allow_pickle=False) as f:
            inflated = sum(info.file_size for info in f.zip.infolist())
            if inflated > limit:
                raise RunFileError(f"{path} is corrupt: it inflates to {inflated:,} bytes; "
                                   f"a checkpoint of this run's model holds at most {limit:,}")
            arrays = {name: f[name] for name in f.files}
    except RunFileError:
        raise
    except Exception:  # numpy raises many types for a damaged zip
        raise RunFileError(f"{path} is corrupt: not a readable npz archive") from None
    try:
        state = json.loads(arrays["state"].tobytes()) if "state" in arrays else None
    except (ValueError, RecursionError):  # JSON and UTF-8 decoding errors alike
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise RunFileError(f"{path} is corrupt: no readable loop state")
    return Checkpoint(Path(path), arrays, state)


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def state_problem(state: dict, total_steps: int) -> str | None:
    """What is wrong with a checkpoint's loop state for a run of `total_steps` steps, or
    None: each known key of the right type and every step within 0 … the step reached."""
    step = state.get("step")
    if not _count(step) or step > total_steps:
        return f"step {str(step)[:40]} is not within 0 … {total_steps}, the run's steps"
    checks = {
        "elapsed": lambda v: _number(v) and v >= 0,
        "train_seconds": lambda v: _number(v) and v >= 0,
        "epoch_seconds": lambda v: isinstance(v, list) and all(_number(x) for x in v),
        "best_accuracy": lambda v: v is None or _number(v),
        "best_step": lambda v: v is None or (_count(v) and v <= step),
        "last_eval": lambda v: v is None or (isinstance(v, dict) and _count(v.get("step")) and v["step"] <= step),
        "row_start_step": lambda v: _count(v) and v <= step,
        "previous_row_step": lambda v: _count(v) and v <= max(step, state.get("row_start_step") or 0),
        "row_totals": lambda v: v is None or (isinstance(v, list) and len(v) == 2
                                               and all(isinstance(x, Real) and not isinstance(x, bool) for x in v)),
        "sessions": lambda v: _count(v) and v >= 1,
    }
    for key, valid in checks.items():
        if key in state and not valid(state[key]):
            return f"{key} is {str(state[key])[:40]!r}"
    return None
