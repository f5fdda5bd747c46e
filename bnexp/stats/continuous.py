"""Continuous values: which t-test fits two seed groups, its estimate, interval and effect size."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from bnexp.stats.common import CI_LEVEL, MIN_SEEDS, ZERO_SPREAD, Note, Remark, _array
from bnexp.stats.ranks import rank_test, superiority


@dataclass(frozen=True)
class Design:
    """Which test fits two groups, and their values in the order that test needs."""

    test: str  # "paired" or "welch"
    a: np.ndarray  # baseline / "than" values; aligned by seed when paired
    b: np.ndarray  # group / "better" values
    notes: tuple[Remark, ...]  # why a number is missing, or how the test was chosen

    @property
    def n_a(self) -> int:
        return len(self.a)

    @property
    def n_b(self) -> int:
        return len(self.b)


@dataclass(frozen=True)
class Estimate:
    """What the data say about b − a before any verdict or multiple-testing correction."""

    test: str  # "paired", "welch", "fisher", or "none" when there is no p-value
    n_a: int
    n_b: int
    difference: float
    ci_low: float | None
    ci_high: float | None
    p: float | None  # two-sided
    effect_size: float | None  # d_z, Cohen's d, or for fisher the difference of proportions
    noise_sd: float | None  # the seed-to-seed SD the seed advisor plans with (t-tests only)
    notes: tuple[Remark, ...]  # why a number is missing, or how the test was chosen
    ci_of: str | None = "difference"  # what ci_low/ci_high bound: difference, odds_ratio, or None
    ratio: float | None = None  # Fisher: the conditional MLE odds ratio (None when infinite)
    sds: tuple[float, float] | None = None  # Welch: each side's SD, for the simulated advisor
    interval: object = field(default=None, compare=False, repr=False)  # level -> (low, high)


def design(a: Mapping[int, float], b: Mapping[int, float]) -> Design:
    """Paired on matched seeds when both groups hold the same seeds, else Welch on all values."""
    if not a or not b:
        raise ValueError("each seed group needs at least one value")
    values = [*a.values(), *b.values()]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("seed-group values must be finite; leave out runs without a value")
    if a.keys() == b.keys():
        seeds = sorted(a)
        return Design("paired", _array(a[s] for s in seeds), _array(b[s] for s in seeds), ())
    shared = len(a.keys() & b.keys())
    notes = (Remark(Note.PARTIAL_OVERLAP, (shared,)),) if shared else ()
    return Design("welch", _array(a.values()), _array(b.values()), notes)


def ttest(d: Design, *, shift: float = 0.0, alternative: str = "two-sided"):
    """SciPy's t-test of mean(b − a) against `shift`; its result also gives the interval.

    Shifting b by a constant moves the tested mean difference without touching
    the spread, which is how TOST's one-sided tests against ±margin are run.
    """
    from scipy import stats  # here, not at the top: a comparison with nothing to test imports no SciPy

    if d.test == "paired":
        return stats.ttest_rel(d.b - shift, d.a, alternative=alternative)
    with warnings.catch_warnings():
        # One constant group warns of "catastrophic cancellation" in its variance; the
        # other group's spread dominates the standard error, so the test is sound.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        return stats.ttest_ind(d.b - shift, d.a, equal_var=False, alternative=alternative)


def estimate(d: Design, ci_level: float = CI_LEVEL) -> Estimate:
    """Difference, interval, two-sided p and effect size, or the reason there are none."""
    difference = float(np.mean(d.b) - np.mean(d.a))
    reason = _untestable(d)
    if reason is not None and reason.note == Note.ZERO_VARIANCE:  # no t-test: the exact rank test still can
        test, p, _ = rank_test(d.a, d.b, d.test == "paired")
        (ps, _, _, _), _ = superiority(d.a, d.b, d.test == "paired", ci_level)
        return Estimate(test, d.n_a, d.n_b, difference, None, None, p, ps, None,
                        (Remark(Note.ZERO_VARIANCE_RANKS), *d.notes), ci_of=None)
    if reason:
        return Estimate("none", d.n_a, d.n_b, difference, None, None, None, None, None, (reason,), ci_of=None)
    result = ttest(d)
    ci = result.confidence_interval(ci_level)
    sd = _noise_sd(d)
    sds = (float(np.std(d.a, ddof=1)), float(np.std(d.b, ddof=1))) if d.test == "welch" else None

    def interval(level):
        ci = ttest(d).confidence_interval(level)
        return float(ci.low), float(ci.high)

    return Estimate(d.test, d.n_a, d.n_b, difference, float(ci.low), float(ci.high),
                    float(result.pvalue), _effect_size(d), sd, d.notes, sds=sds, interval=interval)


def _untestable(d: Design) -> Remark | None:
    """Why no t-test can be run (too few seeds, zero variance), or None."""
    if min(d.n_a, d.n_b) < MIN_SEEDS:
        return Remark(Note.TOO_FEW_SEEDS, (min(d.n_a, d.n_b),))
    scale = max(np.max(np.abs(d.a)), np.max(np.abs(d.b)))
    parts = [d.b - d.a] if d.test == "paired" else [d.a, d.b]
    if all(np.ptp(x) <= ZERO_SPREAD * scale for x in parts):
        return Remark(Note.ZERO_VARIANCE)
    return None


def _effect_size(d: Design) -> float:
    """Paired: d_z = mean / SD of the differences. Welch: Cohen's d over the pooled SD.

    Neither is Hedges-corrected: with few seeds |d| overstates the true effect
    (by about 10% for two groups of 5, 20% for 5 pairs). No verdict rests on it.
    """
    if d.test == "paired":
        diff = d.b - d.a
        return float(np.mean(diff) / np.std(diff, ddof=1))
    pooled = ((d.n_a - 1) * np.var(d.a, ddof=1) + (d.n_b - 1) * np.var(d.b, ddof=1)) / (
        d.n_a + d.n_b - 2)
    return float((np.mean(d.b) - np.mean(d.a)) / np.sqrt(pooled))


def _noise_sd(d: Design) -> float:
    """The SD that sets power: of the paired differences, or the groups' root-mean variance.

    For Welch the advisor plans equal groups, where Welch's test is close to
    Student's with the average of the two variances.
    """
    if d.test == "paired":
        return float(np.std(d.b - d.a, ddof=1))
    return float(np.sqrt((np.var(d.a, ddof=1) + np.var(d.b, ddof=1)) / 2))
