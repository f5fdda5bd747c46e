"""The seed-group statistics' constants and enums: levels, seed limits, kinds, verdicts and reasons.

No SciPy, no statsmodels: every part of bnexp.stats imports this, and so may the wording.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


ALPHA = 0.05
CI_LEVEL = 0.95
POWER = 0.8
MIN_SEEDS = 3
MAX_SEEDS = 1000
# Spread below this fraction of the values' magnitude is rounding error, not seed
# noise: 0.97 − 0.96 and 0.98 − 0.97 differ in the 17th digit, and scipy would
# turn that into t ≈ 1e15 and p = 0.
ZERO_SPREAD = 1e-10



class Note(StrEnum):
    """What a result's note says (`Remark`); bnexp.wording writes it in words (`note_text`)."""

    TOO_FEW_SEEDS = "too_few_seeds"  # values: (n,), the smaller side
    ZERO_VARIANCE = "zero_variance"  # no spread on either side: no t-test
    ZERO_VARIANCE_RANKS = "zero_variance_ranks"  # so the exact rank test decided
    PARTIAL_OVERLAP = "partial_overlap"  # values: (k,), the seeds the groups share
    UNBOUNDED_RATIO = "unbounded_ratio"  # Fisher at 0 of n: an end of the odds ratio's interval is null
    NO_EQUIVALENCE = "no_equivalence"  # TOST needs a t-test: the claim is untestable
    FAILURES_RANKED_WORST = "failures_ranked_worst"  # compare; values: (failed b, failed a)
    FAILURES_WORST_OUTCOME = "failures_worst_outcome"  # claims; values: (failed better, failed than)
    NEVER_REACHED = "never_reached"  # values: (censored b, censored a)
    MEDIANS = "medians"  # Kaplan–Meier medians; values: (median b, median a), None when not reached


@dataclass(frozen=True)
class Remark:
    """One note on a result: what it says, and the numbers its words need."""

    note: Note
    values: tuple = ()


class Kind(StrEnum):
    """What a metric measures, which decides the test (bnexp.metrics gives each metric one)."""

    CONTINUOUS = "continuous"
    BINARY = "binary"
    TIME_TO_EVENT = "time_to_event"


class Verdict(StrEnum):
    DISTINGUISHABLE = "distinguishable"
    NOT_DISTINGUISHABLE = "not_distinguishable"
    TOO_FEW_SEEDS = "too_few_seeds"
    UNTESTABLE = "untestable"


class Reason(StrEnum):
    """Why a number is None (JSON holds null, never NaN or Infinity), or why there is no test."""

    TOO_FEW_SEEDS = "too_few_seeds"  # fewer than MIN_SEEDS values on a side
    UNBOUNDED = "unbounded"  # an interval end or an odds ratio is infinite
    SHIFT_UNDEFINED = "shift_undefined"  # failures count as worst: no mean difference exists
    MEDIAN_NOT_REACHED = "median_not_reached"  # the survival curve never falls to 1/2
    DEGENERATE_INTERVAL = "degenerate_interval"  # Brunner–Munzel variance 0 (complete separation)
    EVERY_PAIR_TIES = "every_pair_ties"  # no untied pair: no proportion of wins
    NO_EQUIVALENCE_TEST = "no_equivalence_test"  # TOST needs a t-test; ranks have none here
    NOT_ZERO_ONE = "not_zero_one"  # a binary metric with values other than 0 and 1


RANK_TESTS = ("mann_whitney", "wilcoxon", "log_rank")
MAX_EXACT = 200_000  # arrangements enumerated for an exact permutation p (10 v 10 is 184,756)
LOG_RANK_EXACT = 5_000  # the log-rank statistic is not vectorized: Monte Carlo above this
LOG_RANK_RESAMPLES = 4_999


class Advice(StrEnum):
    """Why the seed advisor gives no number."""

    DECIDED = "decided"  # the verdict is already settled
    NO_DIFFERENCE = "no_difference"  # the observed difference is 0 (or no spread to plan with)
    BEYOND_MAX = "beyond_max"  # more than MAX_SEEDS per side
    NOT_PLANNED = "not_planned"  # rank and Fisher tests: the advisor plans t-tests only


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _clean(x: np.ndarray) -> np.ndarray:
    """Values to 12 significant digits: rounding noise (0.94 − 0.90 vs 0.95 − 0.91) must not
    break a tie that a rank test would otherwise count."""
    return np.array([float(f"{v:.12g}") for v in np.asarray(x, dtype=float)])


def _array(values) -> np.ndarray:
    return np.fromiter(values, dtype=float)
