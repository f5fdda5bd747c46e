"""Multiple testing: Holm's step-down adjustment and the interval level that agrees with it."""

from __future__ import annotations

from collections.abc import Sequence

from bnexp.stats.common import ALPHA


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm 1979); None entries are not in the family.

    Delegates to `statsmodels.stats.multitest.multipletests(method="holm")`: rejecting
    adjusted p < α controls the family-wise error at α without assuming independence.
    """
    present = [i for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    if not present:
        return out
    from statsmodels.stats.multitest import multipletests

    adjusted = multipletests([pvalues[i] for i in present], method="holm")[1]
    for i, q in zip(present, adjusted):
        out[i] = float(q)
    return out


def holm_level(p: float | None, p_adjusted: float | None, alpha: float = ALPHA,
               sides: int = 1) -> float:
    """The confidence level whose interval agrees with a Holm-adjusted verdict.

    A test's interval at level 1 − γ excludes the null exactly when p < γ; with
    γ = α·p/p_adjusted that is exactly when p_adjusted < α. `sides=2` is TOST's
    1 − 2γ (Schuirmann 1987). Without an adjustment (p_adjusted = p, or no p) it is
    the usual 1 − α (1 − 2α for TOST).
    """
    gamma = alpha if not p or not p_adjusted else alpha * p / p_adjusted
    return 1 - sides * gamma
