"""Claims about two seed groups (higher, lower, equivalent): one Holm family of verdicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bnexp.stats.advisor import _advise, _power_two_sided, power
from bnexp.stats.binary import fisher
from bnexp.stats.choose import compare_outcomes
from bnexp.stats.common import ALPHA, MIN_SEEDS, RANK_TESTS, Advice, Kind, Note, Remark
from bnexp.stats.continuous import Estimate, design, estimate, ttest
from bnexp.stats.family import _at_level
from bnexp.stats.holm import holm, holm_level


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
    notes: tuple[Remark, ...]  # bnexp.wording.note_text writes them
    family_size: int
    ci_of: str | None = "difference"
    ratio: float | None = None
    effect_size: float | None = None  # rank tests: P(better > than); the verdict's direction
    advice_reason: str | None = None  # why seeds_needed is None: an Advice value
    against_claim: bool = False  # the observed difference points the other way

    def to_dict(self) -> dict:
        """The fields of a `claims` entry; the caller adds `name` and `metric`."""
        keys = ("verdict", "difference", "ci_low", "ci_high", "ci_level", "ci_of", "p", "p_adjusted",
                "n_better", "n_than", "seeds_needed", "advice_reason", "against_claim", "test")
        return {k: getattr(self, k) for k in keys}



def judge_claim_family(claims: Sequence[Claim], *, alpha: float = ALPHA) -> list[ClaimResult]:
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
    return judge_claim_family([Claim(better, than, direction, margin)], alpha=alpha)[0]


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
                        (Remark(Note.NO_EQUIVALENCE),), ci_of=None), None
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
                        (Remark(Note.NO_EQUIVALENCE),), ci_of=None), None
    notes = []
    if o.n_failed_a or o.n_failed_b:
        notes.append(Remark(Note.FAILURES_WORST_OUTCOME, (o.n_failed_b, o.n_failed_a)))
    if c.time_to_event:
        notes += [Remark(Note.NEVER_REACHED, (o.n_censored_b, o.n_censored_a)),
                  Remark(Note.MEDIANS, (o.median_b, o.median_a))]
    return Estimate(o.test, o.n_a, o.n_b, o.difference, None, None, o.p, o.effect, None,
                    tuple(notes), ci_of=None), o.p


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
    if e.test == "none" and any(r.note == Note.NO_EQUIVALENCE for r in e.notes):
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
                       e.n_b, e.n_a, needed, e.test, c.direction, c.margin, e.notes, family_size,
                       e.ci_of, e.ratio, e.effect_size if e.test in RANK_TESTS else None, reason, against)


def _welch_tests(c: Claim, e: Estimate) -> list[tuple[float, str]]:
    """The (shift, alternative) tests a claim's verdict needs, for the simulated Welch advisor."""
    if c.direction != "equivalent":
        return [(0.0, "two-sided")]
    if abs(e.difference) < c.margin:
        return [(-c.margin, "greater"), (c.margin, "less")]
    return [(c.margin, "greater")] if e.difference > 0 else [(-c.margin, "less")]


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
