"""checkpoint.npz: every variable of a run, keyed by its path, and the loop's state.

Model variables are `model/<Keras variable path>` (so the output layer's are under
`model/mlp/logits/`); train adds its optimizer's and loop's own. The loop state is a JSON
object in the `state` array. Works on any objects with `numpy()`, `assign()` and `shape`,
so this module needs no TensorFlow.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bnexp.errors import RunFileError


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


def load(path: Path) -> Checkpoint:
    """Read a checkpoint; RunFileError naming the file when it is missing or damaged."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
    except FileNotFoundError:
        raise RunFileError(f"{path} is missing: the run saved no weights") from None
    except Exception:  # numpy raises many types for a damaged zip
        raise RunFileError(f"{path} is corrupt: not a readable npz archive") from None
    try:
        state = json.loads(arrays["state"].tobytes()) if "state" in arrays else None
    except ValueError:  # JSON and UTF-8 decoding errors alike
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise RunFileError(f"{path} is corrupt: no readable loop state")
    return Checkpoint(Path(path), arrays, state)
