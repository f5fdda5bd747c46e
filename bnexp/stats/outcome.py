"""One comparison's result of any kind (`Outcome`), its sides, and the rank-test outcome."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bnexp.stats.common import Reason, Verdict
from bnexp.stats.holm import holm_level
from bnexp.stats.ranks import rank_test, superiority, worst_last


@dataclass(frozen=True)
class Outcome:
    """One comparison of b against a, of any kind: the test, its p, its interval, its verdict.

    `difference` is b − a: of means (t-tests), of proportions (Fisher), of Kaplan–Meier
    medians (time to event); None when failures count as worst (no shift exists) or a
    median is not reached. `ci_low`/`ci_high` are at `ci_level`, the level the verdict
    uses (Holm: `holm_level`), and `ci_of` says what they bound: `difference` or
    `odds_ratio` (Fisher). Rank tests have no interval for a difference; their effect is
    `effect_name` = `probability_of_superiority` (unpaired: P(b > a) + ½P(b = a)) or
    `pairs_b_higher` (paired: share of untied pairs where b is higher), with
    `effect_low`/`effect_high` at `ci_level`. `reasons` says why any of these is None.
    """

    test: str  # paired | welch | mann_whitney | wilcoxon | log_rank | fisher | none
    exact: bool  # p from the exact (permutation or conditional) distribution
    p: float | None
    p_adjusted: float | None
    verdict: Verdict
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    ci_of: str | None
    effect: float | None
    effect_name: str | None
    effect_low: float | None
    effect_high: float | None
    n_a: int
    n_b: int
    n_failed_a: int
    n_failed_b: int
    n_censored_a: int
    n_censored_b: int
    median_a: float | None
    median_b: float | None
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON-safe: every float finite, enums as their strings."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["verdict"], out["reasons"] = str(self.verdict), [str(r) for r in self.reasons]
        for k, v in out.items():
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{k} = {v} is not JSON-safe")  # a bug: Outcome keeps None instead
        return out


@dataclass(frozen=True)
class _Sides:
    """Both sides' values with failures and censoring, aligned by seed when paired."""

    a: np.ndarray
    b: np.ndarray
    failed_a: np.ndarray  # bool
    failed_b: np.ndarray
    censored_a: np.ndarray  # bool: never reached the event by this (last) step
    censored_b: np.ndarray
    paired: bool


def _sides(a, b, failed_a, failed_b, censored_a, censored_b, paired) -> _Sides:
    def side(values, failed, censored, name):
        values = np.asarray(values, dtype=float)
        if isinstance(failed, (int, np.integer)):
            if failed and paired:
                raise ValueError(f"paired: give failed_{name} as a mask over the values, not a count")
            values = np.concatenate([values, np.full(int(failed), np.nan)])
            failed = np.arange(len(values)) >= len(values) - int(failed)
        failed = np.asarray(failed, dtype=bool)
        censored = np.zeros(len(values), bool) if len(censored) == 0 else np.asarray(censored, bool)
        censored = np.concatenate([censored, np.zeros(len(values) - len(censored), bool)])
        if failed.shape != values.shape or censored.shape != values.shape:
            raise ValueError(f"failed_{name} and censored_{name} must be masks over {name}'s values")
        if not np.all(np.isfinite(values[~failed])):
            raise ValueError("values must be finite; mark a run without a value as failed")
        return values, failed, censored

    va, fa, ca = side(a, failed_a, censored_a, "a")
    vb, fb, cb = side(b, failed_b, censored_b, "b")
    if paired and len(va) != len(vb):
        raise ValueError("paired sides must hold the same seeds in the same order")
    return _Sides(va, vb, fa, fb, ca, cb, paired)


def _outcome(test, exact, p, p_adjusted, alpha, counts, *, difference=None, ci=(None, None),
             ci_of=None, effect=(None, None, None, None), medians=(None, None), reasons=(),
             sides_ci=1) -> Outcome:
    """Assemble an Outcome: verdict from the adjusted p, non-finite numbers to None + reason."""
    q = (p if p_adjusted is None else p_adjusted) if p is not None else None
    if test == "none":
        verdict = Verdict.TOO_FEW_SEEDS if Reason.TOO_FEW_SEEDS in reasons else Verdict.UNTESTABLE
    else:
        verdict = Verdict.DISTINGUISHABLE if q < alpha else Verdict.NOT_DISTINGUISHABLE
    reasons = list(reasons)

    def finite(x):
        if x is not None and not math.isfinite(x):
            if Reason.UNBOUNDED not in reasons:
                reasons.append(Reason.UNBOUNDED)
            return None
        return x

    value, name, low, high = effect
    return Outcome(test, exact, p, q, verdict, finite(difference), finite(ci[0]), finite(ci[1]),
                   holm_level(p, q, alpha, sides_ci), ci_of, finite(value), name, finite(low), finite(high),
                   counts["n_a"], counts["n_b"], counts["n_failed_a"], counts["n_failed_b"],
                   counts["n_censored_a"], counts["n_censored_b"], finite(medians[0]), finite(medians[1]),
                   tuple(reasons))


def _rank_outcome(sides: _Sides, higher_is_better, alpha, p_adjusted, counts, *, difference,
                  worst=None, reasons=(), medians=(None, None)) -> Outcome:
    worst_a, worst_b = worst if worst is not None else (sides.failed_a, sides.failed_b)
    a, b = worst_last(sides.a, sides.b, worst_a, worst_b, higher_is_better)
    test, p, exact = rank_test(a, b, sides.paired)
    effect, why = superiority(a, b, sides.paired, holm_level(p, p_adjusted, alpha))
    return _outcome(test, exact, p, p_adjusted, alpha, counts, difference=difference, effect=effect,
                    medians=medians, reasons=tuple(reasons) + ((why,) if why else ()))
