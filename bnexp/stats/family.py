"""Seed groups against a baseline: one Holm family of comparisons, each a `SeedComparison`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bnexp.stats.advisor import _advise, _power_two_sided
from bnexp.stats.binary import fisher
from bnexp.stats.choose import compare_outcomes
from bnexp.stats.common import ALPHA, CI_LEVEL, MIN_SEEDS, Advice, Note, Remark, Verdict
from bnexp.stats.continuous import Estimate, design, estimate
from bnexp.stats.holm import holm, holm_level
from bnexp.stats.outcome import Outcome


@dataclass(frozen=True)
class SeedComparison:
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
    notes: tuple[Remark, ...]  # bnexp.wording.note_text writes them
    family_size: int  # p-values in the Holm family; "Holm-adjusted" is said only when > 1
    ci_level: float = CI_LEVEL  # the interval's level: holm_level, so it agrees with the verdict
    ci_of: str | None = "difference"
    ratio: float | None = None
    advice_reason: str | None = None  # why seeds_needed is None: an Advice value

    def to_dict(self) -> dict:
        """The numbers of a `comparisons` entry in `compare --format json` (compare adds the
        note, in bnexp.wording's words)."""
        keys = ("test", "p", "p_adjusted", "difference", "ci_low", "ci_high", "ci_level", "ci_of",
                "effect_size", "n_a", "n_b", "verdict", "seeds_needed", "advice_reason")
        return {k: getattr(self, k) for k in keys}



def compare_family(baseline: Mapping[int, float], groups: Sequence[Mapping[int, float]],
                   *, alpha: float = ALPHA, binary: bool = False,
                   ranked: Sequence[Mapping | None] = ()) -> list[SeedComparison]:
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


def comparison_of(o: "Outcome", family_size: int) -> SeedComparison:
    """An Outcome as the seed-group API's SeedComparison, whose sentence compare prints. Rank
    tests plan no seeds (the advisor plans t-tests), and their effect is the probability
    of superiority (or the share of pairs won), not a standardised difference."""
    notes = []
    if o.verdict == Verdict.TOO_FEW_SEEDS:
        notes.append(Remark(Note.TOO_FEW_SEEDS, (min(o.n_a, o.n_b),)))
    if o.n_failed_a or o.n_failed_b:
        notes.append(Remark(Note.FAILURES_RANKED_WORST, (o.n_failed_b, o.n_failed_a)))
    if o.test == "log_rank" or o.n_censored_a or o.n_censored_b:
        notes += [Remark(Note.NEVER_REACHED, (o.n_censored_b, o.n_censored_a)),
                  Remark(Note.MEDIANS, (o.median_b, o.median_a))]
    test = o.test if o.p is not None else "none"
    advice = Advice.NOT_PLANNED if o.verdict == Verdict.NOT_DISTINGUISHABLE else None
    return SeedComparison(test, o.p, o.p_adjusted, o.difference, o.ci_low, o.ci_high, o.effect, o.n_a, o.n_b,
                      str(o.verdict), None, tuple(notes), family_size, o.ci_level, o.ci_of, None,
                      advice)


def compare_seed_groups(a: Mapping[int, float], b: Mapping[int, float],
                        *, alpha: float = ALPHA) -> SeedComparison:
    """One group `b` against baseline `a`: a family of one, so p_adjusted = p."""
    return compare_family(a, [b], alpha=alpha)[0]


def _at_level(e: Estimate, level: float) -> tuple[float | None, float | None]:
    return e.interval(level) if e.interval is not None else (e.ci_low, e.ci_high)


def _judge_comparison(e: Estimate, p_adjusted: float | None, family_size: int,
                      alpha: float) -> SeedComparison:
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
    return SeedComparison(e.test, e.p, p_adjusted, e.difference, low, high,
                      e.effect_size, e.n_a, e.n_b, verdict, needed, e.notes, family_size,
                      level, e.ci_of, e.ratio, reason)
