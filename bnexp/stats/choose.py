"""Outcomes of any kind: `compare_outcomes` picks the test that fits the data, and what a design can decide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from bnexp.stats.binary import _binary_outcome, fisher_central
from bnexp.stats.common import ALPHA, MIN_SEEDS, Kind, Reason
from bnexp.stats.continuous import Design, _effect_size, _untestable, ttest
from bnexp.stats.events import _time_outcome
from bnexp.stats.holm import holm, holm_level
from bnexp.stats.outcome import Outcome, _outcome, _rank_outcome, _sides


def compare_outcomes(a: Sequence[float], b: Sequence[float], kind: str = Kind.CONTINUOUS, *,
                     failed_a: int | Sequence[bool] = 0, failed_b: int | Sequence[bool] = 0,
                     censored_a: Sequence[bool] = (), censored_b: Sequence[bool] = (),
                     paired: bool = False, higher_is_better: bool = True,
                     alpha: float = ALPHA, p_adjusted: float | None = None) -> Outcome:
    """Compare b against a with the test that fits `kind`, failures and censoring.

    `a`, `b`: one value per run. `failed_*`: runs that diverged or failed to learn,
    either a count (unpaired: they are added to the side) or a mask over the values
    (paired: the value there is ignored). They count as the worst outcome (Mann &
    Whitney 1947 rank test, or Wilcoxon 1945 signed-rank paired). `censored_*` (time to
    event): a mask of runs that never reached the event; their value is their last step.
    `paired`: a[i] and b[i] share a seed. `p_adjusted` (Holm, from `judge_outcomes`)
    sets the verdict and the interval's level; without it p is its own adjustment.
    """
    sides = _sides(a, b, failed_a, failed_b, censored_a, censored_b, paired)
    n_a, n_b = len(sides.a), len(sides.b)
    counts = dict(n_a=n_a, n_b=n_b, n_failed_a=int(sides.failed_a.sum()), n_failed_b=int(sides.failed_b.sum()),
                  n_censored_a=int(sides.censored_a.sum()), n_censored_b=int(sides.censored_b.sum()))
    if min(n_a, n_b) < MIN_SEEDS:
        return _outcome("none", False, None, p_adjusted, alpha, counts, reasons=(Reason.TOO_FEW_SEEDS,))
    if kind == Kind.BINARY:
        return _binary_outcome(sides, higher_is_better, alpha, p_adjusted, counts)
    if kind == Kind.TIME_TO_EVENT:
        return _time_outcome(sides, alpha, p_adjusted, counts)
    if counts["n_failed_a"] or counts["n_failed_b"]:
        return _rank_outcome(sides, higher_is_better, alpha, p_adjusted, counts, difference=None,
                             reasons=(Reason.SHIFT_UNDEFINED,))
    d = Design("paired" if paired else "welch", sides.a, sides.b, None)
    if _untestable(d):  # zero variance: no t-test, so an exact rank test
        return _rank_outcome(sides, higher_is_better, alpha, p_adjusted, counts,
                             difference=float(np.mean(sides.b) - np.mean(sides.a)))
    p = float(ttest(d).pvalue)
    level = holm_level(p, p_adjusted, alpha)
    ci = ttest(d).confidence_interval(level)
    return _outcome(d.test, False, p, p_adjusted, alpha, counts, difference=float(np.mean(d.b) - np.mean(d.a)),
                    ci=(float(ci.low), float(ci.high)), ci_of="difference",
                    effect=(_effect_size(d), "d_z" if paired else "cohen_d", None, None))


def judge_outcomes(calls: Sequence[Mapping], *, alpha: float = ALPHA) -> list[Outcome]:
    """A Holm family (Holm 1979): each mapping holds `compare_outcomes`' arguments.

    Each is tested once for its p; the family is adjusted; each is then judged, with
    its interval at `holm_level`, on its adjusted p.
    """
    first = [compare_outcomes(**call, alpha=alpha) for call in calls]
    adjusted = holm([o.p for o in first])
    return [compare_outcomes(**call, alpha=alpha, p_adjusted=q) if q is not None else o
            for call, o, q in zip(calls, first, adjusted)]


def smallest_p(test: str, n_a: int, n_b: int) -> float:
    """The smallest two-sided p `test` can give with these seeds: its p on the most
    extreme data possible (each test run by SciPy on that data, no formula of our own).

    Fisher: every run of one side a one, none of the other (2/C(n_a + n_b, n_a)).
    Mann–Whitney (and the time-to-event rank test): complete separation, the same.
    Wilcoxon signed-rank (n_a = n_b pairs): every difference one sign, 2/2ⁿ.
    t-tests have no floor (0.0): their p falls as the spread does.
    """
    from scipy import stats

    if test in ("paired", "welch"):
        return 0.0
    if test == "fisher":
        return fisher_central(n_a, n_a, 0, n_b)[0]
    if test == "wilcoxon":
        return float(stats.wilcoxon(np.arange(1.0, n_a + 1), method="exact").pvalue)
    if test in ("mann_whitney", "log_rank"):
        return float(stats.mannwhitneyu(np.arange(n_b) + n_a, np.arange(n_a), method="exact").pvalue)
    raise ValueError(f"unknown test {test!r}")


def design_test(kind: str, paired: bool) -> str:
    """The test a claim of this kind will use when its values vary (see the module docstring)."""
    if kind == Kind.BINARY:
        return "fisher"
    if kind == Kind.TIME_TO_EVENT:
        return "mann_whitney"  # unpaired whatever the seeds: see _time_outcome
    return "paired" if paired else "welch"


def can_decide(kind: str, n_a: int, n_b: int, paired: bool, alpha: float = ALPHA) -> tuple[bool, float]:
    """(whether p < alpha is reachable at all, the smallest p) for a design, before running."""
    floor = smallest_p(design_test(kind, paired), n_a, n_b)
    return floor < alpha, floor
