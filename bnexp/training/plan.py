"""The step plan: where a run's boundaries fall, which examples each step reads, and the
loop state a checkpoint restores.

Boundaries (progress, evaluation, checkpoint, epoch end) sit at fixed step numbers, so
a resumed run cuts the steps into exactly the same calls as an uninterrupted one and,
with TensorFlow's deterministic ops, ends bit for bit the same. The example order is a
pure function of (seed, epoch), so resuming needs no random-number state either.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bnexp.config import Config

PROGRESS_EVERY = 200  # steps between progress updates (and so between interrupt checks)
TRAIN_SUBSET_SEED = 0  # fixed, not the run's seed: every run of a dataset evaluates the same examples


@dataclass
class Plan:
    """Step counts derived from the config and the data."""

    steps_per_epoch: int
    total_steps: int
    eval_every: int
    checkpoint_every: int | None
    batch_size: int

    @classmethod
    def of(cls, config: Config, train_examples: int) -> "Plan":
        t = config.train
        steps_per_epoch = train_examples // t.batch_size  # a partial batch would skew BN statistics: drop it
        total = t.steps if t.steps is not None else t.epochs * steps_per_epoch
        return cls(steps_per_epoch, total, t.eval_every or steps_per_epoch, t.checkpoint_every, t.batch_size)

    def periods(self) -> list[int]:
        """Every interval of boundaries but the end: progress, evaluation, epoch, checkpoint."""
        return [PROGRESS_EVERY, self.eval_every, self.steps_per_epoch] + ([self.checkpoint_every] if self.checkpoint_every else [])

    def next_boundary(self, step: int) -> int:
        return min([(step // k + 1) * k for k in self.periods()] + [self.total_steps])

    def previous_boundary(self, step: int) -> int:
        """The last boundary before `step` (0: the start)."""
        return max((step - 1) // k * k for k in self.periods())

    def natural_boundary(self, step: int) -> int:
        """The next boundary after `step` that the periods set, whatever the run's length."""
        return min((step // k + 1) * k for k in self.periods())

    def ends_off_grid(self, unroll: int) -> bool:
        """Whether the last compiled call ends where a longer run would not end a call, after
        steps left over from whole unrolled calls: a longer run runs those steps inside
        unrolled programs, which XLA may fuse differently (BN's moving averages then differ
        in the last bit), so extending must replay them from the call's start."""
        start = self.previous_boundary(self.total_steps)
        return self.natural_boundary(start) != self.total_steps and (self.total_steps - start) % unroll != 0

    def is_eval(self, step: int) -> bool:
        return step % self.eval_every == 0 or step % self.steps_per_epoch == 0 or step == self.total_steps

    def is_checkpoint(self, step: int) -> bool:
        regular = self.checkpoint_every is not None and step % self.checkpoint_every == 0
        return regular or step % self.steps_per_epoch == 0 or step == self.total_steps


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The example order of one epoch: a pure function of (seed, epoch), so resume needs no RNG state."""
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int32)


def train_subset(n_train: int, wanted: int) -> np.ndarray:
    """Indices of the training examples evaluated for the train-test gap, in ascending order.

    The first `wanted` of one permutation drawn with a fixed seed, independent of the
    run's seed: every run of a dataset measures the same examples (so gaps compare
    across runs), a smaller subset is part of a larger one, and a dataset stored in
    class order would still give a subset of every class.
    """
    order = np.random.default_rng(TRAIN_SUBSET_SEED).permutation(n_train)
    return np.sort(order[:min(wanted, n_train)])


@dataclass
class State:
    """Everything besides TensorFlow variables that a checkpoint must restore."""

    step: int = 0
    elapsed: float = 0.0  # wall seconds of training so far, over all sessions of this run
    train_seconds: float = 0.0
    epoch_seconds: list = field(default_factory=list)
    best_accuracy: float | None = None
    best_step: int | None = None
    last_eval: dict | None = None
    row_start_step: int = 0  # the step of the previous metrics row: the running means start there
    previous_row_step: int = 0  # the step of the row before it, and the sums that row was made of:
    row_totals: list | None = None  # a longer run's extension takes a row at the old end back with them
    sessions: int = 1

    @classmethod
    def from_checkpoint(cls, saved: dict) -> "State":
        """The state a checkpoint saved; keys of other bnexp versions are left out."""
        return cls(**{k: v for k, v in saved.items() if k in cls.__dataclass_fields__})

