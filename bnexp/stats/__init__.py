"""Seed-group statistics: is a difference between two groups of runs more than seed noise?

Pure functions of numbers (NumPy, and SciPy and statsmodels imported inside the functions
that test: importing this package loads neither, so `bnexp compare` of runs with nothing to
test never does). No files, no TensorFlow. docs/statistics.md ("How compare decides")
works one example of each case below.

Which test, for which data (`compare_outcomes`, and the older seed-group API below):

- continuous values, no failures: paired t-test on matched seeds (`ttest_rel`) when both
  sides hold the same seeds, else Welch's t-test (`ttest_ind(equal_var=False)`);
  interval for the mean difference.
- zero variance (constant sides, or constant paired differences): no t-test, so the exact
  rank test: Mann–Whitney U (Mann & Whitney 1947) unpaired, Wilcoxon signed-rank (1945)
  paired, exact with ties by enumerating every arrangement up to MAX_EXACT of them. Never
  `not_distinguishable` without a test.
- failures (diverged, failed to learn): the worst outcome in that same exact rank test;
  the effect is the probability of superiority (unpaired) or the share of pairs won
  (paired) with its interval; a shift is undefined, so `difference` is None.
- binary (0/1): Fisher's exact test, central two-sided p, with the conditional odds
  ratio's exact interval that inverts it (`fisher_central`).
- time to event (steps to a threshold): runs that never got there are censored at their
  last step; the exact rank test with "never" as the worst outcome (Gehan's test) when
  every censored run stopped at or after every event, else the log-rank test by
  permutation; Kaplan–Meier medians (`scipy.stats.ecdf` of `CensoredData`). Unpaired.
- fewer than MIN_SEEDS values a side: `too_few_seeds`; no test applies (equivalence on
  ranks, values not 0/1 for a binary metric): `untestable` with a reason.
- several comparisons: Holm (1979) via `statsmodels.stats.multitest.multipletests`; every
  interval at `holm_level` = 1 − α·p/p_adjusted (TOST: 1 − 2α·p/p_adjusted), so it
  excludes the null exactly when the adjusted verdict says so.

The API for compare and claims (numbers and enums only; the wording lives in callers):

    compare_outcomes(a, b, kind="continuous", *, failed_a=0, failed_b=0, censored_a=(),
                     censored_b=(), paired=False, higher_is_better=True, alpha=0.05,
                     p_adjusted=None) -> Outcome
        test, exact, p, p_adjusted, verdict (Verdict), difference, ci_low, ci_high,
        ci_level, ci_of, effect, effect_name, effect_low, effect_high, n_a, n_b,
        n_failed_a/b, n_censored_a/b, median_a/b, reasons (Reason: why a number is None);
        Outcome.to_dict() is JSON-safe (never NaN or Infinity).
    judge_outcomes([kwargs of compare_outcomes, ...]) -> [Outcome]   one Holm family
    smallest_p(test, n_a, n_b) -> float;  can_decide(kind, n_a, n_b, paired) -> (bool, float)
    welch_power(...), welch_seeds(...): the Welch seed advisor, by seeded simulation
    holm(pvalues), holm_level(p, p_adjusted, alpha, sides)

The seed-group API that compare and claims call today (groups as seed → value mappings):
`compare_family`/`compare_seed_groups` → `SeedComparison`, `judge_claim_family`/`claim_verdict`
→ `ClaimResult`, `fisher`, `estimate`. Their verdict lines, the sentences a reader quotes,
are written by bnexp.wording (`comparison_sentence`, `claim_sentence`), not here.
A *group* is a mapping seed → value, one value per distinct seed; the caller merges
duplicate seeds before calling, so a repeated run never inflates n. Every difference is
*group minus baseline* (`b − a`; for claims, `better − than`).

Further rules of the seed-group API:

- Fewer than 3 seeds on either side: no test. Two seeds give one degree of freedom for
  the spread, so the spread, and any p-value built on it, moves wholesale when one seed
  changes (issue 12 saw p go from 0.13 to 0.049).
- When the groups share only some seeds, Welch still uses every value rather than
  pairing a subset: shared seeds, which share initial weights and data order, can only
  correlate positively, which makes Welch conservative, never over-confident.
- The seed advisor plans with the test it advises for: the noncentral t for the paired
  test, Welch's test simulated (`welch_seeds`); it gives a number or a reason (`Advice`),
  and a claim says when the observed difference goes against it.

The package, by job: `common` (constants, Kind, Verdict, Reason, Advice, Note and Remark: a result's
notes as enums and numbers), `holm` (the
adjustment and `holm_level`), `continuous` (t-tests: `design`, `estimate`), `ranks` (exact
rank tests, probability of superiority), `outcome` (`Outcome`), `binary` (Fisher),
`events` (time to event, censoring), `choose` (`compare_outcomes`, `judge_outcomes`,
`smallest_p`, `can_decide`), `family` (`compare_family`, `SeedComparison`), `claims`
(`Claim`, `judge_claim_family`, TOST) and `advisor` (power, seeds, the Welch simulation).
Every public name is also importable from `bnexp.stats` itself.
"""

from bnexp.stats.advisor import power, seeds_for_power, welch_power, welch_seeds
from bnexp.stats.binary import fisher, fisher_central
from bnexp.stats.choose import can_decide, compare_outcomes, design_test, judge_outcomes, smallest_p
from bnexp.stats.claims import Claim, ClaimResult, claim_verdict, judge_claim_family
from bnexp.stats.common import (ALPHA, CI_LEVEL, MAX_EXACT, MAX_SEEDS, MIN_SEEDS, POWER, RANK_TESTS, Advice, Kind, Note,
                                Reason, Remark, Verdict)
from bnexp.stats.continuous import Design, Estimate, design, estimate, ttest
from bnexp.stats.events import median_time
from bnexp.stats.family import SeedComparison, compare_family, compare_seed_groups, comparison_of
from bnexp.stats.holm import holm, holm_level
from bnexp.stats.outcome import Outcome
from bnexp.stats.ranks import rank_test, superiority, worst_last

__all__ = ["ALPHA", "CI_LEVEL", "MAX_EXACT", "MAX_SEEDS", "MIN_SEEDS", "POWER", "RANK_TESTS", "Advice", "Claim",
           "ClaimResult", "Design", "Estimate", "Kind", "Note", "Outcome", "Reason", "Remark", "SeedComparison", "Verdict",
           "can_decide",
           "claim_verdict", "compare_family", "compare_outcomes", "compare_seed_groups", "comparison_of", "design",
           "design_test", "estimate", "fisher", "fisher_central", "holm", "holm_level", "judge_claim_family",
           "judge_outcomes", "median_time", "power", "rank_test", "seeds_for_power", "smallest_p", "superiority",
           "ttest", "welch_power", "welch_seeds", "worst_last"]
