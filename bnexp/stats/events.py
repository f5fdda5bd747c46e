"""Time to an event: runs that never got there are censored at their last step."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from bnexp.stats.common import LOG_RANK_EXACT, LOG_RANK_RESAMPLES, Reason
from bnexp.stats.holm import holm_level
from bnexp.stats.outcome import Outcome, _outcome, _rank_outcome, _Sides
from bnexp.stats.ranks import superiority, worst_last


def median_time(times: np.ndarray, never: np.ndarray) -> float | None:
    """Kaplan–Meier median: the first time the estimated share still waiting is ≤ ½
    (`scipy.stats.ecdf` of `CensoredData`, runs that never got there right-censored at
    their last step); None when the curve never falls that far."""
    from scipy import stats

    data = stats.CensoredData(uncensored=times[~never], right=times[never])
    if not np.any(~never):
        return None
    sf = stats.ecdf(data).sf
    reached = sf.quantiles[sf.probabilities <= 0.5]
    return float(reached[0]) if reached.size else None


def _time_outcome(sides: _Sides, alpha, p_adjusted, counts) -> Outcome:
    """Time to event: "never" (censored, or failed) is the worst outcome. Always unpaired:
    the censored-data tests (Gehan, log-rank) are two-sample tests, and a paired signed-rank
    test on 5 seeds could never go below p = 0.0625; shared seeds can only correlate the
    sides positively, which makes an unpaired test conservative.

    When every "never" run stopped at or after every run that got there (a sweep's runs
    share their steps), "never" ranks last for certain, and the exact rank test with
    never as the worst rank is Gehan's generalised Wilcoxon test for censored data.
    Otherwise the order is unknown beyond a censoring time, and the test is the log-rank
    test (Peto & Peto 1972; `scipy.stats.logrank`) by permutation of the group labels,
    exact up to LOG_RANK_EXACT arrangements, else Monte Carlo (seeded) — never the
    asymptotic one, anti-conservative at 3 v 3.
    """
    sides = replace(sides, paired=False)
    never_a, never_b = sides.censored_a | sides.failed_a, sides.censored_b | sides.failed_b
    times_a = np.where(sides.failed_a, np.inf, sides.a)
    times_b = np.where(sides.failed_b, np.inf, sides.b)
    reached = np.concatenate([times_a[~never_a], times_b[~never_b]])
    stopped = np.concatenate([times_a[never_a], times_b[never_b]])
    medians = (median_time(_finite_times(times_a, sides), never_a), median_time(_finite_times(times_b, sides), never_b))
    reasons = () if None not in medians else (Reason.MEDIAN_NOT_REACHED,)
    difference = None if None in medians else medians[1] - medians[0]
    if not reached.size or not stopped.size or stopped.min() >= reached.max():
        return _rank_outcome(sides, False, alpha, p_adjusted, counts, difference=difference,
                             worst=(never_a, never_b), reasons=reasons, medians=medians)
    p, exact = _log_rank_permutation(_finite_times(times_a, sides), never_a,
                                     _finite_times(times_b, sides), never_b)
    effect, why = superiority(*worst_last(sides.a, sides.b, never_a, never_b, False), False,
                              holm_level(p, p_adjusted, alpha))
    return _outcome("log_rank", exact, p, p_adjusted, alpha, counts, difference=difference, effect=effect,
                    medians=medians, reasons=reasons + ((why,) if why else ()))


def _finite_times(times: np.ndarray, sides: _Sides) -> np.ndarray:
    """A failed run's time: censored at the latest time seen (it never got there)."""
    finite = np.concatenate([sides.a[~sides.failed_a], sides.b[~sides.failed_b]])
    return np.where(np.isfinite(times), times, finite.max() if finite.size else 0.0)


def _log_rank_permutation(t_a, never_a, t_b, never_b) -> tuple[float, bool]:
    """Two-sided p of the log-rank statistic over relabellings (`scipy.stats.permutation_test`)."""
    from scipy import stats

    times, never = np.concatenate([t_a, t_b]), np.concatenate([never_a, never_b])

    def statistic(ia, ib):
        ia, ib = ia.astype(int), ib.astype(int)
        x = stats.CensoredData(uncensored=times[ia][~never[ia]], right=times[ia][never[ia]])
        y = stats.CensoredData(uncensored=times[ib][~never[ib]], right=times[ib][never[ib]])
        return stats.logrank(x, y).statistic

    n_a = len(t_a)
    exact = math.comb(len(times), n_a) <= LOG_RANK_EXACT
    result = stats.permutation_test((np.arange(n_a), np.arange(n_a, len(times))), statistic,
                                    permutation_type="independent", vectorized=False,
                                    n_resamples=np.inf if exact else LOG_RANK_RESAMPLES, rng=0)
    return float(result.pvalue), exact
