"""summary.json: where a run stands and what it reached, as one dataclass.

Train writes it when a session starts (status `running`) and when it ends; compare,
sweep and eval read it. Keys this version does not know (written by a newer or an older
bnexp) are kept in `extra` and written back unchanged; keys it knows but the file lacks
read as their defaults. Adding a field is one line here, plus the code that fills it in.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from bnexp.errors import RunFileError


@dataclass
class Summary:
    status: str = "running"  # running, completed, interrupted, diverged or failed
    name: str | None = None
    seed: int | None = None
    message: str | None = None
    test_accuracy: float | None = None  # at the last evaluation
    test_loss: float | None = None
    train_set_accuracy: float | None = None  # the fixed training subset, inference mode, last evaluation
    train_set_loss: float | None = None
    generalization_gap: float | None = None  # train_set_accuracy − test_accuracy
    # A completed run no better than always predicting the most frequent test class, plus a
    # margin (bnexp.metrics.learning_threshold); None before the run completes.
    failed_to_learn: bool | None = None
    best_test_accuracy: float | None = None
    best_step: int | None = None
    steps: int | None = None  # steps trained so far
    total_steps: int | None = None
    epochs: float | None = None
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    wall_seconds: float | None = None  # over every session of the run
    train_seconds: float | None = None  # inside the compiled steps only
    seconds_per_epoch: float | None = None  # median over whole epochs
    examples_per_second: float | None = None
    started_at: str | None = None
    ended_at: str | None = None
    data: dict | None = None  # dataset, source, train_examples, test_examples
    versions: dict | None = None
    git_commit: str | None = None
    host: str | None = None
    epoch_seconds: list | None = None
    sessions: int | None = None
    session_seconds: float | None = None
    signal: str | None = None  # the signal that interrupted the run
    extra: dict = field(default_factory=dict)  # keys of other bnexp versions, kept as they were

    def to_json(self) -> dict:
        known = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **known}

    @classmethod
    def from_json(cls, doc: dict, path: Path) -> "Summary":
        """The summary in `doc`; RunFileError naming `path` when a known number is not one."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        for key in NUMBERS:
            value = doc.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise RunFileError(f"{path} is corrupt: {key} is {value!r}, expected a number or null")
        return cls(**{k: v for k, v in doc.items() if k in names},
                   extra={k: v for k, v in doc.items() if k not in names})


_HINTS = typing.get_type_hints(Summary)
NUMBERS = tuple(name for name, hint in _HINTS.items() if hint in (int | None, float | None))
