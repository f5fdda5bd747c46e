"""The sentences a reader quotes: a seed comparison's and a claim's verdict line.

bnexp.stats returns numbers and enums (`SeedComparison`, `ClaimResult`); this module writes
them as English, with bnexp.formats' numbers, p-values and verdict words, so the terminal
(bnexp.present), Markdown and the HTML report say the same thing. No Rich, no SciPy: it
reads the results' fields and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bnexp import formats
from bnexp.stats.common import MAX_SEEDS, RANK_TESTS, Advice, Note, Remark

if TYPE_CHECKING:
    from bnexp.stats import ClaimResult, SeedComparison


def comparison_sentence(c: SeedComparison) -> str:
    """The verdict line a reader may quote: built from the adjusted p, never the raw one."""
    if c.test == "none":
        return f"difference {_num(c.difference)}, {note_text(c.notes)}"
    line = evidence(c.difference, (c.ci_low, c.ci_high), c.ci_level, effect_text(c.test, c.effect_size),
                    name_of_test(c.test), seeds_text(c.test, c.n_a, c.n_b), note_text(c.notes), c.p_adjusted,
                    c.family_size, c.ci_of, c.ratio)
    if c.verdict == "distinguishable":
        return f"{line}: {formats.verdict(c.verdict)}"
    advice = advice_text(c.seeds_needed, "detect a difference this large", c.advice_reason)
    return f"{line}: {formats.verdict(c.verdict)}{advice}"


def claim_sentence(r: ClaimResult) -> str:
    """`holds: difference … [95% CI …], paired t-test over 5 seeds, p = …` (adjusted p)."""
    verdict = formats.verdict(r.verdict)
    if r.test == "none":
        return f"{verdict}: difference {_num(r.difference)}, {note_text(r.notes)}"
    test = name_of_test(r.test)
    if r.direction == "equivalent":
        test = f"TOST (margin {r.margin:.3g}) by {test}s"
    effect = effect_text(r.test, r.effect_size) if r.test in RANK_TESTS else None
    line = evidence(r.difference, (r.ci_low, r.ci_high), r.ci_level, effect,
                    test, seeds_text(r.test, r.n_better, r.n_than), note_text(r.notes),
                    r.p_adjusted, r.family_size, r.ci_of, r.ratio)
    if r.verdict != "inconclusive":
        return f"{verdict}: {line}"
    against = "; the observed difference goes against the claim" if r.against_claim else ""
    return f"{verdict}: {line}{against}{advice_text(r.seeds_needed, 'settle it', r.advice_reason)}"


NOTES = {
    Note.TOO_FEW_SEEDS: "too few seeds (n = {0}): run at least 3",
    Note.ZERO_VARIANCE: "zero variance: seed noise cannot be estimated, so there is no p-value",
    Note.ZERO_VARIANCE_RANKS: "zero variance: no t-test",
    Note.PARTIAL_OVERLAP: "unpaired: the groups share only {0} of their seeds",
    Note.UNBOUNDED_RATIO: "an odds ratio or its interval is unbounded at 0 of n: that end is null",
    Note.NO_EQUIVALENCE: ("untestable: TOST needs a t-test, and these values (failures, censoring or"
                          " zero variance) have none"),
    Note.FAILURES_RANKED_WORST: "failures ranked worst: {0} and {1}",
    Note.FAILURES_WORST_OUTCOME: "failures count as the worst outcome ({0} and {1})",
    Note.NEVER_REACHED: "never reached: {0} and {1}, censored at their last step",
    Note.MEDIANS: "Kaplan–Meier medians {0} and {1}",
}


def note_text(notes: tuple[Remark, ...]) -> str | None:
    """A result's notes (bnexp.stats.Remark) as one clause, `; `-separated; None when it has none."""
    return "; ".join(remark_text(r) for r in notes) or None


def remark_text(r: Remark) -> str:
    values = [_median(v) for v in r.values] if r.note == Note.MEDIANS else r.values
    return NOTES[r.note].format(*values)


def _median(m: float | None) -> str:
    return "not reached" if m is None else f"{m:g}"


def evidence(difference: float | None, ci: tuple, ci_level: float,
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


def effect_text(test: str, effect: float | None) -> str | None:
    if effect is None:
        return None
    if test in ("mann_whitney", "log_rank"):
        return f"P(b > a) = {effect:.2g}"
    if test == "wilcoxon":
        return f"b higher in {effect:.0%} of untied pairs"
    if test == "fisher":
        return None
    return f"{'d_z' if test == 'paired' else 'd'} = {effect:.2g}"


TEST_NAMES = {"paired": "paired t-test", "welch": "Welch t-test", "fisher": "Fisher's exact test",
              "mann_whitney": "exact Mann–Whitney test", "wilcoxon": "exact Wilcoxon signed-rank test",
              "log_rank": "log-rank permutation test"}


def name_of_test(test: str) -> str:
    return TEST_NAMES[test]


def seeds_text(test: str, n_a: int, n_b: int) -> str:
    if test == "fisher":
        return f"{n_a} and {n_b} runs"
    return f"{n_a} seeds" if test in ("paired", "wilcoxon") else f"{n_a} and {n_b} seeds"


def advice_text(seeds: int | None, goal: str, reason: str | None = None) -> str:
    """The seed advisor's clause: a number, or the reason there is none."""
    if seeds is not None:
        return f"; about {seeds} seeds per group would {goal} at 80% power"
    if reason == Advice.NOT_PLANNED:
        return "; no seed estimate: the seed advisor plans t-tests only"
    if reason == Advice.NO_DIFFERENCE:
        return "; no seed estimate: the observed difference is zero"
    return f"; not even {MAX_SEEDS} seeds per group would {goal} at 80% power"


def _bound(x: float | None, plain: bool = False) -> str:
    if x is None:
        return "∞"
    return f"{x:.3g}" if plain else _num(x)


def _num(x: float | None) -> str:
    return "not defined" if x is None else formats.signed(x, 3)
