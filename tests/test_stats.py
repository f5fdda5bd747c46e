"""bnexp.stats against independent references: textbook results, NumPy formulas, hand-worked
Holm and TOST, and Monte-Carlo power. Pure numbers: no runs, no TensorFlow."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from bnexp import stats as S, wording as W
from exact_tests import mann_whitney_by_enumeration, wilcoxon_by_enumeration

# Student's sleep data (Cushny & Peebles 1905), as in R's `sleep`: extra hours of sleep
# for ten patients under two drugs. R documents, for group 2 minus group 1,
#   t.test(..., paired = TRUE): t = 4.0621, df = 9, p = 0.002833, 95% CI [0.7001142, 2.4598858]
#   t.test(...)  (Welch):       t = 1.8608, df = 17.776, p = 0.07939, 95% CI [-0.2054832, 3.3654832]
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def by_seed(values, first_seed=0):
    return {first_seed + i: float(v) for i, v in enumerate(values)}


def seed_group(rng, n, mean, sd, first_seed=0):
    return by_seed(rng.normal(mean, sd, n), first_seed)


BASE = by_seed([0.970, 0.972, 0.968, 0.971, 0.969])


def shifted(differences, base=BASE):
    """A group on the same seeds as `base`, seed by seed `differences` away from it."""
    return {s: base[s] + d for s, d in zip(sorted(base), differences)}


# --- the test chosen, and its numbers ------------------------------------------------------


def test_paired_matches_the_textbook_sleep_result():
    c = S.compare_seed_groups(by_seed(SLEEP_1), by_seed(SLEEP_2))
    assert c.test == "paired"
    assert c.difference == pytest.approx(1.58)
    assert c.p == pytest.approx(0.002833, abs=5e-7)
    assert (c.ci_low, c.ci_high) == pytest.approx((0.7001142, 2.4598858), abs=1e-6)
    diff = np.subtract(SLEEP_2, SLEEP_1)
    assert c.effect_size == pytest.approx(diff.mean() / diff.std(ddof=1))


def test_welch_matches_the_textbook_sleep_result_when_seeds_differ():
    c = S.compare_seed_groups(by_seed(SLEEP_1), by_seed(SLEEP_2, first_seed=100))
    assert c.test == "welch"
    assert c.p == pytest.approx(0.07939, abs=5e-6)
    assert (c.ci_low, c.ci_high) == pytest.approx((-0.2054832, 3.3654832), abs=1e-6)
    a, b = np.array(SLEEP_1), np.array(SLEEP_2)
    pooled = math.sqrt((9 * a.var(ddof=1) + 9 * b.var(ddof=1)) / 18)
    assert c.effect_size == pytest.approx((b.mean() - a.mean()) / pooled)


def test_paired_numbers_match_the_formula():
    rng = np.random.default_rng(1)
    a = seed_group(rng, 6, 0.97, 0.002)
    b = {s: v + rng.normal(0.001, 0.0015) for s, v in a.items()}
    c = S.compare_seed_groups(a, b)
    d = np.array([b[s] - a[s] for s in sorted(a)])
    se = d.std(ddof=1) / math.sqrt(len(d))
    t = d.mean() / se
    half = sps.t.ppf(0.975, len(d) - 1) * se
    assert c.test == "paired" and c.n_a == c.n_b == 6
    assert c.difference == pytest.approx(d.mean())
    assert c.p == pytest.approx(2 * sps.t.sf(abs(t), len(d) - 1))
    assert (c.ci_low, c.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))


def test_welch_numbers_match_the_satterthwaite_formula():
    rng = np.random.default_rng(2)
    a = seed_group(rng, 4, 0.95, 0.004)
    b = seed_group(rng, 7, 0.96, 0.001, first_seed=10)
    c = S.compare_seed_groups(a, b)
    xa, xb = np.array(list(a.values())), np.array(list(b.values()))
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    diff = xb.mean() - xa.mean()
    half = sps.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (c.test, c.n_a, c.n_b) == ("welch", 4, 7)
    assert c.difference == pytest.approx(diff)
    assert c.p == pytest.approx(2 * sps.t.sf(abs(diff) / math.sqrt(va + vb), df))
    assert (c.ci_low, c.ci_high) == pytest.approx((diff - half, diff + half))


def test_partially_shared_seeds_use_welch_on_every_value_and_say_so():
    rng = np.random.default_rng(3)
    a = seed_group(rng, 5, 0.97, 0.002)
    b = seed_group(rng, 5, 0.97, 0.002, first_seed=2)  # seeds 2..6 share 2, 3, 4 with 0..4
    c = S.compare_seed_groups(a, b)
    assert (c.test, c.n_a, c.n_b) == ("welch", 5, 5)
    assert W.note_text(c.notes) == "unpaired: the groups share only 3 of their seeds"
    assert "(unpaired: the groups share only 3 of their seeds)" in W.comparison_sentence(c)
    welch = sps.ttest_ind(list(b.values()), list(a.values()), equal_var=False)
    assert c.p == pytest.approx(welch.pvalue)


# --- when there is no p-value --------------------------------------------------------------


def test_two_copies_of_a_run_are_too_few_seeds_never_p_zero():
    """Issue 12's first reproduction, as the caller hands it over: duplicates merged, n = 2."""
    c = S.compare_seed_groups({0: 0.97, 1: 0.97}, {0: 0.98, 1: 0.98})
    assert (c.test, c.verdict) == ("none", "too_few_seeds")
    assert c.p is c.p_adjusted is c.ci_low is c.ci_high is c.effect_size is None
    assert W.comparison_sentence(c) == "difference +0.01, too few seeds (n = 2): run at least 3"


def test_too_few_seeds_counts_the_smaller_group():
    c = S.compare_seed_groups(by_seed([0.9, 0.91, 0.92, 0.93]), by_seed([0.95, 0.96], first_seed=9))
    assert c.verdict == "too_few_seeds" and "(n = 2)" in W.comparison_sentence(c)


@pytest.mark.parametrize("a, b, test, expected", [
    ({0: 0.97, 1: 0.97, 2: 0.97}, {5: 0.98, 6: 0.98, 7: 0.98}, "mann_whitney", 2 / 20),  # both constant
    ({0: 0.97, 1: 0.97, 2: 0.97}, {0: 0.97, 1: 0.97, 2: 0.97}, "wilcoxon", 1.0),  # identical constants
    ({0: 0.97, 1: 0.96, 2: 0.95}, {0: 0.98, 1: 0.97, 2: 0.96}, "wilcoxon", 2 / 8),  # equal paired differences
    # equal up to rounding: in binary these differences spread by 1e-16, and scipy's
    # paired t-test would report p = 1e-29
    ({0: 0.91, 1: 0.93, 2: 0.95}, {0: 0.92, 1: 0.94, 2: 0.96}, "wilcoxon", 2 / 8),
])
def test_zero_variance_falls_back_to_an_exact_rank_test(a, b, test, expected):
    # Issue 24 changes this deliberately: zero variance used to read not_distinguishable
    # with no test at all; now the exact rank test decides, with no interval for a shift.
    c = S.compare_seed_groups(a, b)
    assert c.test == test and c.p == pytest.approx(expected, rel=1e-12)
    if test == "mann_whitney":
        assert c.p == pytest.approx(mann_whitney_by_enumeration(list(a.values()), list(b.values())))
    else:
        assert c.p == pytest.approx(wilcoxon_by_enumeration([round(b[s] - a[s], 12) for s in a]))
    assert c.verdict == "not_distinguishable" and c.ci_low is None and c.ci_high is None
    assert c.notes[0] == S.Remark(S.Note.ZERO_VARIANCE_RANKS) and c.seeds_needed is None
    assert c.to_dict()["advice_reason"] == "not_planned"
    assert json.loads(json.dumps(c.to_dict())) == c.to_dict()


def test_reproduction_2_ten_runs_at_094_against_ten_at_090_are_distinguishable():
    c = S.compare_seed_groups(by_seed([0.90] * 10), by_seed([0.94] * 10, first_seed=100))
    assert (c.test, c.verdict) == ("mann_whitney", "distinguishable")
    assert c.p == pytest.approx(2 / math.comb(20, 10), rel=1e-12)  # 1.08e-5: only the two complete separations
    assert c.p == pytest.approx(1.1e-5, rel=0.02)
    # as a claim on the same seeds: the signed-rank test, 2/2^10
    claim = S.claim_verdict(by_seed([0.94] * 10), by_seed([0.90] * 10), "higher")
    assert (claim.verdict, claim.test, claim.effect_size) == ("holds", "wilcoxon", 1.0)
    assert claim.p == pytest.approx(2 / 2**10)


def test_one_constant_group_is_still_tested():
    c = S.compare_seed_groups(by_seed([0.97, 0.97, 0.97]), by_seed([0.95, 0.96, 0.94], first_seed=5))
    assert c.test == "welch" and c.p is not None and c.p > 0


def test_non_finite_or_empty_groups_are_refused():
    with pytest.raises(ValueError):
        S.compare_seed_groups({0: 0.9, 1: math.nan, 2: 0.8}, {0: 0.9, 1: 0.8, 2: 0.7})
    with pytest.raises(ValueError):
        S.compare_seed_groups({}, {0: 0.9})


# --- Holm and the family -------------------------------------------------------------------


@pytest.mark.parametrize("pvalues, adjusted", [
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running max
    # makes the last 0.06
    ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),
    ([0.01, None, 0.04], [0.02, None, 0.04]),  # None is outside the family: m = 2
    ([0.5, 0.6], [1.0, 1.0]),  # capped at 1, then monotone
    ([0.02, 0.02, 0.02], [0.06, 0.06, 0.06]),
    ([0.3], [0.3]),
    ([None], [None]),
    ([], []),
])
def test_holm_matches_hand_computed_values(pvalues, adjusted):
    assert S.holm(pvalues) == pytest.approx(adjusted)


def test_family_is_holm_adjusted_and_the_verdict_uses_the_adjusted_p():
    groups = [shifted([0.004, 0.005, 0.003, 0.0045, 0.0035]),  # p ≈ 0.0002
              shifted([0.002, 0.0005, 0.003, 0.0002, 0.0035]),  # p ≈ 0.049
              shifted([0.001, -0.001, 0.0005, -0.0005, 0.0]),  # p ≈ 1
              {0: 0.99, 1: 0.99}]  # too few seeds: outside the family
    family = S.compare_family(BASE, groups)
    raw = [c.p for c in family]
    assert [c.p_adjusted for c in family] == pytest.approx(S.holm(raw))
    assert all(c.family_size == 3 for c in family)
    assert family[3].verdict == "too_few_seeds" and family[3].p_adjusted is None
    for c in family[:3]:
        assert ("distinguishable" if c.p_adjusted < 0.05 else "not_distinguishable") == c.verdict
        assert f"Holm-adjusted p = {c.p_adjusted:.2g}" in W.comparison_sentence(c)
    # the second group is significant before adjustment and not after
    assert family[1].p < 0.05 <= family[1].p_adjusted
    assert family[1].verdict == "not_distinguishable"
    # so the advisor plans at the Bonferroni level 0.05 / 3, not at 0.05
    n, effect = family[1].seeds_needed, family[1].effect_size
    assert S.power(effect, n, "paired", alpha=0.05 / 3) >= 0.8
    assert S.power(effect, n - 1, "paired", alpha=0.05 / 3) < 0.8
    assert n > 5


def test_single_comparison_says_p_not_holm():
    c = S.compare_seed_groups(by_seed(SLEEP_1), by_seed(SLEEP_2))
    assert c.p_adjusted == c.p and c.family_size == 1
    assert "Holm" not in W.comparison_sentence(c) and "p = 0.0028" in W.comparison_sentence(c)


def test_sentence_and_json_fields():
    c = S.compare_seed_groups(by_seed(SLEEP_1), by_seed(SLEEP_2))
    assert W.comparison_sentence(c) == ("difference +1.58 [95% CI +0.7, +2.46], d_z = 1.3, paired t-test "
                            "over 10 seeds, p = 0.0028: distinguishable from seed noise")
    assert json.loads(json.dumps(c.to_dict())) == c.to_dict()
    # issue 24 adds ci_level, ci_of and advice_reason
    assert list(c.to_dict()) == ["test", "p", "p_adjusted", "difference", "ci_low", "ci_high", "ci_level",
                                 "ci_of", "effect_size", "n_a", "n_b", "verdict", "seeds_needed",
                                 "advice_reason"]  # the note's words are bnexp.wording's


def test_tiny_p_is_never_printed_as_zero():
    a = by_seed([0.0, 0.001, 0.002, 0.001, 0.0])
    c = S.compare_seed_groups(a, {s: v + 1.0 + 1e-4 * s for s, v in a.items()})
    assert c.p < 1e-4 and "p < 0.0001" in W.comparison_sentence(c)


# --- the seed advisor ----------------------------------------------------------------------


def simulated_power(rng, effect, n, paired, reps=20000):
    """Rejection rate of the two-sided 5% test on simulated data (unit noise SD)."""
    if paired:
        d = rng.normal(effect, 1.0, (reps, n))
        t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
        return np.mean(np.abs(t) > sps.t.ppf(0.975, n - 1))
    a, b = rng.normal(0, 1.0, (reps, n)), rng.normal(effect, 1.0, (reps, n))
    va, vb = a.var(1, ddof=1) / n, b.var(1, ddof=1) / n
    df = (va + vb) ** 2 / ((va**2 + vb**2) / (n - 1))
    t = (b.mean(1) - a.mean(1)) / np.sqrt(va + vb)
    return np.mean(np.abs(t) > sps.t.ppf(0.975, df))


@pytest.mark.parametrize("paired", [True, False])
def test_seed_advisor_gives_the_first_n_with_80_percent_power(paired):
    rng = np.random.default_rng(5)
    base = seed_group(rng, 5, 0.97, 0.002)
    if paired:
        group = {s: v + 0.0012 + rng.normal(0, 0.0015) for s, v in base.items()}
    else:
        group = seed_group(rng, 5, 0.9715, 0.002, first_seed=50)
    c = S.compare_seed_groups(base, group)
    assert c.verdict == "not_distinguishable"
    xa, xb = np.array(list(base.values())), np.array(list(group.values()))
    sd = (np.std(xb - xa, ddof=1) if paired
          else math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2))
    effect = (xb.mean() - xa.mean()) / sd
    n = c.seeds_needed
    assert n is not None and 5 < n < 60
    test = "paired" if paired else "welch"
    assert S.power(effect, n, test) >= 0.8 > S.power(effect, n - 1, test)
    # Welch's power is a little below the Student power the advisor plans with
    tolerance = 0.015 if paired else 0.025
    for m in (n - 1, n):
        assert simulated_power(rng, effect, m, paired) == pytest.approx(
            S.power(effect, m, test), abs=tolerance)
    assert f"about {n} seeds per group would detect" in W.comparison_sentence(c)


def test_seed_advisor_has_no_answer_for_a_zero_or_hopeless_difference():
    a = by_seed([0.97, 0.972, 0.968, 0.971])
    zero = S.compare_seed_groups(a, {s: a[s] + d for s, d in zip(a, [0.001, -0.001, 0.002, -0.002])})
    assert zero.difference == pytest.approx(0, abs=1e-12)
    assert zero.seeds_needed is None
    tiny = S.compare_seed_groups(a, {s: a[s] + d for s, d in zip(a, [0.00102, -0.001, 0.002, -0.002])})
    assert tiny.seeds_needed is None
    assert "not even 1000 seeds per group would detect" in W.comparison_sentence(tiny)


def test_no_advice_when_distinguishable_or_too_few():
    assert S.compare_seed_groups(by_seed(SLEEP_1), by_seed(SLEEP_2)).seeds_needed is None
    assert S.compare_seed_groups({0: 0.9, 1: 0.8}, {0: 0.7, 1: 0.6}).seeds_needed is None


# --- claims --------------------------------------------------------------------------------


def planted(rng, shift, noise=0.002, n=5):
    than = seed_group(rng, n, 0.97, noise)
    return {s: v + shift + rng.normal(0, noise / 4) for s, v in than.items()}, than


def test_planted_difference_holds_and_its_reverse_is_contradicted():
    rng = np.random.default_rng(6)
    better, than = planted(rng, 0.01)
    held = S.claim_verdict(better, than, "higher")
    assert (held.verdict, held.test, held.n_better, held.n_than) == ("holds", "paired", 5, 5)
    assert held.difference == pytest.approx(np.mean(list(better.values()))
                                            - np.mean(list(than.values())))
    assert held.p == pytest.approx(sps.ttest_rel(list(better.values()), list(than.values())).pvalue)
    assert S.claim_verdict(better, than, "lower").verdict == "contradicted"
    assert S.claim_verdict(than, better, "lower").verdict == "holds"


def test_noise_is_inconclusive_with_advice():
    diffs = np.array([0.002, -0.0015, 0.0025, -0.001, 0.0005])
    r = S.claim_verdict(shifted(diffs), BASE, "higher")
    assert r.verdict == "inconclusive" and r.p >= 0.05
    d_z = diffs.mean() / diffs.std(ddof=1)
    n = r.seeds_needed
    assert S.power(d_z, n, "paired") >= 0.8 > S.power(d_z, n - 1, "paired") and n > 5
    assert W.claim_sentence(r).startswith("inconclusive: difference +0.0005 [95% CI ")
    assert W.claim_sentence(r).endswith(f"about {n} seeds per group would settle it at 80% power")


def tost_by_hand(d, margin):
    """TOST on paired differences: t statistics against -margin and +margin."""
    se = d.std(ddof=1) / math.sqrt(len(d))
    df = len(d) - 1
    p_above_low = sps.t.sf((d.mean() + margin) / se, df)
    p_below_high = sps.t.cdf((d.mean() - margin) / se, df)
    return max(p_above_low, p_below_high)


def test_equal_groups_with_a_wide_margin_are_equivalent_by_tost():
    rng = np.random.default_rng(8)
    better, than = planted(rng, 0.0002)
    r = S.claim_verdict(better, than, "equivalent", margin=0.005)
    d = np.array([better[s] - than[s] for s in sorted(than)])
    assert r.verdict == "holds" and r.ci_level == pytest.approx(0.90)
    assert r.p == pytest.approx(tost_by_hand(d, 0.005))
    half = sps.t.ppf(0.95, 4) * d.std(ddof=1) / math.sqrt(5)
    assert (r.ci_low, r.ci_high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert "90% CI" in W.claim_sentence(r) and "TOST (margin 0.005)" in W.claim_sentence(r)


def test_tost_with_welch_matches_the_hand_computation():
    rng = np.random.default_rng(9)
    than = seed_group(rng, 6, 0.97, 0.001)
    better = seed_group(rng, 5, 0.9702, 0.002, first_seed=20)
    r = S.claim_verdict(better, than, "equivalent", margin=0.004)
    xa, xb = np.array(list(than.values())), np.array(list(better.values()))
    va, vb = xa.var(ddof=1) / 6, xb.var(ddof=1) / 5
    df = (va + vb) ** 2 / (va**2 / 5 + vb**2 / 4)
    diff, se = xb.mean() - xa.mean(), math.sqrt(va + vb)
    expected = max(sps.t.sf((diff + 0.004) / se, df), sps.t.cdf((diff - 0.004) / se, df))
    assert r.test == "welch" and r.p == pytest.approx(expected)


def test_a_difference_beyond_the_margin_contradicts_equivalence():
    rng = np.random.default_rng(10)
    better, than = planted(rng, -0.01)
    r = S.claim_verdict(better, than, "equivalent", margin=0.002)
    d = np.array([better[s] - than[s] for s in sorted(than)])
    se = d.std(ddof=1) / math.sqrt(5)
    assert r.verdict == "contradicted"
    assert r.p == pytest.approx(sps.t.cdf((d.mean() + 0.002) / se, 4))  # diff < -margin


def test_equivalence_that_cannot_be_settled_is_inconclusive_with_advice():
    better = shifted([0.003, -0.002, 0.0025, -0.001, 0.0005])
    r = S.claim_verdict(better, BASE, "equivalent", margin=0.002)
    assert r.verdict == "inconclusive" and r.seeds_needed is not None and r.seeds_needed > 5
    sd = np.std([better[s] - BASE[s] for s in BASE], ddof=1)
    low, high = (r.difference + 0.002) / sd, (r.difference - 0.002) / sd
    lower_bound = lambda n: (S.power(low, n, "paired", "greater")  # noqa: E731
                             + S.power(high, n, "paired", "less") - 1)
    assert lower_bound(r.seeds_needed) >= 0.8 > lower_bound(r.seeds_needed - 1)


def test_claims_family_is_holm_adjusted():
    rng = np.random.default_rng(12)
    claims = [S.Claim(*planted(rng, 0.01), "higher"), S.Claim(*planted(rng, 0.0), "higher"),
              S.Claim(*planted(rng, 0.0001), "equivalent", 0.005)]
    results = S.judge_claim_family(claims)
    assert [r.p_adjusted for r in results] == pytest.approx(S.holm([r.p for r in results]))
    assert all(r.family_size == 3 for r in results)
    assert "Holm-adjusted p" in W.claim_sentence(results[0])


@pytest.mark.parametrize("direction, margin, n", [
    ("higher", None, 2), ("sideways", None, 5), ("equivalent", None, 5),
    ("equivalent", 0.0, 5), ("higher", 0.01, 5),
])
def test_malformed_claims_are_refused(direction, margin, n):
    rng = np.random.default_rng(13)
    with pytest.raises(ValueError):
        S.claim_verdict(*planted(rng, 0.01, n=n), direction, margin)


def test_claim_json_fields():
    rng = np.random.default_rng(14)
    d = S.claim_verdict(*planted(rng, 0.01), "higher").to_dict()
    assert list(d) == ["verdict", "difference", "ci_low", "ci_high", "ci_level", "ci_of", "p",
                       "p_adjusted", "n_better", "n_than", "seeds_needed", "advice_reason",
                       "against_claim", "test"]


# --- Fisher's exact test: the 0/1 metric `diverged` ----------------------------------------


def fisher_p_by_hand(k_b: int, n_b: int, k_a: int, n_a: int) -> float:
    """Central two-sided Fisher p from the hypergeometric law, written out: twice the
    smaller tail probability of the tables with the same margins (capped at 1)."""
    ones, n = k_a + k_b, n_a + n_b

    def prob(k: int) -> float:
        return math.comb(n_b, k) * math.comb(n_a, ones - k) / math.comb(n, ones)

    support = range(max(0, ones - n_a), min(ones, n_b) + 1)
    lower = sum(prob(k) for k in support if k <= k_b)
    upper = sum(prob(k) for k in support if k >= k_b)
    return min(1.0, 2 * min(lower, upper))


def zero_one(ones: int, n: int, first_seed: int = 0) -> dict[int, float]:
    return {first_seed + i: float(i < ones) for i in range(n)}


def test_fisher_all_against_none_matches_the_hand_computed_values():
    # 0 of 5 BN runs diverge, 5 of 5 without: the only tables as extreme are this one and
    # its mirror, each 1 / C(10, 5), so p = 2/252.
    e = S.fisher(zero_one(5, 5), zero_one(0, 5))
    assert e.test == "fisher" and e.p == pytest.approx(2 / 252, rel=1e-12)
    assert e.difference == -1.0 and e.effect_size == -1.0
    # the odds ratio is 0 and its interval [0, high]: None is never used for a finite 0
    assert (e.ci_of, e.ratio, e.ci_low) == ("odds_ratio", 0.0, 0.0) and 0 < e.ci_high < 1


@pytest.mark.parametrize("k_b, n_b, k_a, n_a", [(1, 5, 4, 6), (0, 3, 3, 3), (2, 7, 2, 7), (6, 8, 1, 5)])
def test_fisher_is_the_central_test_its_odds_ratio_interval_inverts(k_b, n_b, k_a, n_a):
    # Issue 24 changes this deliberately: the p is the central one (twice the smaller tail)
    # and the interval the conditional odds ratio's, which inverts that same test; before,
    # the minimum-likelihood p stood beside a Newcombe risk-difference interval that could
    # disagree with it ([+0.21, +1.0] beside p = 0.10 at 3/3 vs 0/3).
    e = S.fisher(zero_one(k_a, n_a), zero_one(k_b, n_b, first_seed=100))
    assert e.p == pytest.approx(fisher_p_by_hand(k_b, n_b, k_a, n_a), rel=1e-9)
    assert e.difference == pytest.approx(k_b / n_b - k_a / n_a) and (e.n_a, e.n_b) == (n_a, n_b)
    # each finite end is where the noncentral hypergeometric tail at that odds ratio is 2.5%
    ones = k_a + k_b
    law = lambda odds: sps.nchypergeom_fisher(n_a + n_b, n_b, ones, odds)  # noqa: E731
    if e.ci_low not in (None, 0.0):
        assert law(e.ci_low).sf(k_b - 1) == pytest.approx(0.025, rel=1e-4)
    if e.ci_high is not None:
        assert law(e.ci_high).cdf(k_b) == pytest.approx(0.025, rel=1e-4)
    excludes_one = (e.ci_low or 0) > 1 or (e.ci_high is not None and e.ci_high < 1)
    assert excludes_one == (e.p < 0.05)


def test_reproduction_3_fisher_at_3_of_3_against_0_of_3():
    e = S.fisher(zero_one(0, 3), zero_one(3, 3, first_seed=10))
    assert e.p == pytest.approx(0.1) and e.ratio is None and e.ci_high is None  # infinite: null, with a reason
    assert e.ci_low < 1 and e.notes == (S.Remark(S.Note.UNBOUNDED_RATIO),)
    assert S.fisher(zero_one(0, 3), zero_one(3, 3, first_seed=10)).ci_low == pytest.approx(
        sps.contingency.odds_ratio([[3, 0], [0, 3]], kind="conditional").confidence_interval().low)


def binary_claim(better, than, direction):
    """A claim on a 0/1 metric, as bnexp.claims builds one for `diverged`."""
    return S.judge_claim_family([S.Claim(better, than, direction, binary=True)])[0]


def test_a_diverged_claim_uses_fisher_where_a_t_test_has_no_variance():
    # Every run without BN diverges, none with: constant sides, which a t-test cannot judge.
    holds = binary_claim(zero_one(0, 5), zero_one(5, 5), "lower")
    assert (holds.test, holds.verdict) == ("fisher", "holds") and holds.p == pytest.approx(2 / 252)
    assert "Fisher's exact test over 5 and 5 runs" in W.claim_sentence(holds)
    assert binary_claim(zero_one(0, 5), zero_one(5, 5), "higher").verdict == "contradicted"
    # Three against three cannot reach 5% (p = 2/20): inconclusive, and no seed advice.
    few = binary_claim(zero_one(0, 3), zero_one(3, 3), "lower")
    assert (few.verdict, few.p, few.seeds_needed) == ("inconclusive", pytest.approx(0.1), None)
    assert "seeds per group" not in W.claim_sentence(few)
    same = binary_claim(zero_one(0, 5), zero_one(0, 5), "lower")
    assert (same.verdict, same.p, same.difference) == ("inconclusive", 1.0, 0.0)


def test_fisher_refuses_values_other_than_zero_and_one_and_equivalence():
    with pytest.raises(ValueError, match="0/1"):
        S.fisher({0: 0.0, 1: 0.5, 2: 1.0}, zero_one(1, 3))
    with pytest.raises(ValueError, match="not equivalent"):
        S.judge_claim_family([S.Claim(zero_one(0, 5), zero_one(1, 5), "equivalent", 0.1, binary=True)])
