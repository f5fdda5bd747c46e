"""bnexp.stats' tests that fit the data (issue 24): censoring, failures, ties, intervals that
agree with verdicts, what a design can decide, and the Welch seed advisor. Every p is checked
against exhaustive enumeration written out here, or SciPy's own result; power against a
seeded simulation written out here. Pure numbers: no runs, no TensorFlow."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from bnexp import stats as S, wording as W
from exact_tests import mann_whitney_by_counts, mann_whitney_by_enumeration, wilcoxon_by_enumeration


def by_seed(values, first_seed=0):
    return {first_seed + i: float(v) for i, v in enumerate(values)}


def assert_json_safe(outcome):
    d = outcome.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d


# --- time to event: reproductions 1 and 2 --------------------------------------------------

# Reproduction 1: 300 steps; BN reaches 0.95 at step 50 on 4 of 10 seeds and never on 6;
# without BN every seed reaches it at step 300. Counting "never" as 300 steps made
# `bn-sooner` hold (−100, p = 0.037); a sign test gives p = 0.75.
BN_STEPS = [50.0] * 4 + [300.0] * 6
BN_NEVER = frozenset(range(4, 10))
NONE_STEPS = [300.0] * 10


def test_reproduction_1_a_side_that_mostly_never_got_there_does_not_hold():
    claim = S.Claim(by_seed(BN_STEPS), by_seed(NONE_STEPS), "lower", time_to_event=True,
                    never_better=BN_NEVER)
    r = S.judge_claim_family([claim])[0]
    assert r.verdict != "holds" and r.verdict == "inconclusive"
    # time to event is unpaired: Mann–Whitney with "never" as the worst (latest) outcome
    assert r.test == "mann_whitney"
    assert r.p == pytest.approx(mann_whitney_by_counts(NONE_STEPS, [50.0] * 4 + [1e9] * 6), rel=1e-9)
    # P(BN later) + ½P(tie): 6 never beat all 10; 4 at step 50 beat none
    assert r.effect_size == pytest.approx(0.6)
    assert r.against_claim and "goes against the claim" in W.claim_sentence(r)
    assert "Kaplan–Meier medians not reached and 300" in W.note_text(r.notes)
    assert sps.binomtest(4, 10).pvalue == pytest.approx(0.754, abs=1e-3)  # the sign test


def test_reproduction_1_unpaired_is_mann_whitney_with_never_last():
    o = S.compare_outcomes(NONE_STEPS, BN_STEPS, "time_to_event", censored_b=[s in BN_NEVER for s in range(10)])
    assert o.test == "mann_whitney" and o.exact
    assert o.p == pytest.approx(mann_whitney_by_counts(NONE_STEPS, [50.0] * 4 + [10_000.0] * 6), rel=1e-9)
    assert o.verdict == "not_distinguishable"
    # Kaplan–Meier: 4 of 10 at step 50, S = 0.6 after it, never ≤ 1/2: no median
    assert (o.median_a, o.median_b, o.difference) == (300.0, None, None)
    assert "median_not_reached" in o.reasons and (o.n_censored_b, o.n_censored_a) == (6, 0)
    assert_json_safe(o)


def test_reproduction_2_reaching_on_every_seed_against_never_holds():
    # BN reaches 0.9 at step 50 on every seed; without BN never, within 1,000 steps.
    bn, none = by_seed([50.0] * 5), by_seed([1000.0] * 5)
    r = S.judge_claim_family([S.Claim(bn, none, "lower", time_to_event=True, never_than=frozenset(range(5)))])[0]
    assert (r.test, r.verdict) == ("mann_whitney", "holds")
    assert r.p == pytest.approx(2 / math.comb(10, 5), rel=1e-12)
    assert r.p == pytest.approx(mann_whitney_by_enumeration([1000.0] * 5, [50.0] * 5))
    assert r.advice_reason == "decided" and not r.against_claim
    # compare_outcomes ignores pairing for time to event: only two splits are as extreme
    o = S.compare_outcomes([1000.0] * 5, [50.0] * 5, "time_to_event", censored_a=[True] * 5, paired=True)
    assert o.p == pytest.approx(2 / math.comb(10, 5), rel=1e-12) and o.verdict == "distinguishable"
    assert (o.median_a, o.median_b) == (None, 50.0)


def log_rank_by_hand(times, events, labels) -> float:
    """The log-rank Z (Peto & Peto 1972) written out: Σ(O − E) over Σ hypergeometric variance."""
    times, events, labels = map(np.asarray, (times, events, labels))
    o_minus_e = var = 0.0
    for t in np.unique(times[events]):
        at_risk = times >= t
        n, n1 = at_risk.sum(), (at_risk & labels).sum()
        d = (events & (times == t)).sum()
        d1 = (events & (times == t) & labels).sum()
        o_minus_e += d1 - d * n1 / n
        var += d * (n1 / n) * (1 - n1 / n) * (n - d) / max(n - 1, 1)
    return o_minus_e / math.sqrt(var)


def test_interleaved_censoring_uses_the_log_rank_test_exactly_by_permutation():
    # one BN run stopped (censored) at step 80, before other runs got there: "never" is
    # not surely last, so the rank test does not apply; the log-rank permutation test does
    a_times, a_never = [100.0, 150.0, 200.0, 250.0], [False, False, False, True]
    b_times, b_never = [40.0, 60.0, 80.0, 90.0], [False, False, True, False]
    o = S.compare_outcomes(a_times, b_times, "time_to_event", censored_a=a_never, censored_b=b_never)
    assert o.test == "log_rank" and o.exact
    times, events = a_times + b_times, [not x for x in a_never + b_never]
    observed = abs(log_rank_by_hand(times, events, [False] * 4 + [True] * 4))
    splits = list(itertools.combinations(range(8), 4))
    labels = [[i in s for i in range(8)] for s in splits]
    expected = sum(abs(log_rank_by_hand(times, events, lab)) >= observed - 1e-9 for lab in labels) / len(splits)
    assert o.p == pytest.approx(expected, rel=1e-9)
    # Kaplan–Meier: a's curve is 3/4 after step 100 and 1/2 after 150, so its median is 150
    assert o.median_b == 60.0 and o.median_a == 150.0 and o.difference == -90.0


# --- failures as the worst outcome ---------------------------------------------------------


def test_two_of_five_diverged_is_not_distinguishable_and_counted():
    # The metrics issue's example: the three surviving runs are ahead of the baseline
    # (+0.012 over the survivors), but 2 of 5 diverged; counted as the worst outcome they
    # leave the groups indistinguishable.
    baseline = [0.950, 0.952, 0.948, 0.951, 0.949]
    survivors = [0.962, 0.964, 0.960]
    o = S.compare_outcomes(baseline, survivors, failed_b=2)
    assert (o.test, o.verdict, o.n_failed_b, o.n_b) == ("mann_whitney", "not_distinguishable", 2, 5)
    assert o.p == pytest.approx(mann_whitney_by_enumeration(baseline, survivors + [-1.0, -1.0]), rel=1e-9)
    assert o.p > 0.05 and o.difference is None and "shift_undefined" in o.reasons
    # P(b > a) + ½P(=): the 3 survivors beat all 5, the 2 failures none: 15/25
    assert o.effect == pytest.approx(0.6) and o.effect_name == "probability_of_superiority"
    assert 0 <= o.effect_low < 0.6 < o.effect_high <= 1
    assert_json_safe(o)


def test_failures_in_pairs_use_the_signed_rank_test_with_failures_last():
    a = [0.950, 0.952, 0.948, 0.951, 0.949, 0.950]
    b = [0.962, 0.964, 0.960, 0.963, float("nan"), float("nan")]
    failed = [False] * 4 + [True] * 2
    o = S.compare_outcomes(a, b, paired=True, failed_b=failed)
    assert o.test == "wilcoxon" and o.n_failed_b == 2
    # failures sit beyond every real value (at 0.948 − 1.016, one span below the lowest), so
    # their pairs are the largest differences, ordered by their partner's value
    failure = 0.948 - (0.964 - 0.948 + 1)
    d = [0.012] * 4 + [failure - 0.949, failure - 0.950]
    assert o.p == pytest.approx(wilcoxon_by_enumeration(d), rel=1e-9) and o.p == 1.0
    assert o.effect == pytest.approx(4 / 6) and o.effect_name == "pairs_b_higher"
    low, high = sps.binomtest(4, 6).proportion_ci(method="wilson")
    assert (o.effect_low, o.effect_high) == pytest.approx((low, high))


def test_lower_is_better_puts_failures_at_the_top():
    o = S.compare_outcomes([0.30, 0.31, 0.29], [0.20, 0.21, 0.22], failed_b=1, higher_is_better=False)
    assert o.p == pytest.approx(mann_whitney_by_enumeration([0.30, 0.31, 0.29], [0.20, 0.21, 0.22, 9.0]))


def test_equivalence_on_failures_is_untestable_with_a_reason():
    r = S.judge_claim_family([S.Claim(by_seed([0.9] * 4), by_seed([0.9] * 4), "equivalent", 0.01,
                                failed_better=frozenset({0}))])[0]
    assert r.verdict == "untestable" and r.p is None and r.notes == (S.Remark(S.Note.NO_EQUIVALENCE),)


def test_too_few_seeds_is_its_own_verdict():
    o = S.compare_outcomes([0.9, 0.91], [0.95, 0.96, 0.97])
    assert (o.verdict, o.test, o.p) == ("too_few_seeds", "none", None)
    assert_json_safe(o)


# --- intervals that agree with verdicts: reproduction 3 ------------------------------------


BASE = by_seed([0.970, 0.972, 0.968, 0.971, 0.969])


def test_reproduction_3_holm_intervals_exclude_zero_exactly_when_distinguishable():
    groups = [{s: v + d for (s, v), d in zip(BASE.items(), diffs)} for diffs in (
        [0.004, 0.005, 0.003, 0.0045, 0.0035],
        [0.002, 0.0005, 0.003, 0.0002, 0.0035],  # p ≈ 0.049 raw, not after Holm
        [0.001, -0.001, 0.0005, -0.0005, 0.0])]
    family = S.compare_family(BASE, groups)
    assert family[1].p < 0.05 <= family[1].p_adjusted
    a = np.array(list(BASE.values()))
    for c, g in zip(family, groups):
        level = 1 - 0.05 * c.p / c.p_adjusted
        assert c.ci_level == pytest.approx(level) and c.to_dict()["ci_level"] == c.ci_level
        ci = sps.ttest_rel(np.array(list(g.values())), a).confidence_interval(level)
        assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high))
        excludes_zero = c.ci_low > 0 or c.ci_high < 0
        assert excludes_zero == (c.verdict == "distinguishable")
    assert f"[{family[1].ci_level:.2%} CI" in W.comparison_sentence(family[1])


def test_reproduction_3_tost_interval_inside_the_margin_never_beside_inconclusive():
    better = {s: v + d for (s, v), d in zip(BASE.items(), [0.001, -0.001, 0.002, 0.0, 0.0005])}
    noise = [{s: v + d for (s, v), d in zip(BASE.items(), diffs)} for diffs in
             ([0.001, -0.002, 0.0005, 0.0015, -0.001], [-0.001, 0.002, 0.0, -0.0015, 0.0005])]
    claims = [S.Claim(better, BASE, "equivalent", 0.0018)] + [S.Claim(n, BASE, "higher") for n in noise]
    alone = S.judge_claim_family(claims[:1])[0]
    family = S.judge_claim_family(claims)
    tost = family[0]
    # on its own it holds; in the family of three Holm makes it inconclusive
    assert alone.verdict == "holds" and tost.verdict == "inconclusive"
    inside = lambda r: -0.0018 < r.ci_low and r.ci_high < 0.0018  # noqa: E731
    assert inside(alone) and not inside(tost)
    assert tost.ci_level == pytest.approx(1 - 2 * 0.05 * tost.p / tost.p_adjusted)
    # the unadjusted 90% interval lies inside the margin: the contradiction the issue saw
    d = np.array([better[s] - BASE[s] for s in BASE])
    ninety = sps.ttest_1samp(d, 0).confidence_interval(0.90)
    assert -0.0018 < ninety.low and ninety.high < 0.0018


def test_reproduction_3_fisher_interval_agrees_at_three_against_three():
    o = S.compare_outcomes([0, 0, 0], [1, 1, 1], "binary")
    assert (o.test, o.p, o.verdict) == ("fisher", pytest.approx(0.1), "not_distinguishable")
    assert o.ci_of == "odds_ratio" and o.ci_low < 1 and o.ci_high is None and "unbounded" in o.reasons
    assert_json_safe(o)
    # in a Holm family the odds-ratio interval is taken at the adjusted level too
    calls = [dict(a=[0] * 8, b=[1] * 8, kind="binary"), dict(a=[0] * 8, b=[1] * 6 + [0] * 2, kind="binary")]
    for o in S.judge_outcomes(calls):
        excludes_one = o.ci_low > 1
        assert excludes_one == (o.verdict == "distinguishable")
        assert o.ci_level == pytest.approx(1 - 0.05 * o.p / o.p_adjusted)


def test_holm_is_statsmodels():
    from statsmodels.stats.multitest import multipletests

    ps = [0.01, 0.04, 0.03, 0.2]
    assert S.holm(ps) == pytest.approx(list(multipletests(ps, method="holm")[1]))


# --- what a design can decide (reproduction 4's numbers) -----------------------------------


@pytest.mark.parametrize("test, n, expected", [
    ("fisher", 3, 0.1), ("mann_whitney", 3, 0.1), ("wilcoxon", 3, 0.25), ("wilcoxon", 5, 0.0625),
    ("mann_whitney", 5, 2 / 252), ("fisher", 5, 2 / 252), ("welch", 3, 0.0)])
def test_smallest_p_is_the_test_on_the_most_extreme_data(test, n, expected):
    assert S.smallest_p(test, n, n) == pytest.approx(expected, rel=1e-12)
    if test == "mann_whitney":
        assert expected == pytest.approx(mann_whitney_by_enumeration(range(n), range(n, 2 * n)))
    if test == "wilcoxon":
        assert expected == pytest.approx(wilcoxon_by_enumeration(range(1, n + 1)))


def test_can_decide_says_which_designs_cannot_reach_alpha():
    assert S.can_decide("binary", 3, 3, paired=False) == (False, pytest.approx(0.1))
    assert S.can_decide("binary", 5, 5, paired=False)[0]
    assert S.can_decide("time_to_event", 3, 3, paired=True) == (False, pytest.approx(0.1))
    assert S.can_decide("time_to_event", 4, 4, paired=True)[0]  # 2/70
    assert S.can_decide("continuous", 3, 3, paired=True) == (True, 0.0)


# --- the seed advisor: reproduction 8 ------------------------------------------------------


def welch_power_by_simulation(rng, difference, sd_a, sd_b, n, draws=10_000) -> float:
    """Rejection rate of the two-sided 5% Welch test, its statistic and df written out."""
    a, b = rng.normal(0, sd_a, (draws, n)), rng.normal(difference, sd_b, (draws, n))
    va, vb = a.var(1, ddof=1) / n, b.var(1, ddof=1) / n
    df = (va + vb) ** 2 / ((va**2 + vb**2) / (n - 1))
    t = (b.mean(1) - a.mean(1)) / np.sqrt(va + vb)
    return float(np.mean(np.abs(t) > sps.t.ppf(0.975, df)))


def test_reproduction_8_welch_advice_is_within_one_seed_of_simulation():
    # unequal spreads (SD 0.001 against 0.005); a true difference of 1.44 average SDs
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) / math.sqrt(2.5)  # sample SD exactly 1
    diff = 1.44 * math.sqrt((0.001**2 + 0.005**2) / 2)
    a, b = by_seed(0.97 + 0.001 * x), by_seed(0.97 + diff + 0.005 * x, first_seed=50)
    c = S.compare_seed_groups(a, b)
    assert c.test == "welch" and c.verdict == "not_distinguishable"
    rng = np.random.default_rng(2024)
    simulated = next(n for n in range(3, 40) if welch_power_by_simulation(rng, diff, 0.001, 0.005, n) >= 0.8)
    assert abs(c.seeds_needed - simulated) <= 1
    # the Student plan it used to give is one seed short, where Welch has about 0.77 power
    student = S.seeds_for_power(lambda n: S.power(diff / math.sqrt((0.001**2 + 0.005**2) / 2), n, "welch"))
    assert (student, c.seeds_needed) == (9, 10)
    assert welch_power_by_simulation(rng, diff, 0.001, 0.005, 9) < 0.8


def test_advice_is_a_number_or_a_reason_and_says_when_the_data_go_against_the_claim():
    than = BASE
    better = {s: v + d for (s, v), d in zip(BASE.items(), [-0.001, 0.0005, -0.0015, 0.0, -0.0008])}
    r = S.judge_claim_family([S.Claim(better, than, "higher")])[0]
    assert r.verdict == "inconclusive" and r.against_claim
    assert r.seeds_needed is not None and r.advice_reason is None
    assert "the observed difference goes against the claim; about" in W.claim_sentence(r)
    ranked = S.judge_claim_family([S.Claim(by_seed([60.0, 300, 300, 80]), by_seed([300.0] * 4), "lower",
                                     time_to_event=True, never_than=frozenset(range(4)),
                                     never_better=frozenset({1, 2}))])[0]
    assert ranked.verdict == "inconclusive" and ranked.seeds_needed is None
    assert ranked.advice_reason == "not_planned" and "plans t-tests only" in W.claim_sentence(ranked)


def test_claims_on_sides_that_tie_everywhere_are_inconclusive_not_a_crash():
    same = by_seed([0.9] * 4)
    r = S.judge_claim_family([S.Claim(same, dict(same), "higher")])[0]
    assert (r.test, r.p, r.verdict, r.effect_size) == ("wilcoxon", 1.0, "inconclusive", None)
    assert not r.against_claim and "p = 1" in W.claim_sentence(r)
    # an untestable claim with no difference still has a sentence
    u = S.judge_claim_family([S.Claim(by_seed([50.0] * 4), by_seed([60.0] * 4), "equivalent", 1.0,
                                time_to_event=True, never_better=frozenset({0, 1, 2}))])[0]
    assert u.verdict == "untestable" and u.difference is None
    assert W.claim_sentence(u) == f"untestable: difference not defined, {W.NOTES[S.Note.NO_EQUIVALENCE]}"


@pytest.mark.parametrize("paired", [False, True])
def test_untied_rank_tests_take_scipys_exact_null_and_equal_enumeration(paired):
    """Without ties SciPy's exact distribution is used (cheap); its p is the enumeration's."""
    from scipy import stats as sp

    from bnexp.stats.ranks import rank_test

    rng = np.random.default_rng(7)
    a, b = rng.normal(size=10), rng.normal(size=10) + 0.8
    test, p, exact = rank_test(a, b, paired=paired)
    every = sp.PermutationMethod(n_resamples=np.inf)
    enumerated = (sp.wilcoxon(b - a, method=every) if paired else sp.mannwhitneyu(b, a, method=every)).pvalue
    assert exact and test == ("wilcoxon" if paired else "mann_whitney")
    assert p == pytest.approx(enumerated, abs=1e-12)
