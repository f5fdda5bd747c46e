"""The seed advisor: how many seeds per side would reach 80% power, for the test that was run.

It plans at the Bonferroni level alpha / (family size): Holm never asks a member of
the family for less than that, so in a family the advice is an upper bound, and it
never advises fewer seeds than a comparison that missed only through the correction has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from bnexp.stats.common import ALPHA, MAX_SEEDS, MIN_SEEDS, POWER, Advice

if TYPE_CHECKING:
    from bnexp.stats.continuous import Estimate


def _advise(e: Estimate, tests, alpha: float, student_power) -> tuple[int | None, str | None]:
    """Seeds per side for POWER, for the test that was run: Student's noncentral t for the
    paired test, Welch's test simulated (`welch_seeds`, the t plan as a start)."""
    if e.test not in ("paired", "welch"):
        return None, Advice.NOT_PLANNED
    if not e.noise_sd or abs(e.difference) <= 1e-9 * e.noise_sd:  # zero, up to rounding
        return None, Advice.NO_DIFFERENCE
    guess = seeds_for_power(student_power)
    if e.test == "welch" and guess is not None:
        guess = welch_seeds(e.difference, *e.sds, alpha=alpha, tests=tests, guess=guess)
    return guess, (None if guess is not None else Advice.BEYOND_MAX)


def power(effect: float, n: int | np.ndarray, test: str, alternative: str = "two-sided",
          alpha: float = ALPHA) -> np.ndarray:
    """Power of a t-test with n seeds per group when the true shift is `effect` SDs.

    The t statistic under a true shift follows the noncentral t distribution
    (`scipy.stats.nct`). Paired: one-sample t on n differences, df = n − 1,
    noncentrality effect·√n. Welch: planned as Student's two-sample test with
    equal groups, df = 2n − 2, noncentrality effect·√(n/2). `effect` is the
    shift away from the tested null (for TOST, from ∓margin) over the noise SD.
    """
    from scipy import stats

    n = np.asarray(n, dtype=float)
    df, nc = (n - 1, effect * np.sqrt(n)) if test == "paired" else (
        2 * n - 2, effect * np.sqrt(n / 2))
    if alternative == "greater":
        return stats.nct.sf(stats.t.ppf(1 - alpha, df), df, nc)
    if alternative == "less":
        return stats.nct.cdf(-stats.t.ppf(1 - alpha, df), df, nc)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)


def seeds_for_power(power_at) -> int | None:
    """The smallest n in 3..1000 whose power reaches 80%, or None (zero difference, or > 1000).

    `power_at` maps an array of n to the power at each n.
    """
    n = np.arange(MIN_SEEDS, MAX_SEEDS + 1)
    reached = np.flatnonzero(power_at(n) >= POWER)
    return int(n[reached[0]]) if reached.size else None


def _power_two_sided(effect: float, test: str, alpha: float):
    return lambda n: power(effect, n, test, "two-sided", alpha)


def welch_power(difference: float, sd_a: float, sd_b: float, n: int, *, alpha: float = ALPHA,
                tests: Sequence[tuple[float, str]] = ((0.0, "two-sided"),), draws: int = 10_000,
                seed: int = 0) -> float:
    """Power of Welch's test with n seeds per side, by seeded simulation (Welch 1947).

    Draws a ~ N(0, sd_a), b ~ N(difference, sd_b); a draw counts as a rejection when
    every (shift, alternative) in `tests` rejects at `alpha` (`ttest_ind(b − shift, a,
    equal_var=False)`): one two-sided test, or TOST's two one-sided tests.
    """
    from scipy import stats

    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, draws, 2_000):
        rows = min(2_000, draws - start)
        a = rng.normal(0.0, sd_a, (rows, n))
        b = rng.normal(difference, sd_b, (rows, n))
        reject = np.ones(rows, bool)
        for shift, alternative in tests:
            reject &= stats.ttest_ind(b - shift, a, axis=1, equal_var=False,
                                      alternative=alternative).pvalue < alpha
        hits += int(reject.sum())
    return hits / draws


def welch_seeds(difference: float, sd_a: float, sd_b: float, *, alpha: float = ALPHA,
                tests: Sequence[tuple[float, str]] = ((0.0, "two-sided"),), guess: int | None = None) -> int | None:
    """The smallest n in MIN_SEEDS..MAX_SEEDS whose simulated Welch power reaches POWER,
    or None beyond MAX_SEEDS. Bisection on the simulated power (common random numbers:
    one seed for every n), started from `guess` (the Student-t plan, which Welch can
    only need more than with equal groups)."""
    power_at = lambda n: welch_power(difference, sd_a, sd_b, n, alpha=alpha, tests=tests)  # noqa: E731
    low = max(MIN_SEEDS, (guess or MIN_SEEDS) - 1)
    if power_at(low) >= POWER:
        return low if low == MIN_SEEDS else welch_seeds_down(power_at, low)
    high = low
    while power_at(high) < POWER:
        if high >= MAX_SEEDS:
            return None
        low, high = high, min(MAX_SEEDS, high * 2)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if power_at(mid) >= POWER else (mid, high)
    return high


def welch_seeds_down(power_at, n: int) -> int:
    while n > MIN_SEEDS and power_at(n - 1) >= POWER:
        n -= 1
    return n
