"""Seed-group statistics: is a difference between two groups of runs more than seed noise?

Pure functions of numbers (NumPy, and SciPy and statsmodels imported inside the functions
that test: importing this module loads neither, so `bnexp compare` of runs with nothing to
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
`compare_family`/`compare_groups` → `Comparison`, `judge_claims`/`claim_verdict` →
`ClaimResult` (their `sentence()` is the quoted verdict line), `fisher`, `estimate`.
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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

import numpy as np

from bnexp import formats

ALPHA = 0.05
CI_LEVEL = 0.95
POWER = 0.8
MIN_SEEDS = 3
MAX_SEEDS = 1000
# Spread below this fraction of the values' magnitude is rounding error, not seed
# noise: 0.97 − 0.96 and 0.98 − 0.97 differ in the 17th digit, and scipy would
# turn that into t ≈ 1e15 and p = 0.
ZERO_SPREAD = 1e-10

TOO_FEW = "too few seeds (n = {n}): run at least 3"
ZERO_VARIANCE = "zero variance: seed noise cannot be estimated, so there is no p-value"
ZERO_VARIANCE_RANKS = "zero variance: no t-test"
PARTIAL_OVERLAP = "unpaired: the groups share only {k} of their seeds"


@dataclass(frozen=True)
class Design:
    """Which test fits two groups, and their values in the order that test needs."""

    test: str  # "paired" or "welch"
    a: np.ndarray  # baseline / "than" values; aligned by seed when paired
    b: np.ndarray  # group / "better" values
    note: str | None

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
    note: str | None
    ci_of: str | None = "difference"  # what ci_low/ci_high bound: difference, odds_ratio, or None
    ratio: float | None = None  # Fisher: the conditional MLE odds ratio (None when infinite)
    sds: tuple[float, float] | None = None  # Welch: each side's SD, for the simulated advisor
    interval: object = field(default=None, compare=False, repr=False)  # level -> (low, high)


@dataclass(frozen=True)
class Comparison:
    """One group against the baseline, judged on its Holm-adjusted p."""

    test: str
    p: float | None
    p_adjusted: float | None
    difference: float
    ci_low: float | None
    ci_high: float | None
    effect_size: float | None  # d_z when paired, Cohen's d when Welch
    n_a: int
    n_b: int
    verdict: str  # distinguishable | not_distinguishable | too_few_seeds
    seeds_needed: int | None  # per group, for 80% power; only when not distinguishable
    note: str | None
    family_size: int  # p-values in the Holm family; "Holm-adjusted" is said only when > 1
    ci_level: float = CI_LEVEL  # the interval's level: holm_level, so it agrees with the verdict
    ci_of: str | None = "difference"
    ratio: float | None = None
    advice_reason: str | None = None  # why seeds_needed is None: an Advice value

    def to_dict(self) -> dict:
        """The fields of a `comparisons` entry in `compare --format json`."""
        keys = ("test", "p", "p_adjusted", "difference", "ci_low", "ci_high", "ci_level", "ci_of",
                "effect_size", "n_a", "n_b", "verdict", "seeds_needed", "advice_reason", "note")
        return {k: getattr(self, k) for k in keys}

    def sentence(self) -> str:
        """The verdict line a reader may quote: built from the adjusted p, never the raw one."""
        if self.test == "none":
            return f"difference {_num(self.difference)}, {self.note}"
        line = _evidence(self.difference, (self.ci_low, self.ci_high), self.ci_level,
                         _effect_text(self.test, self.effect_size), _test_name(self.test),
                         _seeds_text(self.test, self.n_a, self.n_b), self.note, self.p_adjusted,
                         self.family_size, self.ci_of, self.ratio)
        if self.verdict == "distinguishable":
            return f"{line}: distinguishable from seed noise"
        advice = _advice(self.seeds_needed, "detect a difference this large", self.advice_reason)
        return f"{line}: not distinguishable from seed noise{advice}"


@dataclass(frozen=True)
class Claim:
    """A published claim about two seed groups: `better` is `direction` than `than`."""

    better: Mapping[int, float]
    than: Mapping[int, float]
    direction: str  # higher | lower | equivalent
    margin: float | None = None  # equivalent only: the largest |difference| that counts as equal
    binary: bool = False  # values are 0/1 (diverged or not): Fisher's exact test, not a t-test
    time_to_event: bool = False  # values are steps; seeds in never_* did not get there (censored)
    never_better: frozenset = frozenset()  # seeds of `better` censored at their last step
    never_than: frozenset = frozenset()
    failed_better: frozenset = frozenset()  # seeds that diverged or failed: the worst outcome
    failed_than: frozenset = frozenset()
    higher_is_better: bool = True  # which end is worst for failed runs (times: lower is better)


@dataclass(frozen=True)
class ClaimResult:
    """A claim's verdict over seeds: holds, contradicted or inconclusive."""

    verdict: str
    difference: float  # mean(better) − mean(than)
    ci_low: float | None
    ci_high: float | None
    ci_level: float  # 0.95, or 0.90 for equivalent (the interval a 5% TOST corresponds to)
    p: float | None
    p_adjusted: float | None
    n_better: int
    n_than: int
    seeds_needed: int | None  # per side, to settle an inconclusive claim at 80% power
    test: str
    direction: str
    margin: float | None
    note: str | None
    family_size: int
    ci_of: str | None = "difference"
    ratio: float | None = None
    effect_size: float | None = None  # rank tests: P(better > than); the verdict's direction
    advice_reason: str | None = None  # why seeds_needed is None: an Advice value
    against_claim: bool = False  # the observed difference points the other way

    def to_dict(self) -> dict:
        """The fields of a `claims` entry; the caller adds `name` and `metric`."""
        keys = ("verdict", "difference", "ci_low", "ci_high", "ci_level", "ci_of", "p", "p_adjusted",
                "n_better", "n_than", "seeds_needed", "advice_reason", "against_claim", "test", "note")
        return {k: getattr(self, k) for k in keys}

    def sentence(self) -> str:
        """`holds: difference … [95% CI …], paired t-test over 5 seeds, p = …` (adjusted p)."""
        if self.test == "none":
            return f"{self.verdict}: difference {_num(self.difference)}, {self.note}"
        test = _test_name(self.test)
        if self.direction == "equivalent":
            test = f"TOST (margin {self.margin:.3g}) by {test}s"
        effect = _effect_text(self.test, self.effect_size) if self.test in RANK_TESTS else None
        line = _evidence(self.difference, (self.ci_low, self.ci_high), self.ci_level, effect,
                         test, _seeds_text(self.test, self.n_better, self.n_than), self.note,
                         self.p_adjusted, self.family_size, self.ci_of, self.ratio)
        if self.verdict != "inconclusive":
            return f"{self.verdict}: {line}"
        against = "; the observed difference goes against the claim" if self.against_claim else ""
        return f"{self.verdict}: {line}{against}{_advice(self.seeds_needed, 'settle it', self.advice_reason)}"


# --- choosing and running the test ---------------------------------------------------------


def design(a: Mapping[int, float], b: Mapping[int, float]) -> Design:
    """Paired on matched seeds when both groups hold the same seeds, else Welch on all values."""
    if not a or not b:
        raise ValueError("each seed group needs at least one value")
    values = [*a.values(), *b.values()]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("seed-group values must be finite; leave out runs without a value")
    if a.keys() == b.keys():
        seeds = sorted(a)
        return Design("paired", _array(a[s] for s in seeds), _array(b[s] for s in seeds), None)
    shared = len(a.keys() & b.keys())
    note = PARTIAL_OVERLAP.format(k=shared) if shared else None
    return Design("welch", _array(a.values()), _array(b.values()), note)


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
    if reason == ZERO_VARIANCE:  # no t-test: the exact rank test still can, ties and all
        test, p, _ = rank_test(d.a, d.b, d.test == "paired")
        (ps, _, _, _), _ = superiority(d.a, d.b, d.test == "paired", ci_level)
        note = "; ".join(x for x in (ZERO_VARIANCE_RANKS, d.note) if x)
        return Estimate(test, d.n_a, d.n_b, difference, None, None, p, ps, None, note, ci_of=None)
    if reason:
        return Estimate("none", d.n_a, d.n_b, difference, None, None, None, None, None, reason, ci_of=None)
    result = ttest(d)
    ci = result.confidence_interval(ci_level)
    sd = _noise_sd(d)
    sds = (float(np.std(d.a, ddof=1)), float(np.std(d.b, ddof=1))) if d.test == "welch" else None

    def interval(level):
        ci = ttest(d).confidence_interval(level)
        return float(ci.low), float(ci.high)

    return Estimate(d.test, d.n_a, d.n_b, difference, float(ci.low), float(ci.high),
                    float(result.pvalue), _effect_size(d), sd, d.note, sds=sds, interval=interval)


def fisher(a: Mapping[int, float], b: Mapping[int, float], ci_level: float = CI_LEVEL) -> Estimate:
    """Fisher's exact test of two groups of 0/1 values: is the proportion of ones different?

    The difference is that of the proportions, p_b − p_a, and so is the effect size. The
    p and the interval are those of `fisher_central`: the conditional odds ratio's exact
    interval, which inverts the same conditional test, so it excludes 1 exactly when
    p < 1 − ci_level (a risk-difference interval could disagree with the test). Its
    infinite ends (0 of n on a side) are None, with the reason in the note.
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
                        TOO_FEW.format(n=min(n_a, n_b)), ci_of=None)

    def interval(level):
        _, _, low, high = fisher_central(k_a, n_a, k_b, n_b, level)
        return _finite(low), _finite(high)

    p, ratio, _, _ = fisher_central(k_a, n_a, k_b, n_b, ci_level)
    low, high = interval(ci_level)
    note = None if None not in (low, high, _finite(ratio)) else UNBOUNDED_RATIO
    return Estimate("fisher", n_a, n_b, difference, low, high, p, difference, None, note,
                    ci_of="odds_ratio", ratio=_finite(ratio), interval=interval)


UNBOUNDED_RATIO = "an odds ratio or its interval is unbounded at 0 of n: that end is null"


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _untestable(d: Design) -> str | None:
    """Why no t-test can be run (too few seeds, zero variance), or None."""
    if min(d.n_a, d.n_b) < MIN_SEEDS:
        return TOO_FEW.format(n=min(d.n_a, d.n_b))
    scale = max(np.max(np.abs(d.a)), np.max(np.abs(d.b)))
    parts = [d.b - d.a] if d.test == "paired" else [d.a, d.b]
    if all(np.ptp(x) <= ZERO_SPREAD * scale for x in parts):
        return ZERO_VARIANCE
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


# --- multiple testing ----------------------------------------------------------------------


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


# --- compare: groups against a baseline ----------------------------------------------------


def compare_family(baseline: Mapping[int, float], groups: Sequence[Mapping[int, float]],
                   *, alpha: float = ALPHA, binary: bool = False,
                   ranked: Sequence[Mapping | None] = ()) -> list[Comparison]:
    """Each group against the baseline, Holm-adjusted over the comparisons that have a p;
    `binary` (0/1 values, such as diverged) by Fisher's exact test instead of t-tests; each
    interval at `holm_level`, so it excludes the null exactly when the verdict is distinguishable.

    `ranked[i]`, when given, holds `compare_outcomes`' arguments for group i: a comparison
    whose sides hold failed runs or censored times, which a t-test cannot take. It is
    tested by `compare_outcomes` (rank or log-rank tests) inside the same Holm family.
    """
    ranked = list(ranked) or [None] * len(groups)
    first = [compare_outcomes(**call, alpha=alpha) if call else
             (fisher(baseline, g) if binary else estimate(design(baseline, g))) for g, call in zip(groups, ranked)]
    adjusted = holm([r.p for r in first])
    size = sum(q is not None for q in adjusted)
    out = []
    for r, call, q in zip(first, ranked, adjusted):
        if call is None:
            out.append(_judge_comparison(r, q, size, alpha))
        else:
            out.append(comparison_of(compare_outcomes(**call, alpha=alpha, p_adjusted=q) if q is not None else r, size))
    return out


def comparison_of(o: "Outcome", family_size: int) -> Comparison:
    """An Outcome as the seed-group API's Comparison, whose sentence compare prints. Rank
    tests plan no seeds (the advisor plans t-tests), and their effect is the probability
    of superiority (or the share of pairs won), not a standardised difference."""
    notes = []
    if o.verdict == Verdict.TOO_FEW_SEEDS:
        notes.append(TOO_FEW.format(n=min(o.n_a, o.n_b)))
    if o.n_failed_a or o.n_failed_b:
        notes.append(f"failures ranked worst: {o.n_failed_b} and {o.n_failed_a}")
    if o.test == "log_rank" or o.n_censored_a or o.n_censored_b:
        notes.append(f"never reached: {o.n_censored_b} and {o.n_censored_a}, censored at their last step; "
                     f"Kaplan–Meier medians {_median_text(o.median_b)} and {_median_text(o.median_a)}")
    test = o.test if o.p is not None else "none"
    advice = Advice.NOT_PLANNED if o.verdict == Verdict.NOT_DISTINGUISHABLE else None
    return Comparison(test, o.p, o.p_adjusted, o.difference, o.ci_low, o.ci_high, o.effect, o.n_a, o.n_b,
                      str(o.verdict), None, "; ".join(notes) or None, family_size, o.ci_level, o.ci_of, None,
                      advice)


def compare_groups(a: Mapping[int, float], b: Mapping[int, float],
                   *, alpha: float = ALPHA) -> Comparison:
    """One group `b` against baseline `a`: a family of one, so p_adjusted = p."""
    return compare_family(a, [b], alpha=alpha)[0]


def _at_level(e: Estimate, level: float) -> tuple[float | None, float | None]:
    return e.interval(level) if e.interval is not None else (e.ci_low, e.ci_high)


def _judge_comparison(e: Estimate, p_adjusted: float | None, family_size: int,
                      alpha: float) -> Comparison:
    if e.test == "none":
        verdict = "too_few_seeds" if min(e.n_a, e.n_b) < MIN_SEEDS else "not_distinguishable"
    else:
        verdict = "distinguishable" if p_adjusted < alpha else "not_distinguishable"
    level = holm_level(e.p, p_adjusted, alpha)
    low, high = _at_level(e, level)
    needed, reason = None, None
    if verdict == "not_distinguishable":
        needed, reason = _advise(e, [(0.0, "two-sided")], alpha / family_size,
                                 _power_two_sided(e.difference / e.noise_sd, e.test, alpha / family_size)
                                 if e.noise_sd else None)
    return Comparison(e.test, e.p, p_adjusted, e.difference, low, high,
                      e.effect_size, e.n_a, e.n_b, verdict, needed, e.note, family_size,
                      level, e.ci_of, e.ratio, reason)


class Advice(StrEnum):
    """Why the seed advisor gives no number."""

    DECIDED = "decided"  # the verdict is already settled
    NO_DIFFERENCE = "no_difference"  # the observed difference is 0 (or no spread to plan with)
    BEYOND_MAX = "beyond_max"  # more than MAX_SEEDS per side
    NOT_PLANNED = "not_planned"  # rank and Fisher tests: the advisor plans t-tests only


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


# --- claims --------------------------------------------------------------------------------


def judge_claims(claims: Sequence[Claim], *, alpha: float = ALPHA) -> list[ClaimResult]:
    """The claims of one file as one Holm family: each claim's p adjusted over them all.

    A claim's p is that of the test its estimate points to. For higher/lower it
    is the two-sided t-test, the direction read from the sign. For equivalent
    it is TOST's p (the larger of the two one-sided p against ±margin) while
    the estimate lies inside the margin, and the one-sided p for "|difference|
    > margin" while it lies outside; only that test can reject at α < 0.5, so
    one p per claim enters the family.
    """
    tested = [_test_claim(c, alpha) for c in claims]
    adjusted = holm([t[1] for t in tested])
    size = sum(q is not None for q in adjusted)
    return [_judge_claim(c, e, p, q, size, alpha)
            for c, (e, p), q in zip(claims, tested, adjusted)]


def claim_verdict(better: Mapping[int, float], than: Mapping[int, float], direction: str,
                  margin: float | None = None, *, alpha: float = ALPHA) -> ClaimResult:
    """One claim on its own (a family of one)."""
    return judge_claims([Claim(better, than, direction, margin)], alpha=alpha)[0]


NO_EQUIVALENCE = ("untestable: TOST needs a t-test, and these values (failures, censoring or"
                  " zero variance) have none")


def _test_claim(c: Claim, alpha: float = ALPHA) -> tuple[Estimate, float | None]:
    """The claim's estimate (90% interval for equivalent) and its p, once it is checked."""
    _check_claim(c)
    if c.binary:
        e = fisher(c.than, c.better)
        return e, e.p
    if c.time_to_event or c.failed_better or c.failed_than:
        return _ranked_claim(c, alpha)
    d = design(c.than, c.better)
    if c.direction != "equivalent":
        e = estimate(d)
        return e, e.p
    e = estimate(d, ci_level=1 - 2 * ALPHA)
    if e.test in RANK_TESTS:
        return Estimate("none", e.n_a, e.n_b, e.difference, None, None, None, None, None,
                        NO_EQUIVALENCE, ci_of=None), None
    if e.test == "none":
        return e, None
    if abs(e.difference) < c.margin:
        return e, float(max(ttest(d, shift=-c.margin, alternative="greater").pvalue,
                            ttest(d, shift=c.margin, alternative="less").pvalue))
    if e.difference > 0:
        return e, float(ttest(d, shift=c.margin, alternative="greater").pvalue)
    return e, float(ttest(d, shift=-c.margin, alternative="less").pvalue)


def _ranked_claim(c: Claim, alpha: float) -> tuple[Estimate, float | None]:
    """A claim on times to an event or with failed runs: `compare_outcomes`' rank tests."""
    paired = c.better.keys() == c.than.keys() and not c.time_to_event
    seeds_b, seeds_a = sorted(c.better), (sorted(c.better) if paired else sorted(c.than))
    o = compare_outcomes(
        [c.than[s] for s in seeds_a], [c.better[s] for s in seeds_b],
        Kind.TIME_TO_EVENT if c.time_to_event else Kind.CONTINUOUS,
        failed_a=[s in c.failed_than for s in seeds_a], failed_b=[s in c.failed_better for s in seeds_b],
        censored_a=[s in c.never_than for s in seeds_a], censored_b=[s in c.never_better for s in seeds_b],
        paired=paired, higher_is_better=c.higher_is_better and not c.time_to_event, alpha=alpha)
    if c.direction == "equivalent":
        return Estimate("none", o.n_a, o.n_b, o.difference, None, None, None, None, None,
                        NO_EQUIVALENCE, ci_of=None), None
    notes = [f"failures count as the worst outcome ({o.n_failed_b} and {o.n_failed_a})"
             if o.n_failed_a or o.n_failed_b else None,
             f"never reached: {o.n_censored_b} and {o.n_censored_a}, censored at their last step"
             if c.time_to_event else None]
    if c.time_to_event:
        notes.append(f"Kaplan–Meier medians {_median_text(o.median_b)} and {_median_text(o.median_a)}")
    return Estimate(o.test, o.n_a, o.n_b, o.difference, None, None, o.p, o.effect, None,
                    "; ".join(n for n in notes if n) or None, ci_of=None), o.p


def _median_text(m: float | None) -> str:
    return "not reached" if m is None else f"{m:g}"


def _check_claim(c: Claim) -> None:
    """Claims are validated by the sweep file's loader; this refuses what slips past it."""
    if c.direction not in ("higher", "lower", "equivalent"):
        raise ValueError(f"direction must be higher, lower or equivalent, not {c.direction!r}")
    if c.direction == "equivalent" and not (c.margin is not None and c.margin > 0):
        raise ValueError("an equivalent claim needs a margin > 0")
    if c.direction != "equivalent" and c.margin is not None:
        raise ValueError("margin is only for equivalent claims")
    if c.binary and c.direction == "equivalent":
        raise ValueError("a claim on a 0/1 metric is higher or lower, not equivalent")
    n = min(len(c.better), len(c.than))
    if n < MIN_SEEDS:
        raise ValueError(f"a claim needs at least {MIN_SEEDS} seeds per side, got n = {n}")


def _judge_claim(c: Claim, e: Estimate, p: float | None, p_adjusted: float | None,
                 family_size: int, alpha: float) -> ClaimResult:
    """The verdict from the adjusted p; the interval at `holm_level` (TOST: 1 − 2γ), so an
    interval inside the margin never stands beside `inconclusive`."""
    equivalent = c.direction == "equivalent"
    went_higher = (e.effect_size is not None and e.effect_size > 0.5) if e.test in RANK_TESTS else (
        e.difference is not None and e.difference > 0)
    if e.test == "none" and e.note and e.note.startswith("untestable"):
        verdict = "untestable"
    elif p_adjusted is None or p_adjusted >= alpha:
        verdict = "inconclusive"
    elif equivalent:
        verdict = "holds" if abs(e.difference) < c.margin else "contradicted"
    else:
        verdict = "holds" if went_higher == (c.direction == "higher") else "contradicted"
    level = holm_level(p, p_adjusted, alpha, 2 if equivalent else 1)
    low, high = _at_level(e, level)
    needed, reason = None, Advice.DECIDED
    if verdict == "inconclusive":
        needed, reason = _advise(e, _welch_tests(c, e), alpha / family_size,
                                 _claim_power(c, e, alpha / family_size) if e.noise_sd else None)
    moved = e.difference not in (None, 0) if e.test not in RANK_TESTS else e.effect_size not in (None, 0.5)
    against = (not equivalent and moved and went_higher != (c.direction == "higher"))
    return ClaimResult(verdict, e.difference, low, high, level, p, p_adjusted,
                       e.n_b, e.n_a, needed, e.test, c.direction, c.margin, e.note, family_size,
                       e.ci_of, e.ratio, e.effect_size if e.test in RANK_TESTS else None, reason, against)


def _welch_tests(c: Claim, e: Estimate) -> list[tuple[float, str]]:
    """The (shift, alternative) tests a claim's verdict needs, for the simulated Welch advisor."""
    if c.direction != "equivalent":
        return [(0.0, "two-sided")]
    if abs(e.difference) < c.margin:
        return [(-c.margin, "greater"), (c.margin, "less")]
    return [(c.margin, "greater")] if e.difference > 0 else [(-c.margin, "less")]


# --- the seed advisor ----------------------------------------------------------------------
# It plans at the Bonferroni level alpha / (family size): Holm never asks a member of
# the family for less than that, so in a family the advice is an upper bound, and it
# never advises fewer seeds than a comparison that missed only through the correction has.


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


def _claim_power(c: Claim, e: Estimate, alpha: float):
    """Power to settle a claim either way if the observed difference and spread are the truth.

    For equivalence inside the margin, TOST needs both one-sided tests to
    reject; P(both) ≥ P(lower) + P(upper) − 1 (Bonferroni), a lower bound, so
    the advice errs towards more seeds. Outside the margin, it is the power of
    the one-sided test that |difference| > margin.
    """
    if c.direction != "equivalent":
        return _power_two_sided(e.difference / e.noise_sd, e.test, alpha)
    low = (e.difference + c.margin) / e.noise_sd  # shift above −margin
    high = (e.difference - c.margin) / e.noise_sd  # shift above +margin (negative inside)
    if abs(e.difference) < c.margin:
        return lambda n: (power(low, n, e.test, "greater", alpha)
                          + power(high, n, e.test, "less", alpha) - 1)
    if e.difference > 0:
        return lambda n: power(high, n, e.test, "greater", alpha)
    return lambda n: power(low, n, e.test, "less", alpha)


# --- outcomes of any kind: the API compare and claims call once metrics have kinds -------
# `compare_outcomes` is the one entry point: it picks the test that fits the data (see the
# module docstring's table) and returns an `Outcome` of numbers and enums only.


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


# --- rank tests: failures and "never" as the worst outcome, ties exact ---------------------


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

    Exact by enumerating every arrangement (`scipy.stats.PermutationMethod` with
    n_resamples=inf, which is exact with ties too) up to MAX_EXACT of them; beyond that
    SciPy's exact null distribution when nothing ties, else the tie-corrected normal
    approximation (departure: not exact, said by `exact=False`).
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
    from scipy import stats

    if arrangements <= MAX_EXACT:
        return stats.PermutationMethod(n_resamples=np.inf)
    return "asymptotic" if ties else "exact"


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


def _rank_outcome(sides: _Sides, higher_is_better, alpha, p_adjusted, counts, *, difference,
                  worst=None, reasons=(), medians=(None, None)) -> Outcome:
    worst_a, worst_b = worst if worst is not None else (sides.failed_a, sides.failed_b)
    a, b = worst_last(sides.a, sides.b, worst_a, worst_b, higher_is_better)
    test, p, exact = rank_test(a, b, sides.paired)
    effect, why = superiority(a, b, sides.paired, holm_level(p, p_adjusted, alpha))
    return _outcome(test, exact, p, p_adjusted, alpha, counts, difference=difference, effect=effect,
                    medians=medians, reasons=tuple(reasons) + ((why,) if why else ()))


# --- time to event ---------------------------------------------------------------------


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


# --- 0/1 outcomes ----------------------------------------------------------------------


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


# --- what a design can decide ----------------------------------------------------------


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


# --- the seed advisor for Welch's test, by simulation --------------------------------------


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


# --- wording -------------------------------------------------------------------------------


def _evidence(difference: float | None, ci: tuple, ci_level: float,
              effect: str | None, test: str, seeds: str, note: str | None, p_adjusted: float,
              family_size: int, ci_of: str | None = "difference", ratio: float | None = None) -> str:
    """`difference X [95% CI lo, hi], d = …, paired t-test over 5 seeds, Holm-adjusted p = …`."""
    low, high = ci
    level = formats.level(ci_level)
    text = "difference not defined" if difference is None else f"difference {_num(difference)}"
    if ci_of == "difference" and (low, high) != (None, None):
        text += f" [{level} CI {_bound(low)}, {_bound(high)}]"
    elif ci_of == "odds_ratio":
        shown = "∞" if ratio is None and difference and difference > 0 else (
            "0" if ratio is None else f"{ratio:.3g}")
        text += f", odds ratio {shown} [{level} CI {_bound(low, plain=True)}, {_bound(high, plain=True)}]"
    parts = [text]
    if effect:
        parts.append(effect)
    parts.append(f"{test} over {seeds}" + (f" ({note})" if note else ""))
    label = "Holm-adjusted p" if family_size > 1 else "p"
    parts.append(f"{label} {formats.p_relation(p_adjusted)}")
    return ", ".join(parts)


def _bound(x: float | None, plain: bool = False) -> str:
    if x is None:
        return "∞"
    return f"{x:.3g}" if plain else _num(x)


def _effect_text(test: str, effect: float | None) -> str | None:
    if effect is None:
        return None
    if test in ("mann_whitney", "log_rank"):
        return f"P(b > a) = {effect:.2g}"
    if test == "wilcoxon":
        return f"b higher in {effect:.0%} of untied pairs"
    if test == "fisher":
        return None
    return f"{'d_z' if test == 'paired' else 'd'} = {effect:.2g}"


def _test_name(test: str) -> str:
    return {"paired": "paired t-test", "welch": "Welch t-test", "fisher": "Fisher's exact test",
            "mann_whitney": "exact Mann–Whitney test", "wilcoxon": "exact Wilcoxon signed-rank test",
            "log_rank": "log-rank permutation test"}[test]


def _seeds_text(test: str, n_a: int, n_b: int) -> str:
    if test == "fisher":
        return f"{n_a} and {n_b} runs"
    return f"{n_a} seeds" if test in ("paired", "wilcoxon") else f"{n_a} and {n_b} seeds"


def _advice(seeds: int | None, goal: str, reason: str | None = None) -> str:
    """The seed advisor's clause: a number, or the reason there is none."""
    if seeds is not None:
        return f"; about {seeds} seeds per group would {goal} at 80% power"
    if reason == Advice.NOT_PLANNED:
        return "; no seed estimate: the seed advisor plans t-tests only"
    if reason == Advice.NO_DIFFERENCE:
        return "; no seed estimate: the observed difference is zero"
    return f"; not even {MAX_SEEDS} seeds per group would {goal} at 80% power"


def _clean(x: np.ndarray) -> np.ndarray:
    """Values to 12 significant digits: rounding noise (0.94 − 0.90 vs 0.95 − 0.91) must not
    break a tie that a rank test would otherwise count."""
    return np.array([float(f"{v:.12g}") for v in np.asarray(x, dtype=float)])


def _num(x: float | None) -> str:
    return "not defined" if x is None else f"{x:+.3g}"


def _array(values) -> np.ndarray:
    return np.fromiter(values, dtype=float)
