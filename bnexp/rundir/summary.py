"""summary.json: where a run stands and what it reached, as one dataclass.

Train writes it when a session starts (status `running`) and when it ends; compare,
sweep and eval read it. Keys this version does not know (written by a newer or an older
bnexp) are kept in `extra` and written back unchanged; keys it knows but the file lacks
read as their defaults. Adding a field is one line here, plus the code that fills it in.
"""

from __future__ import annotations

import dataclasses
import reprlib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from bnexp.errors import RunFileError
from bnexp.status import Status


@dataclass
class Summary:
    status: Status | str | None = Status.RUNNING  # a Status; another version's word as written
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
    hardware: dict | None = None  # rundir.provenance.hardware(): CPU model, vector level, threads
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
        for key, kinds in TYPES.items():
            value = doc.get(key)
            if value is not None and ((isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds)):
                shown = reprlib.repr(value)
                expected = "a number" if kinds == (int, float) else f"{'an' if kinds[0] is int else 'a'} {kinds[0].__name__}"
                raise RunFileError(f"{path} is corrupt: {key} is {shown}, expected {expected} or null")
        for key, fields in NESTED.items():
            for name, kinds in fields.items():
                value = (doc.get(key) or {}).get(name)
                if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
                    raise RunFileError(f"{path} is corrupt: {key}.{name} is {reprlib.repr(value)}, expected a {kinds.__name__}")
        if any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in doc.get("epoch_seconds") or []):
            raise RunFileError(f"{path} is corrupt: epoch_seconds holds something other than numbers")
        known = {k: v for k, v in doc.items() if k in names}
        if "status" in known:
            known["status"] = status_of(known["status"], path)
        return cls(**known,
                   extra={k: v for k, v in doc.items() if k not in names})


_HINTS = typing.get_type_hints(Summary)
# The parts of the dictionaries that bnexp reads.
NESTED = {"data": {"dataset": str, "source": str, "train_examples": int, "test_examples": int}}
# What each known key may hold besides null: a float may be written as an integer, never
# the other way round; a boolean is no number (only a bool field holds one).
TYPES = {name: (int, float) if hint == float | None else tuple(a for a in typing.get_args(hint) or [hint] if a is not type(None))
         for name, hint in _HINTS.items() if name not in ("extra", "status")}


def status_of(value, path: Path) -> Status | str | None:
    """summary.json's `status` as a Status; a word this version does not know (a newer
    bnexp's) stays as written, and shows as itself; RunFileError naming `path` for a
    value that is no word."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise RunFileError(f"{path} is corrupt: status is {reprlib.repr(value)}, expected a str or null")
    try:
        return Status(value)
    except ValueError:
        return value
