"""bnexp.claims on small synthetic runs with known numbers and seed-to-seed spread.

Each verdict is checked against an independent computation: the per-seed values by
NumPy from the rows, the tests by scipy.stats directly, Holm by hand. No files, no
TensorFlow.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from bnexp import claims as C
from bnexp.errors import ConfigError, UsageError
from bnexp.sweep import flow

WHERE = "claims.yaml"
SEEDS = [0, 1, 2, 3, 4]
GRID = {"model.norm.kind": ["none", "batch"], "train.learning_rate": [0.1]}
NONE = {"model.norm.kind": "none", "train.learning_rate": 0.1}
BATCH = {"model.norm.kind": "batch", "train.learning_rate": 0.1}
# The last five evaluations sit around the run's final accuracy, so their mean is it.
LAST_FIVE = [-0.002, -0.001, 0.0, 0.001, 0.002]
THAN_FINAL = [0.950, 0.955, 0.948, 0.952, 0.951]  # seed-to-seed spread of the baseline


def run(final: float, *, status="completed", evals=8, total_steps=800, **extra) -> C.RunRecord:
    """A run of `evals` evaluations every 100 steps, climbing to `final` (its last-5 mean)."""
    early = [final - 0.05 + 0.005 * i for i in range(evals - 5)]
    accuracies = early + [final + d for d in LAST_FIVE]
    rows = [{"step": 100 * (i + 1), "test_accuracy": a, "test_loss": 1.0 - a}
            for i, a in enumerate(accuracies)]
    return C.RunRecord(status=status, total_steps=total_steps, metrics=rows, **extra)


def finals(runs: dict[int, C.RunRecord]) -> np.ndarray:
    """Final accuracy by NumPy, straight from the rows: the reference for run_metric."""
    return np.array([np.mean([r["test_accuracy"] for r in runs[s].metrics[-5:]]) for s in sorted(runs)])


def entry(**changes) -> dict:
    raw = {"name": "bn-ends-higher", "claim": "BN ends higher", "source": "Ioffe & Szegedy 2015, Figure 1(a)",
           "metric": "final_accuracy", "better": {"model.norm.kind": "batch"},
           "than": {"model.norm.kind": "none"}, "direction": "higher"}
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def validated(*raws, grid=GRID, seeds=SEEDS) -> list[C.Expect]:
    return C.validate_claims(list(raws), grid, seeds, WHERE, canonical=flow)


def judged(raws, groups: dict[str, dict[int, C.RunRecord]], seeds=SEEDS) -> list[dict]:
    """Judge the entries on runs looked up by their grid point."""
    return C.judge_entries(validated(*raws, seeds=seeds), lambda point: groups.get(flow(point), {}), seeds, WHERE)


def groups_of(than: dict[int, C.RunRecord], better: dict[int, C.RunRecord]) -> dict:
    return {flow(NONE): than, flow(BATCH): better}


def by_seed(values, **kwargs) -> dict[int, C.RunRecord]:
    return {s: run(v, **kwargs) for s, v in zip(SEEDS, values)}


THAN = by_seed(THAN_FINAL)
PLANTED = by_seed([v + d for v, d in zip(THAN_FINAL, [0.010, 0.012, 0.009, 0.011, 0.013])])


# --- verdicts -------------------------------------------------------------------------


def test_a_planted_difference_holds_with_scipys_numbers():
    [result] = judged([entry()], groups_of(THAN, PLANTED))
    a, b = finals(THAN), finals(PLANTED)
    reference = sps.ttest_rel(b, a)
    ci = reference.confidence_interval(0.95)
    assert result["verdict"] == "holds"
    assert result["difference"] == pytest.approx(np.mean(b - a))
    assert result["difference"] == pytest.approx(0.011)
    assert result["p"] == pytest.approx(reference.pvalue)
    assert result["p_adjusted"] == pytest.approx(reference.pvalue)  # a family of one
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert (result["n_better"], result["n_than"], result["seeds_needed"]) == (5, 5, None)
    assert result["family"] == "claims in claims.yaml"
    assert result["notes"] == []
    # issue 24 adds ci_level (the level the verdict used), ci_of, test and advice_reason
    assert list(result) == ["name", "claim", "source", "metric", "direction", "verdict", "difference",
                            "ci_low", "ci_high", "ci_level", "ci_of", "test", "advice_reason", "p",
                            "p_adjusted", "n_better", "n_than", "seeds_needed", "family", "notes"]
    assert (result["ci_level"], result["ci_of"], result["test"]) == (0.95, "difference", "paired")


def test_the_reverse_is_contradicted():
    [lower] = judged([entry(direction="lower")], groups_of(THAN, PLANTED))
    [swapped] = judged([entry(better={"model.norm.kind": "none"}, than={"model.norm.kind": "batch"})],
                       groups_of(THAN, PLANTED))
    assert lower["verdict"] == swapped["verdict"] == "contradicted"
    assert swapped["difference"] == pytest.approx(-0.011)


def test_equal_groups_within_a_wide_margin_hold_as_equivalent():
    equal = by_seed([v + d for v, d in zip(THAN_FINAL, [0.0005, -0.0004, 0.0002, -0.0003, 0.0001])])
    [result] = judged([entry(direction="equivalent", margin=0.01)], groups_of(THAN, equal))
    d = finals(equal) - finals(THAN)
    tost = max(sps.ttest_1samp(d, -0.01, alternative="greater").pvalue,
               sps.ttest_1samp(d, 0.01, alternative="less").pvalue)
    assert result["verdict"] == "holds"
    assert result["p"] == pytest.approx(tost)
    assert any("90%" in note for note in result["notes"])
    ci = sps.ttest_1samp(d, 0).confidence_interval(0.90)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((ci.low, ci.high))


def test_a_planted_difference_beyond_the_margin_contradicts_equivalence():
    [result] = judged([entry(direction="equivalent", margin=0.002)], groups_of(THAN, PLANTED))
    assert result["verdict"] == "contradicted"


def test_noise_is_inconclusive_with_the_seed_advisors_estimate():
    noisy = by_seed([v + d for v, d in zip(THAN_FINAL, [0.010, -0.004, 0.008, -0.002, 0.006])])
    [result] = judged([entry()], groups_of(THAN, noisy))
    assert result["verdict"] == "inconclusive"
    assert result["p"] == pytest.approx(sps.ttest_rel(finals(noisy), finals(THAN)).pvalue)
    assert result["p"] > 0.05
    assert 5 < result["seeds_needed"] < 1000


def test_claims_of_one_file_are_one_holm_family():
    weak = by_seed([v + d for v, d in zip(THAN_FINAL, [0.004, 0.001, 0.006, -0.001, 0.003])])
    groups = groups_of(THAN, PLANTED) | {flow({"model.norm.kind": "layer", "train.learning_rate": 0.1}): weak}
    grid = {"model.norm.kind": ["none", "batch", "layer"], "train.learning_rate": [0.1]}
    raws = [entry(name="strong"), entry(name="weak", better={"model.norm.kind": "layer"}),
            entry(name="loss", metric="final_loss", direction="lower")]
    entries = C.validate_claims(raws, grid, SEEDS, WHERE, canonical=flow)
    results = C.judge_entries(entries, lambda point: groups.get(flow(point), {}), SEEDS, WHERE)
    a = finals(THAN)
    raw_p = [sps.ttest_rel(finals(PLANTED), a).pvalue, sps.ttest_rel(finals(weak), a).pvalue,
             sps.ttest_rel(1 - finals(PLANTED), 1 - a).pvalue]
    # Holm by hand: the i-th smallest of m p-values times (m − i + 1), made non-decreasing, capped at 1.
    order = np.argsort(raw_p)
    adjusted, running = [0.0] * 3, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (3 - rank) * raw_p[i]))
        adjusted[i] = running
    assert [r["p"] for r in results] == pytest.approx(raw_p)
    assert [r["p_adjusted"] for r in results] == pytest.approx(adjusted)
    assert results[0]["p_adjusted"] > results[0]["p"]
    assert {r["family"] for r in results} == {"claims in claims.yaml"}
    assert [r["verdict"] for r in results] == ["holds", "inconclusive", "holds"]


def test_a_side_with_runs_still_to_come_is_inconclusive_and_says_why():
    partial = {s: run(THAN_FINAL[s] + 0.03) for s in (0, 1, 2)} | {3: run(0.96, status="running")}
    [result] = judged([entry()], groups_of(THAN, partial))
    assert result["verdict"] == "inconclusive"
    assert result["n_better"] == 3
    assert "better seed 3: no result yet (running)" in result["notes"]
    assert "better seed 4: no result yet (not run)" in result["notes"]
    assert result["notes"][-1] == "inconclusive until every run has a result (the data so far say holds)"


def test_fewer_than_three_values_on_a_side_gets_no_test():
    """Completed runs that recorded no evaluation have no value: left out, so too few remain."""
    empty = {s: C.RunRecord("completed", 800, []) for s in SEEDS[:3]} | {s: PLANTED[s] for s in SEEDS[3:]}
    [result] = judged([entry()], groups_of(THAN, empty))
    assert result["verdict"] == "inconclusive"
    assert (result["p"], result["ci_low"], result["n_better"]) == (None, None, 2)
    assert any(n.startswith("better seeds 0, 1, 2 (3 of 5): left out:") for n in result["notes"])
    assert "too few values (n = 2) for a test: at least 3 per side" in result["notes"]


def test_diverged_runs_count_as_the_worst_outcome_in_a_rank_test():
    """Issue 24: three of five `better` runs diverged. They stay in, ranked last, and the
    paired exact Wilcoxon test over all five seeds decides (SciPy's own, recomputed here)."""
    import scipy.stats as sps

    diverged = {s: C.RunRecord("diverged", 800, []) for s in SEEDS[:3]} | {s: PLANTED[s] for s in SEEDS[3:]}
    [result] = judged([entry()], groups_of(THAN, diverged))
    assert (result["verdict"], result["test"], result["n_better"]) == ("inconclusive", "wilcoxon", 5)
    than, better = finals(THAN), finals(PLANTED)
    worst = -np.inf  # a diverged run loses to every run
    diffs = np.where(np.arange(5) < 3, worst, better - than)
    expected = sps.wilcoxon(np.where(np.isinf(diffs), -1.0, diffs), alternative="two-sided", method="exact").pvalue
    assert result["p"] == pytest.approx(expected)
    assert "better seeds 0, 1, 2 (3 of 5): counted as the worst outcome" in result["notes"]


def test_check_exit_code():
    assert C.check_exit_code([]) == 0
    assert C.check_exit_code([{"verdict": "holds"}, {"verdict": "holds"}]) == 0
    assert C.check_exit_code([{"verdict": "holds"}, {"verdict": "inconclusive"}]) == 1
    assert C.check_exit_code([{"verdict": "contradicted"}]) == 1


# --- the metric of one run ------------------------------------------------------------


def one(**changes) -> C.Expect:
    return validated(entry(**changes))[0]


def test_final_accuracy_and_loss_average_the_last_evaluations_and_never_fewer():
    r = run(0.9)
    accuracies = [row["test_accuracy"] for row in r.metrics]
    assert C.run_metric(one(), r).value == pytest.approx(0.9)
    assert C.run_metric(one(last=2), r).value == pytest.approx(np.mean(accuracies[-2:]))
    assert C.run_metric(one(last=8), r).value == pytest.approx(np.mean(accuracies))
    # Issue 23, item 8: a run with fewer evaluations than `last` is not averaged over fewer.
    assert C.run_metric(one(last=50), r) == C.MetricValue(None, "8 evaluations, fewer than last 50")
    assert C.run_metric(one(metric="final_loss", direction="lower"), r).value == pytest.approx(0.1)
    assert C.run_metric(one(metric="best_accuracy"), r).value == pytest.approx(max(accuracies))


def test_steps_to_threshold_censors_a_run_that_never_gets_there_at_its_total_steps():
    # issue 24: "never" is censored (time to event), no longer counted as the total steps
    e = one(metric="steps_to_threshold", threshold=0.95, direction="lower")
    reached = run(0.96)  # 0.91, 0.915, 0.92 at steps 100-300, then 0.958 at step 400
    assert C.run_metric(e, reached) == C.MetricValue(400.0, None)
    assert C.run_metric(e, run(0.90, total_steps=5000)) == C.MetricValue(
        5000.0, "never reached 0.95: censored at its 5000 steps", censored=True)


def test_never_reached_runs_are_counted_and_noted_in_the_verdict():
    slow = by_seed([0.90, 0.91, 0.90, 0.92, 0.91], total_steps=5000)
    # Five evaluations near 0.97 after 3 to 5 below 0.95: first reached at step 400, 500 or 600.
    fast = {s: run(0.97, evals=e) for s, e in zip(SEEDS, [8, 9, 8, 10, 9])}
    [result] = judged([entry(metric="steps_to_threshold", threshold=0.95, direction="lower")],
                      groups_of(slow, fast))
    # issue 24: time to event, "never" worst: Mann–Whitney, only the two complete separations
    # as extreme (2/252); no median for a side that never got there, so no difference
    assert result["difference"] is None and result["test"] == "mann_whitney"
    assert result["p"] == pytest.approx(2 / 252)
    assert "than seeds 0, 1, 2, 3, 4 (5 of 5): never reached 0.95: censored at its 5000 steps" in result["notes"]
    assert result["verdict"] == "holds"


def test_diverged_is_one_or_zero_and_a_diverged_run_has_no_final_value():
    e = one(metric="diverged", direction="lower")
    assert C.run_metric(e, run(0.9, status="diverged")).value == 1.0
    assert C.run_metric(e, run(0.9)).value == 0.0
    # Issue 23: a diverged run's accuracy before it diverged is not its final accuracy (as compare).
    assert C.run_metric(one(), run(0.3, status="diverged")) == C.MetricValue(None, "diverged")


def test_a_value_that_is_not_finite_leaves_the_run_out():
    r = run(0.9)
    r.metrics[-1]["test_loss"] = math.nan
    assert C.run_metric(one(metric="final_loss", direction="lower"), r) == C.MetricValue(
        None, "its final_loss is nan")


def test_generalization_gap_is_averaged_over_the_last_evaluations_like_every_metric():
    # Issue 23, item 2: the gap is the mean of the last `last` evaluations' gaps, as in compare.
    e = one(metric="generalization_gap", direction="lower", last=3)
    r = run(0.9, generalization_gap=0.031)  # the summary's gap is the last row's alone
    for i, row in enumerate(r.metrics):
        row["train_set_accuracy"] = 0.95 + 0.001 * i
    gaps = [row["train_set_accuracy"] - row["test_accuracy"] for row in r.metrics[-3:]]
    assert C.run_metric(e, r).value == pytest.approx(np.mean(gaps))
    assert C.run_metric(one(metric="generalization_gap", direction="lower", last=1), r).value == pytest.approx(gaps[-1])
    no_rows = C.RunRecord("completed", 800, [], generalization_gap=0.031)
    assert C.run_metric(one(metric="generalization_gap", direction="lower", last=1), no_rows).value == 0.031
    assert C.run_metric(e, no_rows).value is None
    assert C.run_metric(e, run(0.9)).value is None
    assert "train_set_accuracy" in C.run_metric(e, run(0.9)).note


# Rows as csv.DictReader gives them: every field a string.
BN_ROWS = [{"step": str(step), "layer": str(layer), "mean_gap": str(0.1 * step + layer), "variance_gap": "0.5"}
           for step in (100, 200, 300, 400) for layer in (0, 1)]


def test_a_diagnostics_column_is_averaged_over_the_last_steps_of_its_layer():
    r = C.RunRecord("completed", 400, [], diagnostics={"bn": BN_ROWS})
    e = one(metric="bn.mean_gap", layer=1, last=2, direction="lower")
    assert C.run_metric(e, r).value == pytest.approx(((30 + 1) + (40 + 1)) / 2)  # steps 300, 400 of layer 1
    assert C.run_metric(one(metric="bn.mean_gap", layer=0, last=4, direction="lower"), r).value == pytest.approx(25.0)
    assert C.run_metric(one(metric="bn.mean_gap", layer=0, direction="lower"), r) == C.MetricValue(
        None, "4 diag_bn.csv steps, fewer than last 5")
    assert C.run_metric(one(metric="bn.mean_gap", layer=2, direction="lower"), r) == C.MetricValue(
        None, "no diag_bn.csv rows for layer 2")


def test_diagnostics_rows_are_picked_by_unit_and_by_variable():
    activations = [{"step": s, "layer": 0, "unit": u, "p15": 0, "p50": s + u, "p85": 0}
                   for s in (100, 200) for u in (0, 2)]
    gradients = [{"step": s, "variable": v, "grad_norm": s * (2 if v == "dense/kernel" else 1)}
                 for s in (100, 200, 300) for v in ("dense/kernel", "dense/bias")]
    landscape = [{"step": s, "loss_min": 0, "loss_max": s / 100, "grad_change_max": 0, "beta_smoothness": 0}
                 for s in (100, 200, 300)]
    r = C.RunRecord("completed", 300, [], diagnostics={"activations": activations, "gradients": gradients,
                                                        "landscape": landscape})
    p50 = one(metric="activations.p50", layer=0, unit=2, last=2, direction="lower")
    grad = one(metric="gradients.grad_norm", variable="dense/kernel", last=1, direction="lower")
    loss_range = one(metric="landscape.loss_max", last=3, direction="lower")
    assert C.run_metric(p50, r).value == pytest.approx((102 + 202) / 2)
    assert C.run_metric(grad, r).value == pytest.approx(600)
    assert C.run_metric(loss_range, r).value == pytest.approx(2.0)


# --- validation -----------------------------------------------------------------------


def test_sides_resolve_to_whole_grid_points_compared_as_the_grid_compares_values():
    grid = {"model.hidden": [[100, 100], [50]], "train.learning_rate": [0.5, 1.0], "model.norm.kind": ["batch"]}
    [e] = C.validate_claims([entry(better={"model.hidden": [100, 100], "train.learning_rate": 1.0},
                                   than={"model.hidden": [50], "train.learning_rate": 1.0})],
                            grid, SEEDS, WHERE, canonical=flow)
    assert e.better == {"model.hidden": [100, 100], "train.learning_rate": 1.0, "model.norm.kind": "batch"}
    assert e.than == {"model.hidden": [50], "train.learning_rate": 1.0, "model.norm.kind": "batch"}
    with pytest.raises(ConfigError, match=r"train.learning_rate=1 matches no grid point \(grid.train.learning_rate has 0.5, 1.0\)"):
        C.validate_claims([entry(better={"model.hidden": [50], "train.learning_rate": 1})], grid, SEEDS, WHERE,
                          canonical=flow)


def test_fewer_than_three_seeds_is_a_config_error():
    with pytest.raises(ConfigError) as e:
        validated(entry(), seeds=[0, 1])
    assert str(e.value) == ("claims.yaml: seeds: claims need at least 3 seeds per side, the sweep has 2 (0, 1):"
                            " list at least 3 under seeds, or pass --seeds")
    assert validated(seeds=[0]) == []  # no claims, no rule


TWO_RATES = {"model.norm.kind": ["none", "batch"], "train.learning_rate": [0.1, 1.0]}
BAD_ENTRIES = [
    (entry(metric="final_acuracy"), "expect[0] 'bn-ends-higher': metric 'final_acuracy' is not known;"
                                    " did you mean 'final_accuracy'?"),
    (entry(metric="bn.mean_gapp"), "did you mean 'bn.mean_gap'?"),
    (entry(better={"model.norm.knd": "batch"}), "better: 'model.norm.knd' is not a grid key;"
                                                " did you mean 'model.norm.kind'? (grid keys: model.norm.kind,"),
    (entry(than={"model.norm.kind": "layer"}), "than: model.norm.kind=\"layer\" matches no grid point"
                                               " (grid.model.norm.kind has \"none\", \"batch\")"),
    (entry(than={"model.norm.kind": "batch"}), "better and than select the same grid point"),
    (entry(direction="equivalent"), "margin is required for direction equivalent"),
    (entry(margin=0.01), "margin is only for direction equivalent, not higher"),
    (entry(direction="equivalent", margin=0), "margin = 0: Input should be greater than 0"),
    (entry(direction="greater"), "direction = 'greater': Input should be 'higher', 'lower' or 'equivalent'"),
    (entry(metric="steps_to_threshold"), "threshold is required for metric steps_to_threshold"),
    (entry(threshold=0.95), "threshold is only for metric steps_to_threshold, not final_accuracy"),
    (entry(metric="steps_to_threshold", threshold=1.5), "threshold = 1.5: Input should be less than or equal to 1"),
    (entry(name="bn fast"), "expect[0] 'bn fast': name = 'bn fast': String should match pattern"),
    (entry(treshold=0.9), "unknown key 'treshold'; did you mean 'threshold'? (allowed: name, claim,"),
    (entry(source=None), "expect[0] 'bn-ends-higher': source: Field required"),
    (entry(metric="best_accuracy", last=3), "last is not used by metric best_accuracy"),
    (entry(last=0), "last = 0: Input should be greater than or equal to 1"),
    (entry(metric="bn.mean_gap"), "layer is required for metric bn.mean_gap: diag_bn.csv has one row per layer"),
    (entry(metric="activations.p50", layer=0), "unit is required for metric activations.p50"),
    (entry(metric="gradients.grad_norm"), "variable is required for metric gradients.grad_norm"),
    (entry(metric="landscape.loss_max", layer=1), "layer is not used by metric landscape.loss_max"),
    (entry(layer=1), "layer is not used by metric final_accuracy"),
    ("bn-ends-higher", "expect[0]: a claim is a mapping with keys name, claim,"),
]


@pytest.mark.parametrize("raw, message", BAD_ENTRIES, ids=[m[:40] for _, m in BAD_ENTRIES])
def test_each_bad_entry_is_one_line_naming_the_file_the_entry_and_the_key(raw, message):
    with pytest.raises(ConfigError) as e:
        validated(raw)
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith("claims.yaml: expect[0]")
    assert message in text


def test_a_side_matching_several_grid_points_names_the_keys_to_add():
    with pytest.raises(ConfigError) as e:
        validated(entry(), grid=TWO_RATES)
    assert str(e.value) == ("claims.yaml: expect[0] 'bn-ends-higher': better matches 2 grid points, not one:"
                            " also name train.learning_rate (one of 0.1, 1.0)")


def test_names_are_unique_in_a_file():
    with pytest.raises(ConfigError) as e:
        validated(entry(), entry(direction="lower"))
    assert str(e.value) == ("claims.yaml: expect[1] 'bn-ends-higher': name 'bn-ends-higher' is already used"
                            " by expect[0] 'bn-ends-higher'; names are unique in a file")


def test_expect_must_be_a_list():
    with pytest.raises(ConfigError, match=r"^claims.yaml: expect must be a list of claims, one mapping each, not dict$"):
        C.validate_claims(entry(), GRID, SEEDS, WHERE, canonical=flow)


# --- --seeds --------------------------------------------------------------------------


@pytest.mark.parametrize("text, seeds", [
    ("100-104", [100, 101, 102, 103, 104]),
    ("1,5,9", [1, 5, 9]),
    ("1,3-5", [1, 3, 4, 5]),
    (" 7 , 2 ", [7, 2]),
    ("0", [0]),
    ("2147483647", [2147483647]),
])
def test_parse_seeds(text, seeds):
    assert C.parse_seeds(text) == seeds


@pytest.mark.parametrize("text, message", [
    ("", "an empty item"),
    ("1,,2", "an empty item"),
    ("a", "'a' is not a seed or a range"),
    ("1-2-3", "'1-2-3' is not a seed or a range"),
    ("-1", "seed -1 is negative"),
    ("1,3,1", "seed 1 is listed twice"),
    ("1-3,2", "seed 2 is listed twice"),
    ("2147483648", "seed 2147483648 is above 2147483647"),
    ("5-3", "range 5-3 runs backwards; write 3-5"),
    ("0-5000", "more than 1000 seeds"),
])
def test_parse_seeds_refuses_bad_lists_in_one_line(text, message):
    with pytest.raises(UsageError) as e:
        C.parse_seeds(text)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith(f"--seeds {text!r}: ")


def test_constant_sides_are_decided_by_an_exact_rank_test():
    # Reproduction 2 of issue 24 (was: inconclusive, no p-value, "seeds needed: —"): BN
    # reaches 0.95 at step 400 on every seed, none without BN ever does.
    never = by_seed([0.90] * 5, total_steps=5000)
    always = by_seed([0.97] * 5)  # every run first reaches 0.95 at step 400
    [result] = judged([entry(metric="steps_to_threshold", threshold=0.95, direction="lower")],
                      groups_of(never, always))
    assert (result["verdict"], result["test"], result["difference"]) == ("holds", "mann_whitney", None)
    assert result["p"] == pytest.approx(2 / math.comb(10, 5))
    # the same on final accuracy (constant sides, same seeds): Wilcoxon signed-rank, 2/2^5
    [acc] = judged([entry()], groups_of(by_seed([0.90] * 5), by_seed([0.94] * 5)))
    assert (acc["test"], acc["p"], acc["verdict"]) == ("wilcoxon", pytest.approx(2 / 32), "inconclusive")
    assert acc["seeds_needed"] is None and acc["advice_reason"] == "not_planned"


def test_runs_of_seeds_outside_the_sweeps_seeds_are_ignored():
    extra = PLANTED | {99: run(0.5)}
    [result] = judged([entry()], groups_of(THAN, extra))
    assert result["n_better"] == 5 and result["difference"] == pytest.approx(0.011)


# --- what claims take from elsewhere ------------------------------------------------------


def test_claims_read_the_diagnostics_tables_the_run_directory_declares():
    from bnexp.metrics import DIAGNOSTICS_COLUMNS
    from bnexp.rundir import tables

    for kind, columns in tables.TABLES.items():  # every table the owner declares is a claim's metric source
        assert DIAGNOSTICS_COLUMNS[kind] == tuple(name for name, _ in columns), kind
    assert set(C.RECORDED_BY) == set(DIAGNOSTICS_COLUMNS)
    assert C.diagnostics_file("bn.mean_gap") == "diag_bn.csv" and C.diagnostics_file("final_accuracy") is None


def test_a_diverged_claim_is_judged_by_fishers_exact_test():
    never, always = by_seed([0.95] * 5), by_seed([0.5] * 5, status="diverged")
    [result] = judged([entry(metric="diverged", direction="lower")], groups_of(always, never))
    assert result["verdict"] == "holds" and result["p"] == pytest.approx(2 / 252)
    assert (result["difference"], result["n_better"], result["n_than"]) == (-1.0, 5, 5)
    with pytest.raises(ConfigError, match="equivalent is not available for metric diverged"):
        validated(entry(metric="diverged", direction="equivalent", margin=0.1))


def test_a_diagnostics_claim_needs_its_table_switched_on_for_both_sides():
    from bnexp.config import Config

    [e] = validated(entry(metric="bn.mean_gap", layer=1))
    on, off = Config.model_validate({"diagnostics": {"enabled": True}}), Config()
    C.check_recorded([e], lambda point: [on] * 5, WHERE)  # recorded: no error
    with pytest.raises(ConfigError) as info:
        C.check_recorded([e], lambda point: [on if point == e.better else off] * 5, WHERE)
    assert str(info.value) == (f"{WHERE}: expect[0] 'bn-ends-higher': metric bn.mean_gap reads diag_bn.csv, which the"
                               " runs of than do not record: set diagnostics.enabled: true (in the base config, set or grid)")
