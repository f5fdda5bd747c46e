"""Rank tests: failures and "never" as the worst outcome, ties exact; the effect they support."""

from __future__ import annotations

import math

import numpy as np

from bnexp.stats.common import MAX_EXACT, Reason, _clean


def worst_last(a: np.ndarray, b: np.ndarray, worst_a: np.ndarray, worst_b: np.ndarray,
               higher_is_better: bool) -> tuple[np.ndarray, np.ndarray]:
    """The values with each worst run (failed, or never reached) replaced by one value
    beyond every real one, on the worse end, so ranks put them last and tie them together.

    Rank tests see only the order, so the replacement's size does not matter to
    Mann–Whitney; for Wilcoxon's signed ranks it puts a pair with one failure among
    the largest differences, the weight "worst" should have.
    """
    real = np.concatenate([a[~worst_a], b[~worst_b]])
    low, high = (real.min(), real.max()) if real.size else (0.0, 0.0)
    span = high - low + 1.0
    sentinel = low - span if higher_is_better else high + span
    return np.where(worst_a, sentinel, a), np.where(worst_b, sentinel, b)


def rank_test(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[str, float, bool]:
    """(test, two-sided p, exact): Mann–Whitney U, or Wilcoxon's signed-rank on b − a.

    Where nothing ties, SciPy's exact null distribution. With ties, exact by enumerating
    every arrangement (`scipy.stats.PermutationMethod` with n_resamples=inf) up to
    MAX_EXACT of them; beyond that the tie-corrected normal approximation (departure: not
    exact, said by `exact=False`).
    """
    from scipy import stats

    a, b = _clean(a), _clean(b)
    if paired:
        d = _clean(b - a)
        ties = len(np.unique(np.abs(d))) < len(d) or np.any(d == 0)
        method = _method(2 ** len(d), ties)
        return "wilcoxon", float(stats.wilcoxon(d, method=method).pvalue), method != "asymptotic"
    ties = len(np.unique(np.concatenate([a, b]))) < len(a) + len(b)
    method = _method(math.comb(len(a) + len(b), len(a)), ties)
    return "mann_whitney", float(stats.mannwhitneyu(b, a, method=method).pvalue), method != "asymptotic"


def _method(arrangements: int, ties: bool):
    """SciPy's exact null distribution where nothing ties (the same p as enumerating, and
    far cheaper); with ties, every arrangement enumerated up to MAX_EXACT, else the normal
    approximation."""
    from scipy import stats

    if not ties:
        return "exact"
    return stats.PermutationMethod(n_resamples=np.inf) if arrangements <= MAX_EXACT else "asymptotic"


def superiority(a: np.ndarray, b: np.ndarray, paired: bool, level: float):
    """The effect a rank test supports, with its interval at `level`, and a reason if None.

    Unpaired: P(b > a) + ½P(b = a), with Brunner & Munzel's (2000) interval
    (`statsmodels.stats.nonparametric.rank_compare_2indep`), clipped to [0, 1] (it is a
    normal-theory interval and can overshoot); None when its variance is 0. Paired: the
    share of untied pairs where b is higher, with its Wilson interval
    (`scipy.stats.binomtest(...).proportion_ci`). Departure: neither interval inverts
    the exact test itself, so at the margin it can disagree with the verdict; the
    verdict rests on the p only.
    """
    a, b = _clean(a), _clean(b)
    if paired:
        from scipy import stats

        d = _clean(b - a)
        untied = int(np.sum(d != 0))
        if untied == 0:
            return (None, "pairs_b_higher", None, None), Reason.EVERY_PAIR_TIES
        k = int(np.sum(d > 0))
        ci = stats.binomtest(k, untied).proportion_ci(confidence_level=level, method="wilson")
        return (k / untied, "pairs_b_higher", float(ci.low), float(ci.high)), None
    import warnings as _w

    from statsmodels.stats.nonparametric import rank_compare_2indep

    with _w.catch_warnings():
        _w.simplefilter("ignore", RuntimeWarning)
        r = rank_compare_2indep(b, a)
        low, high = r.conf_int(alpha=1 - level)
    ps = float(r.prob1)
    if not (np.isfinite(low) and np.isfinite(high)):
        return (ps, "probability_of_superiority", None, None), Reason.DEGENERATE_INTERVAL
    return (ps, "probability_of_superiority", max(0.0, float(low)), min(1.0, float(high))), None
