"""Seed-group statistics: is a difference between two groups of runs more than seed noise?

Pure functions of numbers (NumPy and scipy.stats only: no files, no printing, no
TensorFlow). A *group* is a mapping seed → value, one value per distinct seed;
the caller merges duplicate seeds before calling, so a repeated run never
inflates n. Every difference is *group minus baseline* (`b − a`; for claims,
`better − than`), so a positive number means the group scored higher.

The rules, in the order they apply:

- Fewer than 3 seeds on either side: no test. Two seeds give one degree of
  freedom for the spread, so the spread, and any p-value built on it, moves
  wholesale when one seed changes (issue 12 saw p go from 0.13 to 0.049).
- Same seeds on both sides: paired t-test (`scipy.stats.ttest_rel`) on matched
  seeds, because the same seed means the same initial weights and data order,
  so the seed's own luck cancels in the difference. Otherwise Welch's t-test
  (`ttest_ind(equal_var=False)`) on all values. When the groups share only some
  seeds, Welch still uses every value rather than pairing a subset: no run is
  thrown away, and shared seeds, which share initial weights and data order,
  can only correlate positively, which makes Welch conservative, never
  over-confident.
- Zero variance (both groups constant under Welch, or all paired differences
  equal): seed noise cannot be estimated, so there is no p-value (never p = 0),
  no interval and no effect size. The verdict is `not_distinguishable`: the
  data cannot show the difference to be larger than a noise they cannot
  measure. `test` is `none` exactly when there is no p-value.
- A claim on a 0/1 metric (`diverged`) uses Fisher's exact test
  (`scipy.stats.fisher_exact`) on the two sides' counts instead: two constant sides
  (every run diverged, or none) have zero variance and would get no t-test, yet
  5 of 5 against 0 of 5 is strong evidence. See `fisher`.
- Several comparisons against one baseline form a family; their p-values are
  Holm-adjusted and the verdict and sentence use only the adjusted p.

SciPy is imported inside the functions that test, so importing this module costs
nothing: `bnexp compare` of runs with nothing to test never loads it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

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

    def to_dict(self) -> dict:
        """The fields of a `comparisons` entry in `compare --format json`."""
        keys = ("test", "p", "p_adjusted", "difference", "ci_low", "ci_high", "effect_size",
                "n_a", "n_b", "verdict", "seeds_needed", "note")
        return {k: getattr(self, k) for k in keys}

    def sentence(self) -> str:
        """The verdict line a reader may quote: built from the adjusted p, never the raw one."""
        if self.test == "none":
            return f"difference {_num(self.difference)}, {self.note}"
        effect = None if self.test == "fisher" else f"{'d_z' if self.test == 'paired' else 'd'} = {self.effect_size:.2g}"
        line = _evidence(self.difference, (self.ci_low, self.ci_high), CI_LEVEL, effect,
                         _test_name(self.test), _seeds_text(self.test, self.n_a, self.n_b),
                         self.note, self.p_adjusted, self.family_size)
        if self.verdict == "distinguishable":
            return f"{line}: distinguishable from seed noise"
        advice = "" if self.test == "fisher" else _advice(self.seeds_needed, "detect a difference this large")
        return f"{line}: not distinguishable from seed noise{advice}"


@dataclass(frozen=True)
class Claim:
    """A published claim about two seed groups: `better` is `direction` than `than`."""

    better: Mapping[int, float]
    than: Mapping[int, float]
    direction: str  # higher | lower | equivalent
    margin: float | None = None  # equivalent only: the largest |difference| that counts as equal
    binary: bool = False  # values are 0/1 (diverged or not): Fisher's exact test, not a t-test


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

    def to_dict(self) -> dict:
        """The fields of a `claims` entry; the caller adds `name` and `metric`."""
        keys = ("verdict", "difference", "ci_low", "ci_high", "ci_level", "p", "p_adjusted",
                "n_better", "n_than", "seeds_needed", "test", "note")
        return {k: getattr(self, k) for k in keys}

    def sentence(self) -> str:
        """`holds: difference … [95% CI …], paired t-test over 5 seeds, p = …` (adjusted p)."""
        if self.test == "none":
            return f"{self.verdict}: difference {_num(self.difference)}, {self.note}"
        test = _test_name(self.test)
        if self.direction == "equivalent":
            test = f"TOST (margin {self.margin:.3g}) by {test}s"
        line = _evidence(self.difference, (self.ci_low, self.ci_high), self.ci_level, None,
                         test, _seeds_text(self.test, self.n_better, self.n_than), self.note,
                         self.p_adjusted, self.family_size)
        if self.verdict != "inconclusive" or self.test == "fisher":  # no advice for Fisher's test
            return f"{self.verdict}: {line}"
        return f"{self.verdict}: {line}{_advice(self.seeds_needed, 'settle it')}"


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
    if reason:
        return Estimate("none", d.n_a, d.n_b, difference, None, None, None, None, None, reason)
    result = ttest(d)
    ci = result.confidence_interval(ci_level)
    sd = _noise_sd(d)
    return Estimate(d.test, d.n_a, d.n_b, difference, float(ci.low), float(ci.high),
                    float(result.pvalue), _effect_size(d), sd, d.note)


def fisher(a: Mapping[int, float], b: Mapping[int, float], ci_level: float = CI_LEVEL) -> Estimate:
    """Fisher's exact test of two groups of 0/1 values: is the proportion of ones different?

    The difference is that of the proportions, p_b − p_a, and so is the effect size (an
    odds ratio would be infinite whenever one side is all zeros, the common case for
    divergence). The interval is Newcombe's (1998, method 10) hybrid score interval:
    each side's Wilson score interval (`binomtest(...).proportion_ci(method="wilson")`)
    combined as L = d − √((p_b − l_b)² + (u_a − p_a)²), U = d + √((u_b − p_b)² + (p_a − l_a)²);
    unlike the Wald interval it stays inside [−1, 1] and is not empty at 0 of n.
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
        return Estimate("none", n_a, n_b, difference, None, None, None, None, None, TOO_FEW.format(n=min(n_a, n_b)))
    from scipy import stats

    p = float(stats.fisher_exact([[k_b, n_b - k_b], [k_a, n_a - k_a]]).pvalue)
    (p_a, l_a, u_a), (p_b, l_b, u_b) = _wilson(k_a, n_a, ci_level), _wilson(k_b, n_b, ci_level)
    low = difference - math.hypot(p_b - l_b, u_a - p_a)
    high = difference + math.hypot(u_b - p_b, p_a - l_a)
    return Estimate("fisher", n_a, n_b, difference, low, high, p, difference, None, None)


def _wilson(k: int, n: int, ci_level: float) -> tuple[float, float, float]:
    """The proportion k/n and its Wilson score interval."""
    from scipy import stats

    ci = stats.binomtest(k, n).proportion_ci(confidence_level=ci_level, method="wilson")
    return k / n, float(ci.low), float(ci.high)


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
    """Holm's step-down adjusted p-values; None entries are not in the family and stay None.

    The i-th smallest of m p-values is multiplied by (m − i + 1), then made
    non-decreasing and capped at 1 (Holm 1979), so rejecting adjusted p < α
    controls the family-wise error at α without assuming independence.
    """
    present = [i for i, p in enumerate(pvalues) if p is not None]
    ps = np.array([pvalues[i] for i in present], dtype=float)
    order = np.argsort(ps, kind="stable")
    scaled = (len(ps) - np.arange(len(ps))) * ps[order]
    adjusted = np.empty_like(ps)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out: list[float | None] = [None] * len(pvalues)
    for i, q in zip(present, adjusted):
        out[i] = float(q)
    return out


# --- compare: groups against a baseline ----------------------------------------------------


def compare_family(baseline: Mapping[int, float], groups: Sequence[Mapping[int, float]],
                   *, alpha: float = ALPHA, binary: bool = False) -> list[Comparison]:
    """Each group against the baseline, Holm-adjusted over the comparisons that have a p;
    `binary` (0/1 values, such as diverged) by Fisher's exact test instead of t-tests."""
    estimates = [fisher(baseline, g) if binary else estimate(design(baseline, g)) for g in groups]
    adjusted = holm([e.p for e in estimates])
    size = sum(q is not None for q in adjusted)
    return [_judge_comparison(e, q, size, alpha) for e, q in zip(estimates, adjusted)]


def compare_groups(a: Mapping[int, float], b: Mapping[int, float],
                   *, alpha: float = ALPHA) -> Comparison:
    """One group `b` against baseline `a`: a family of one, so p_adjusted = p."""
    return compare_family(a, [b], alpha=alpha)[0]


def _judge_comparison(e: Estimate, p_adjusted: float | None, family_size: int,
                      alpha: float) -> Comparison:
    if e.test == "none":
        verdict = "too_few_seeds" if min(e.n_a, e.n_b) < MIN_SEEDS else "not_distinguishable"
    else:
        verdict = "distinguishable" if p_adjusted < alpha else "not_distinguishable"
    needed = None
    if verdict == "not_distinguishable" and e.test in ("paired", "welch"):  # it plans t-tests only
        effect = e.difference / e.noise_sd
        needed = seeds_for_power(_power_two_sided(effect, e.test, alpha / family_size))
    return Comparison(e.test, e.p, p_adjusted, e.difference, e.ci_low, e.ci_high,
                      e.effect_size, e.n_a, e.n_b, verdict, needed, e.note, family_size)


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
    tested = [_test_claim(c) for c in claims]
    adjusted = holm([t[1] for t in tested])
    size = sum(q is not None for q in adjusted)
    return [_judge_claim(c, e, p, q, size, alpha)
            for c, (e, p), q in zip(claims, tested, adjusted)]


def claim_verdict(better: Mapping[int, float], than: Mapping[int, float], direction: str,
                  margin: float | None = None, *, alpha: float = ALPHA) -> ClaimResult:
    """One claim on its own (a family of one)."""
    return judge_claims([Claim(better, than, direction, margin)], alpha=alpha)[0]


def _test_claim(c: Claim) -> tuple[Estimate, float | None]:
    """The claim's estimate (90% interval for equivalent) and its p, once it is checked."""
    _check_claim(c)
    if c.binary:
        e = fisher(c.than, c.better)
        return e, e.p
    d = design(c.than, c.better)
    if c.direction != "equivalent":
        e = estimate(d)
        return e, e.p
    e = estimate(d, ci_level=1 - 2 * ALPHA)
    if e.test == "none":
        return e, None
    if abs(e.difference) < c.margin:
        return e, float(max(ttest(d, shift=-c.margin, alternative="greater").pvalue,
                            ttest(d, shift=c.margin, alternative="less").pvalue))
    if e.difference > 0:
        return e, float(ttest(d, shift=c.margin, alternative="greater").pvalue)
    return e, float(ttest(d, shift=-c.margin, alternative="less").pvalue)


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
    if p_adjusted is None or p_adjusted >= alpha:
        verdict = "inconclusive"
    elif c.direction == "equivalent":
        verdict = "holds" if abs(e.difference) < c.margin else "contradicted"
    else:
        went_higher = e.difference > 0
        verdict = "holds" if went_higher == (c.direction == "higher") else "contradicted"
    needed = None
    if verdict == "inconclusive" and e.test in ("paired", "welch"):  # it plans t-tests only
        needed = seeds_for_power(_claim_power(c, e, alpha / family_size))
    level = 1 - 2 * ALPHA if c.direction == "equivalent" else CI_LEVEL
    return ClaimResult(verdict, e.difference, e.ci_low, e.ci_high, level, p, p_adjusted,
                       e.n_b, e.n_a, needed, e.test, c.direction, c.margin, e.note, family_size)


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


# --- wording -------------------------------------------------------------------------------


def _evidence(difference: float, ci: tuple[float, float], ci_level: float,
              effect: str | None, test: str, seeds: str, note: str | None, p_adjusted: float,
              family_size: int) -> str:
    """`difference X [95% CI lo, hi], d = …, paired t-test over 5 seeds, Holm-adjusted p = …`."""
    low, high = ci
    parts = [f"difference {_num(difference)} [{ci_level:.0%} CI {_num(low)}, {_num(high)}]"]
    if effect:
        parts.append(effect)
    parts.append(f"{test} over {seeds}" + (f" ({note})" if note else ""))
    label = "Holm-adjusted p" if family_size > 1 else "p"
    parts.append(f"{label} {_p_text(p_adjusted)}")
    return ", ".join(parts)


def _test_name(test: str) -> str:
    return {"paired": "paired t-test", "welch": "Welch t-test", "fisher": "Fisher's exact test"}[test]


def _seeds_text(test: str, n_a: int, n_b: int) -> str:
    if test == "fisher":
        return f"{n_a} and {n_b} runs"
    return f"{n_a} seeds" if test == "paired" else f"{n_a} and {n_b} seeds"


def _advice(seeds: int | None, goal: str) -> str:
    """The seed advisor's clause, also when no affordable number of seeds would do."""
    if seeds is None:
        return f"; not even {MAX_SEEDS} seeds per group would {goal} at 80% power"
    return f"; about {seeds} seeds per group would {goal} at 80% power"


def _num(x: float) -> str:
    return f"{x:+.3g}"


def _p_text(p: float) -> str:
    """`= 0.004`, or `< 0.0001`: a p-value printed as 0 would claim certainty."""
    return "< 0.0001" if p < 1e-4 else f"= {p:.2g}"


def _array(values) -> np.ndarray:
    return np.fromiter(values, dtype=float)
