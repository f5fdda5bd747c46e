"""0/1 outcomes: Fisher's exact test, central two-sided, with the odds ratio's exact interval."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bnexp.stats.common import CI_LEVEL, MIN_SEEDS, Note, Reason, Remark, _array, _finite
from bnexp.stats.continuous import Estimate
from bnexp.stats.holm import holm_level
from bnexp.stats.outcome import Outcome, _outcome, _Sides


def fisher(a: Mapping[int, float], b: Mapping[int, float], ci_level: float = CI_LEVEL) -> Estimate:
    """Fisher's exact test of two groups of 0/1 values: is the proportion of ones different?

    The difference is that of the proportions, p_b − p_a, and so is the effect size. The
    p and the interval are those of `fisher_central`: the conditional odds ratio's exact
    interval, which inverts the same conditional test, so it excludes 1 exactly when
    p < 1 − ci_level (a risk-difference interval could disagree with the test). Its
    infinite ends (0 of n on a side) are None, with the reason in its notes.
    Runs are counted as independent even when both sides share seeds: shared seeds can
    only correlate the sides positively, which makes the test conservative.
    """
    values = _array([*a.values(), *b.values()])
    if not np.all((values == 0) | (values == 1)):
        raise ValueError("Fisher's exact test takes 0/1 values")
    n_a, n_b = len(a), len(b)
    k_a, k_b = int(sum(a.values())), int(sum(b.values()))
    difference = k_b / n_b - k_a / n_a
    if min(n_a, n_b) < MIN_SEEDS:
        return Estimate("none", n_a, n_b, difference, None, None, None, None, None,
                        (Remark(Note.TOO_FEW_SEEDS, (min(n_a, n_b),)),), ci_of=None)

    def interval(level):
        _, _, low, high = fisher_central(k_a, n_a, k_b, n_b, level)
        return _finite(low), _finite(high)

    p, ratio, _, _ = fisher_central(k_a, n_a, k_b, n_b, ci_level)
    low, high = interval(ci_level)
    notes = () if None not in (low, high, _finite(ratio)) else (Remark(Note.UNBOUNDED_RATIO),)
    return Estimate("fisher", n_a, n_b, difference, low, high, p, difference, None, notes,
                    ci_of="odds_ratio", ratio=_finite(ratio), interval=interval)


def fisher_central(k_a: int, n_a: int, k_b: int, n_b: int, level: float = CI_LEVEL):
    """Fisher's exact test as the conditional odds ratio's interval inverts it.

    p = min(1, 2·min(one-sided p)) (`scipy.stats.fisher_exact` with alternative less
    and greater): the "central" test, whose 1 − γ interval for the conditional MLE
    odds ratio (`scipy.stats.contingency.odds_ratio(kind="conditional")`) excludes 1
    exactly when p < γ. Departure: the usual two-sided ("minimum likelihood") p can be
    smaller; only this one agrees with its interval. Returns (p, odds ratio, low, high);
    b is the first row, so the odds ratio is that of a one on side b.
    """
    from scipy import stats
    from scipy.stats.contingency import odds_ratio

    table = [[k_b, n_b - k_b], [k_a, n_a - k_a]]
    one_sided = min(stats.fisher_exact(table, alternative=alt).pvalue for alt in ("less", "greater"))
    result = odds_ratio(table, kind="conditional")
    ci = result.confidence_interval(confidence_level=level)
    return min(1.0, 2 * float(one_sided)), float(result.statistic), float(ci.low), float(ci.high)


def _binary_outcome(sides: _Sides, higher_is_better, alpha, p_adjusted, counts) -> Outcome:
    """A failed run counts as the worse value (0 when higher is better, else 1)."""
    worse = 0.0 if higher_is_better else 1.0
    a, b = np.where(sides.failed_a, worse, sides.a), np.where(sides.failed_b, worse, sides.b)
    if not np.all(np.isin(np.concatenate([a, b]), (0.0, 1.0))):
        return _outcome("none", False, None, p_adjusted, alpha, counts, reasons=(Reason.NOT_ZERO_ONE,))
    k_a, k_b = int(a.sum()), int(b.sum())
    p, _, _, _ = fisher_central(k_a, len(a), k_b, len(b))
    _, ratio, low, high = fisher_central(k_a, len(a), k_b, len(b), holm_level(p, p_adjusted, alpha))
    return _outcome("fisher", True, p, p_adjusted, alpha, counts, difference=k_b / len(b) - k_a / len(a),
                    ci=(low, high), ci_of="odds_ratio", effect=(ratio, "odds_ratio", low, high))
