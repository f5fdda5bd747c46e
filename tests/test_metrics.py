"""bnexp.metrics, and issue 23's reproductions on run directories these tests write through
bnexp.rundir (no training): every metric compared the same way by compare and claims,
`--last` never averaging over fewer, diverged and failed runs counted, eval.json read,
the baseline chosen. Each expected number is recomputed here by NumPy or SciPy.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from test_compare import new_run
from test_report_cli import bnexp, compare_json

from bnexp import claims as C, compare as cmp, metrics as M, rundir
from bnexp.rundir import Summary
from bnexp.sweep import flow, run_record

CONFIG = {
    "name": "run", "seed": 0, "data": {"dataset": "mnist-sample"},
    "model": {"hidden": [100, 100], "activation": "relu", "init": {"kind": "he"}, "norm": {"kind": "batch"}},
    "train": {"optimizer": "sgd", "learning_rate": 0.5, "batch_size": 50, "steps": 800, "eval_every": 100},
}
# The bundled sample's test set: 116 of its 1,000 examples are the most frequent class, 79 the rarest.
COUNTS = [104, 116, 99, 103, 91, 79, 105, 112, 94, 97]


def make_run(root: Path, name: str, *, test, train=None, seed=0, status="completed", set=None,
             summary=None) -> Path:
    """A run with one metrics row per entry of `test` (every 100 steps), as `bnexp train` writes it."""
    run = new_run(root, name, CONFIG, seed=seed, set=set)
    train = train if train is not None else [a + 0.02 for a in test]
    run.start_metrics()
    for i, (a, t) in enumerate(zip(test, train)):
        run.append_metrics({"step": 100 * (i + 1), "epoch": float(i + 1), "train_loss": 1 - a,
                            "train_accuracy": a, "train_set_loss": 1 - t, "train_set_accuracy": t,
                            "test_loss": 1 - a, "test_accuracy": a, "learning_rate": 0.5, "elapsed_s": 1.0})
    last = {"test_accuracy": test[-1], "test_loss": 1 - test[-1], "train_set_accuracy": train[-1],
            "generalization_gap": train[-1] - test[-1]} if test else {}
    doc = Summary(status=status, name=name, seed=seed, steps=100 * len(test), total_steps=800,
                  best_test_accuracy=max(test) if test else None,
                  data={"dataset": "mnist-sample", "test_examples": 1000, "test_class_counts": COUNTS}, **last)
    run.write_summary(dataclasses.replace(doc, **(summary or {})))
    return run.path


def gaps(path: Path, last: int) -> float:
    """A run's gap over its last evaluations, by NumPy from its metrics rows."""
    rows = rundir.RunDir(path).read_metrics()[-last:]
    return float(np.mean([r["train_set_accuracy"] - r["test_accuracy"] for r in rows]))


# --- the registry ------------------------------------------------------------------------------


def test_every_metric_says_its_source_aggregation_direction_and_kind():
    assert set(M.METRICS) >= {"final_test_accuracy", "best_test_accuracy", "final_test_loss",
                              "final_train_set_accuracy", "final_train_set_loss", "generalization_gap",
                              "steps_to_threshold", "diverged", "failed", "eval.moving_accuracy",
                              "eval.batch_accuracy", "eval.precise_accuracy", "eval.precise_loss", "ics.ics_l2",
                              "bn.mean_gap", "landscape.beta_smoothness", "gradients.grad_norm"}
    for m in M.METRICS.values():
        assert m.kind in M.KINDS and m.better in (-1, 0, 1) and m.source
        assert m.aggregation in ("last", "best", "first", "status", "summary", "eval")
    assert M.get("steps_to_threshold").kind == "time_to_event"
    assert {M.get("diverged").kind, M.get("failed").kind} == {"binary"}
    # the claims' names keep working, as aliases of one definition
    assert M.get("final_accuracy") is M.get("final_test_accuracy")
    assert M.get("final_loss") is M.get("final_test_loss") and M.get("best_accuracy") is M.get("best_test_accuracy")
    assert set(C.METRICS) >= {"final_accuracy", "best_accuracy", "final_loss", "steps_to_threshold",
                              "generalization_gap", "diverged", "failed", "ics.ics_l2", "eval.precise_accuracy"}


def test_a_metric_is_named_with_its_row_and_a_bad_name_says_what_is_allowed():
    assert M.parse("ics.ics_l2:layer=0").name == "ics.ics_l2:layer=0"
    assert M.parse("activations.p50:layer=1:unit=3").selector == (("layer", "1"), ("unit", "3"))
    assert M.parse("eval.batch_accuracy:batch_size=8").selector == (("batch_size", "8"),)
    with pytest.raises(M.UsageError, match=r"--metric ics.ics_l2: ics.ics_l2 has one row per layer: name it as"
                                           r" ics.ics_l2:layer=N"):
        M.parse("ics.ics_l2")
    with pytest.raises(M.UsageError, match="--metric final_gap: not a metric"):
        M.parse("final_gap")
    with pytest.raises(M.UsageError, match="layer is not a selector of final_test_accuracy"):
        M.parse("final_test_accuracy:layer=0")


def test_the_learning_threshold_is_the_majority_share_plus_the_rarest_share():
    assert M.learning_threshold(COUNTS) == pytest.approx((116 + 79) / 1000)
    mnist = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # MNIST's test set
    assert M.learning_threshold(mnist) == pytest.approx(0.2027)
    assert M.failed_to_learn(0.16, COUNTS) and M.failed_to_learn(0.195, COUNTS)
    assert not M.failed_to_learn(0.196, COUNTS)


# --- 1 and 2: any metric, one aggregation -------------------------------------------------------


def gap_study(root: Path) -> tuple[list[Path], list[Path]]:
    """Three seeds per arm, five evaluations each; the arms' gaps differ per evaluation."""
    rng = np.random.default_rng(23)
    bn, none = [], []
    for s in range(3):
        test = list(0.95 + 0.002 * np.arange(5) + rng.normal(0, 0.002, 5))
        bn.append(make_run(root, f"bn{s}", seed=s, test=test, train=[a + 0.05 + 0.004 * s for a in test]))
        test = list(0.94 + 0.002 * np.arange(5) + rng.normal(0, 0.002, 5))
        none.append(make_run(root, f"none{s}", seed=s, test=test, set={"model.norm.kind": "none"},
                             train=[a + 0.045 + rng.normal(0, 0.003) for a in test]))
    return bn, none


def test_1_compare_tests_any_metric_with_its_own_holm_family(tmp_path):
    bn, none = gap_study(tmp_path)
    ln = [make_run(tmp_path, f"ln{s}", seed=s, test=[0.9, 0.91, 0.92, 0.93, 0.93 + 0.001 * s],
                   set={"model.norm.kind": "layer"}) for s in range(3)]
    doc = compare_json(*bn, *none, *ln, "--metric", "generalization_gap", "--metric", "final_train_set_loss",
                       "--last", "3")
    assert doc["metrics"] == ["generalization_gap", "final_train_set_loss"]
    by_metric = {}
    for c in doc["comparisons"]:
        by_metric.setdefault(c["metric"], []).append(c)
        assert c["family"] == f"{c['metric']} on mnist-sample (1,000 test examples)"
    for metric, entries in by_metric.items():
        assert len(entries) == 2
        # Holm within the metric's own family of two: the smaller p doubled, the larger kept (if larger)
        ps = [e["p"] for e in entries]
        order = np.argsort(ps)
        expected = [None, None]
        expected[order[0]] = min(1, 2 * ps[order[0]])
        expected[order[1]] = min(1, max(expected[order[0]], ps[order[1]]))
        assert [e["p_adjusted"] for e in entries] == pytest.approx(expected)
    [gap] = [c for c in by_metric["generalization_gap"] if c["b"] == "model.norm.kind=none"]
    a = np.array([gaps(p, 3) for p in bn])
    b = np.array([gaps(p, 3) for p in none])
    assert gap["difference"] == pytest.approx(np.mean(b - a))
    assert gap["p"] == pytest.approx(sps.ttest_rel(b, a).pvalue)
    result = bnexp("compare", *bn, *none, *ln, "--metric", "generalization_gap", "--metric", "final_train_set_loss")
    assert "one Holm family" in result.output and "generalization_gap, model.norm.kind=none vs" in result.output


def test_2_compare_and_a_claim_give_the_gap_the_same_value(tmp_path):
    bn, none = gap_study(tmp_path)
    [entry] = C.validate_claims([{"name": "gap", "claim": "BN widens the gap", "source": "a test",
                                  "metric": "generalization_gap", "better": {"model.norm.kind": "batch"},
                                  "than": {"model.norm.kind": "none"}, "direction": "higher", "last": 3}],
                                {"model.norm.kind": ["batch", "none"]}, [0, 1, 2], "t.yaml", canonical=flow)
    runs = {flow({"model.norm.kind": "batch"}): {s: run_record(p, set()) for s, p in enumerate(bn)},
            flow({"model.norm.kind": "none"}): {s: run_record(p, set()) for s, p in enumerate(none)}}
    [claim] = C.judge_entries([entry], lambda point: runs[flow(point)], [0, 1, 2], "t.yaml")
    doc = compare_json(*none, *bn, "--metric", "generalization_gap", "--last", "3")
    [c] = doc["comparisons"]
    assert c["difference"] == pytest.approx(claim["difference"], abs=1e-15)
    assert c["difference"] == pytest.approx(np.mean([gaps(p, 3) for p in bn]) - np.mean([gaps(p, 3) for p in none]))
    # the last evaluation alone is another number, and neither side may mix the two
    assert abs(compare_json(*none, *bn, "--metric", "generalization_gap")["comparisons"][0]["difference"]
               - c["difference"]) > 1e-4


# --- 3: eval.json ------------------------------------------------------------------------------


def record_eval(path: Path, stats: str, accuracy: float, step: int = 500, batch_size: int = 50) -> None:
    rundir.RunDir(path).record_eval({"stats": stats, "split": "test", "step": step, "accuracy": accuracy,
                                     "loss": 1 - accuracy, "batch_size": batch_size, "notes": []})


def test_3_eval_results_are_metrics_and_a_run_without_one_is_listed(tmp_path):
    paths = [make_run(tmp_path, f"a{s}", seed=s, test=[0.9] * 5) for s in range(3)]
    paths += [make_run(tmp_path, f"b{s}", seed=s, test=[0.9] * 5, set={"model.norm.kind": "none"}) for s in range(3)]
    precise = {"a0": 0.91, "a1": 0.915, "a2": 0.912, "b0": 0.93, "b1": 0.94}
    for p in paths:
        if p.name in precise:
            record_eval(p, "precise", precise[p.name])
    doc = compare_json(*paths, "--metric", "eval.precise_accuracy")
    [c] = doc["comparisons"]
    assert c["metric"] == "eval.precise_accuracy" and (c["n_a"], c["n_b"]) == (3, 2)
    assert c["difference"] == pytest.approx(0.935 - np.mean([0.91, 0.915, 0.912]))
    assert c["excluded"] == [{"path": str(paths[5]), "why": "no eval.json result for --stats precise on the test"
                                                            " split (run bnexp eval)"}]
    assert "b2 (no eval.json result" in bnexp("compare", *paths, "--metric", "eval.precise_accuracy").output
    record_eval(paths[5], "precise", 0.5, step=300)  # an older checkpoint's result is not the run's
    [c] = compare_json(*paths, "--metric", "eval.precise_accuracy")["comparisons"]
    assert c["excluded"][0]["why"] == "eval.json's precise result is of step 300, the run ended at 500"
    record_eval(paths[0], "batch", 0.8, batch_size=8)
    assert M.value(M.parse("eval.batch_accuracy:batch_size=8"), cmp.load_run(paths[0]).data()).value == 0.8
    assert M.value(M.parse("eval.batch_accuracy:batch_size=2"), cmp.load_run(paths[0]).data()).note == (
        "eval.json's batch result is at batch size 8, not 2")


# --- 5 and 6: failures are counted ---------------------------------------------------------------


def diverging_grid(root: Path) -> list[Path]:
    """BN and none at learning rates 0.5 and 3, three seeds: at 3, BN keeps one seed, none none."""
    paths = []
    for lr in (0.5, 3):
        for kind in ("batch", "none"):
            for s in range(3):
                diverged = lr == 3 and (kind == "none" or s > 0)
                test = [0.094] if (lr == 3 and kind == "batch" and s == 0) else [0.95 + 0.01 * s - 0.02 * (kind == "none")] * 3
                paths.append(make_run(root / "sweep", f"lr{lr}-{kind}-s{s}", seed=s, test=[] if diverged else test,
                                      status="diverged" if diverged else "completed",
                                      set={"model.norm.kind": kind, "train.learning_rate": lr},
                                      summary={"steps": 3} if diverged else None))
    return paths


def test_5_diverged_runs_keep_their_place_in_json_pivot_and_sentence(tmp_path):
    paths = diverging_grid(tmp_path)
    options = ("--pivot", "model.norm.kind", "--columns", "train.learning_rate")
    doc = compare_json(tmp_path / "sweep", *options)
    groups = {g["label"]: g for g in doc["groups"]}
    bn3 = groups["model.norm.kind=batch, train.learning_rate=3.0"]
    assert (bn3["n"], bn3["n_runs"], bn3["n_diverged"], bn3["n_failed"]) == (1, 3, 2, 1)
    cells = {row["values"]["model.norm.kind"]: row["cells"] for row in doc["pivot"]["rows"]}
    assert cells["batch"][1]["text"] == "0.0940: 1 of 3, 2 diverged, 1 failed to learn"
    assert cells["none"][1]["text"] == "—: 0 of 3, 3 diverged"
    assert cells["batch"][0]["text"] == "0.9600 ± 0.0100 (3)"
    [c] = [c for c in doc["comparisons"] if c["b"] == "model.norm.kind=batch, train.learning_rate=3.0"]
    assert c["n_diverged_b"] == 2 and c["n_diverged"] == 2 and c["n_failed_b"] == 1
    assert "model.norm.kind=batch, train.learning_rate=3.0: 1 of 3, 2 diverged, 1 failed to learn" in c["sentence"]
    table = bnexp("compare", tmp_path / "sweep", *options).output
    assert "0.0940: 1 of 3, 2 diverged, 1 failed to learn" in table and "2 diverged" in table
    lines = list(csv.reader(io.StringIO(bnexp("compare", tmp_path / "sweep", *options, "--format", "csv").output)))
    assert lines[1][lines[0].index("train.learning_rate=3.0 n_diverged")] == "2"


def test_6_a_run_that_learned_nothing_is_failed_and_failed_is_a_binary_metric(tmp_path):
    fails = [make_run(tmp_path, f"none{s}", seed=s, test=[0.16] * 3, set={"model.norm.kind": "none"})
             for s in range(3)]
    learns = [make_run(tmp_path, f"bn{s}", seed=s, test=[0.9] * 3) for s in range(3)]
    runs = [cmp.load_run(p) for p in fails + learns]
    assert [r.outcome for r in runs] == ["failed_to_learn"] * 3 + ["completed"] * 3
    assert [M.value(M.parse("diverged"), r.data()).value for r in runs] == [0.0] * 6  # what the issue saw: 0/3 vs 0/3
    assert [M.value(M.parse("failed"), r.data()).value for r in runs] == [1.0] * 3 + [0.0] * 3
    [c] = compare_json(*learns, *fails, "--metric", "failed")["comparisons"]
    assert (c["test"], c["difference"]) == ("fisher", 1.0)
    assert c["p"] == pytest.approx(sps.fisher_exact([[3, 0], [0, 3]]).pvalue)
    grid = {"model.norm.kind": ["batch", "none"]}
    [entry] = C.validate_claims([{"name": "f", "claim": "none fails more", "source": "t", "metric": "failed",
                                  "better": {"model.norm.kind": "none"}, "than": {"model.norm.kind": "batch"},
                                  "direction": "higher"}], grid, [0, 1, 2], "t.yaml", canonical=flow)
    records = {flow({"model.norm.kind": "none"}): {s: run_record(p, set()) for s, p in enumerate(fails)},
               flow({"model.norm.kind": "batch"}): {s: run_record(p, set()) for s, p in enumerate(learns)}}
    [claim] = C.judge_entries([entry], lambda point: records[flow(point)], [0, 1, 2], "t.yaml")
    assert (claim["difference"], claim["n_better"]) == (1.0, 3)
    assert "better seeds 0, 1, 2 (3 of 3): failed to learn" in claim["notes"]
    assert "completed, failed to learn" in bnexp("compare", *learns, *fails).output


# --- 8: --last never averages over fewer ----------------------------------------------------------


def test_8_last_lists_runs_with_fewer_evaluations_and_runs_without_metrics(tmp_path):
    a = [make_run(tmp_path, f"a{s}", seed=s, test=[0.9 + 0.001 * i for i in range(12)]) for s in range(3)]
    b = [make_run(tmp_path, f"b{s}", seed=s, test=[0.8] * 12, set={"model.norm.kind": "none"}) for s in range(3)]
    [c] = compare_json(*a, *b, "--last", "100")["comparisons"]
    assert c["verdict"] == "too_few_seeds" and (c["n_a"], c["n_b"]) == (0, 0)
    assert {e["why"] for e in c["excluded"]} == {"12 evaluations, fewer than last 100"}
    # a run whose metrics.csv is gone stands for its last evaluation only: not beside means of 5
    (a[2] / rundir.METRICS).unlink()
    [c] = compare_json(*a, *b, "--last", "5")["comparisons"]
    assert c["n_a"] == 2 and c["excluded"] == [
        {"path": str(a[2]), "why": "no metrics.csv rows (--last 5 needs 5 evaluations)"}]
    assert compare_json(*a, *b, "--last", "1")["comparisons"][0]["n_a"] == 3
    text = bnexp("compare", *a, *b, "--last", "5").output
    assert "a2 (no metrics.csv rows (--last 5 needs 5 evaluations))" in text


# --- 9: the baseline -------------------------------------------------------------------------------


def test_9_the_baseline_is_chosen_by_grid_values_or_by_path(tmp_path):
    paths = diverging_grid(tmp_path)
    doc = compare_json(tmp_path / "sweep", "--baseline", "model.norm.kind=none,train.learning_rate=0.5")
    assert doc["baseline_groups"] == ["model.norm.kind=none, train.learning_rate=0.5"]
    assert {c["a"] for c in doc["comparisons"]} == {"model.norm.kind=none, train.learning_rate=0.5"}
    assert len(doc["comparisons"]) == 3
    [c] = [c for c in doc["comparisons"] if c["b"] == "model.norm.kind=batch, train.learning_rate=0.5"]
    assert c["difference"] == pytest.approx(0.02)
    by_path = compare_json(tmp_path / "sweep", "--baseline", paths[4])  # lr 0.5, none, seed 1
    assert by_path["baseline_groups"] == doc["baseline_groups"]
    assert [r["deltas"] == {} for r in by_path["runs"]] == [i == 4 for i in range(len(paths))]
    for bad, says in [("model.norm.kind=none", "matches 2 groups"),
                      ("model.norm.kind=layer", "matches no group (model.norm.kind has batch, none)"),
                      ("model.hidden=[1]", "name a run directory, or grid values KEY=VALUE")]:
        result = bnexp("compare", tmp_path / "sweep", "--baseline", bad)
        assert result.exit_code == 2 and says in result.output and "Traceback" not in result.output
        assert result.output.count("\n") == 1


# --- the report: a table per metric, failures counted, diagnostics over seeds, distinct ticks ------


def test_report_tabulates_each_metric_with_its_failures(tmp_path):
    from bnexp.report import render_html
    from bnexp.report_data import report_data
    from report_page import Page

    diverging_grid(tmp_path)
    data = report_data([tmp_path / "sweep"], pivot_rows="model.norm.kind", pivot_columns="train.learning_rate")
    assert [p.metric for p in data.pivots] == ["final_test_accuracy", "final_train_set_accuracy",
                                                     "generalization_gap"]
    page = Page(render_html(data))
    assert len(page.tables["pivot"]) == 2 and len(page.tables["pivot more"]) == 4  # three tables of two rows
    cells = [c for row in page.tables["pivot"] for c in row if c["attrs"].get("data-field") == "cell"]
    assert "0.0940: 1 of 3, 2 diverged, 1 failed to learn" in [c["text"] for c in cells]
    rows = page.rows("statistics")
    assert {r["metric"]["text"] for r in rows} == {"final_test_accuracy", "final_train_set_accuracy",
                                                   "generalization_gap"}
    bn3 = [r for r in rows if r["b"]["text"] == "model.norm.kind=batch, train.learning_rate=3.0"]
    assert {r["failures"]["text"] for r in bn3} == {"2 / 1\u00a0vs\u00a00 / 0"}


def test_diagnostics_are_drawn_as_the_mean_over_seeds_with_its_band(tmp_path):
    from bnexp.report_charts import group_series
    from bnexp.report_data import RunEntry

    rng = np.random.default_rng(5)
    runs = [RunEntry(f"r{k}", f"runs/r{k}", "completed", diagnostics={"ics": [
        {"step": step, "layer": layer, "ics_l2": float(rng.uniform(0.5, 2)), "ics_cosine": 1.0}
        for step in (100, 200, 300) for layer in (0, 1)]}) for k in range(3)]
    steps, mean, low, high = group_series(runs, [0, 1, 2], "ics", "ics_l2", lambda r: r["layer"] == 1)
    table = np.array([[r["ics_l2"] for r in run.diagnostics["ics"] if r["layer"] == 1] for run in runs])
    assert steps == [100.0, 200.0, 300.0]
    np.testing.assert_allclose(mean, table.mean(axis=0), rtol=1e-12)
    # The band of bnexp.bands.seed_band, as the learning curves and compare --plot: min–max over seeds.
    np.testing.assert_array_equal(low, table.min(axis=0))
    np.testing.assert_array_equal(high, table.max(axis=0))


@pytest.mark.parametrize("ys", [[1 - 1.1e-16, 1.0, 1 + 2.2e-16],  # layer 0's ICS cosine: rounding noise
                                [0.1234561, 0.1234562, 0.1234564]])  # a real range finer than 6 digits
def test_a_charts_ticks_read_as_distinct_numbers(ys):
    import re as regex

    from bnexp import svgchart

    svg = svgchart.render(svgchart.Chart("t", "step", "y", [svgchart.Layer(lines=[svgchart.Line([0, 1, 2], ys, "#000")])]))
    labels = regex.findall(r'<text class="tick"[^>]*text-anchor="end">([^<]*)</text>', svg)
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    values = [float(label.replace("−", "-")) for label in labels]
    assert min(values) <= min(ys) and max(values) >= max(ys)


def test_docs_metrics_md_lists_every_metric():
    text = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    for name in M.METRICS:
        table, _, column = name.partition(".")
        assert f"`{name}`" in text or (column and f"`.{column}`" in text and f"`{table}." in text), name


@pytest.mark.parametrize("args, says", [
    (("--metric", "final_gap"), "--metric final_gap: not a metric (allowed: final_test_accuracy"),
    (("--metric", "ics.ics_l2"), "--metric ics.ics_l2: ics.ics_l2 has one row per layer"),
    (("--metric", "eval.batch_accuracy:batch_size=x"), "batch_size is a whole number"),
])
def test_a_bad_metric_is_one_line_and_exit_2(tmp_path, args, says):
    paths = [make_run(tmp_path, f"r{s}", seed=s, test=[0.9]) for s in range(2)]
    for command in (["compare"], ["report", "-o", tmp_path / "r.html"]):
        result = bnexp(*command, *paths, *args)
        assert result.exit_code == 2 and says in result.output, result.output
        assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_a_sweep_point_that_learned_nothing_says_so(tmp_path):
    """Issue 23, reproduction 6, in a sweep: the point completes and its line says it failed to learn."""
    import yaml

    base = copy.deepcopy(CONFIG) | {"name": "nothing"}
    base["train"] |= {"learning_rate": 1e-6, "steps": 20, "eval_every": 20}
    base["model"]["norm"]["kind"] = "none"
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": "nothing", "base": base, "grid": {"model.hidden": [[16]]}, "seeds": [0]}))
    result = bnexp("sweep", path, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "failed to learn" in result.output
    [run] = [p.parent for p in (tmp_path / "out").rglob("summary.json")]
    assert json.loads((run / "summary.json").read_text())["failed_to_learn"] is True
