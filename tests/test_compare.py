"""`bnexp compare` on run directories these tests fabricate: no training, no TensorFlow."""

from __future__ import annotations

import copy
import csv
import dataclasses
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from rich.console import Console

from bnexp import compare as cmp, rundir
from bnexp.config import apply_override, validate
from bnexp.errors import RunDirError, RunFileError
from bnexp.present import sparkline, sparklines
from bnexp.present.comparison import format_delta, groups_table, metrics_table, pivot_table, show, show_groups
from bnexp.rundir import Summary
from bnexp.wording import note_text

HEADER = ",".join(rundir.METRICS_COLUMNS)
BASE_CONFIG = {
    "name": "run",
    "seed": 0,
    "data": {"dataset": "mnist", "dir": "data/mnist"},
    "model": {
        "hidden": [100, 100, 100],
        "activation": "sigmoid",
        "init": {"kind": "normal", "std": 0.1},
        "norm": {"kind": "batch", "placement": "before_activation", "momentum": 0.99, "epsilon": 0.001},
    },
    "train": {"optimizer": "sgd", "learning_rate": 0.5, "batch_size": 60, "steps": 2000,
              "eval_every": 500},
}


def new_run(root: Path, name: str, base: dict, *, seed: int = 0, set: dict | None = None) -> rundir.RunDir:
    """A run directory under `root` holding only its config: `base` with the name, the seed and
    `set` (dotted config keys to values) applied, validated as `bnexp train` would."""
    run = rundir.RunDir(root / name)
    run.path.mkdir(parents=True)
    raw = copy.deepcopy(base) | {"name": name, "seed": seed}
    for key, value in (set or {}).items():
        apply_override(raw, f"{key}={json.dumps(value)}")
    run.write_config(validate(raw, name))
    return run


def make_run(root: Path, name: str, *, acc=(0.90, 0.95, 0.97, 0.98), loss=None, seed=0,
             set=None, summary=None, eval_every=500) -> Path:
    """Write a run's config, metrics and summary through bnexp.rundir, as `bnexp train` does.

    `set` maps dotted config keys to values; `summary` overrides summary fields.
    """
    run = new_run(root, name, BASE_CONFIG, seed=seed, set=set)
    loss = loss or [1 - a for a in acc]
    run.start_metrics()
    for i, (a, l) in enumerate(zip(acc, loss)):
        run.append_metrics({"step": (i + 1) * eval_every, "epoch": float(i + 1), "train_loss": l, "train_accuracy": a,
                            "test_loss": l, "test_accuracy": a, "learning_rate": 0.5, "elapsed_s": float(i + 1)})
    doc = Summary(
        status="completed", name=name, seed=seed,
        test_accuracy=acc[-1] if acc else None, test_loss=loss[-1] if acc else None,
        best_test_accuracy=max(acc) if acc else None, best_step=None,
        steps=len(acc) * eval_every, epochs=2, wall_seconds=30.0,
        train_seconds=25.0, seconds_per_epoch=10.0, examples_per_second=6000.0,
        started_at="2024-01-01T00:00:00", ended_at="2024-01-01T00:00:30", message="",
    )
    run.write_summary(dataclasses.replace(doc, **(summary or {})))
    return run.path


def report(paths, **options) -> cmp.Comparison:
    return cmp.compare(cmp.load_runs([str(p) for p in paths]), **options)


def output(paths, fmt="table", plot=None, **options) -> str:
    """What `bnexp compare` prints when its output is a file, not a terminal."""
    buffer = io.StringIO()
    runs = cmp.load_runs([str(p) for p in paths])
    comp = cmp.compare(runs, **{"all_keys": False, "threshold": 0.97, "last": 1, **options})
    if plot:
        from bnexp.plots import plot_learning_curves

        plot = str(plot_learning_curves(runs, plot))
    show(comp, fmt, Console(file=buffer, width=60), plot)
    return buffer.getvalue()


def compare_cli(*args):
    from typer.testing import CliRunner

    from bnexp.cli import app

    return CliRunner().invoke(app, ["compare", *map(str, args)])


def row_of(comp: cmp.Comparison, label: str) -> cmp.Row:
    return next(r for r in comp.rows if r.label == label)


# --- config diff ----------------------------------------------------------------------


def test_diff_lists_only_differing_keys_one_column_per_run(tmp_path):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", seed=1, set={"model.norm.kind": "none", "model.norm.r_max": 4})
    diff = dict(report([a, b]).diff)
    assert diff == {
        "name": ["a", "b"],
        "seed": ["0", "1"],
        "model.norm.kind": ["batch", "none"],
        "model.norm.r_max": ["3.0", "4.0"],
    }


def test_a_key_one_version_lacks_shows_a_dash(tmp_path):
    """Runs of two bnexp versions may not share every config key."""
    old = cmp.Run(tmp_path / "old", {"seed": "0"}, Summary(), [])
    new = cmp.Run(tmp_path / "new", {"seed": "0", "model.norm.r_max": "3"}, Summary(), [])
    assert cmp.config_diff([old, new]) == [("model.norm.r_max", ["—", "3"])]


def test_all_keys_shows_every_key_with_lists_in_flow_style(tmp_path):
    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b")
    diff = dict(report([a, b], all_keys=True).diff)
    assert diff["model.hidden"] == ["[100, 100, 100]"] * 2
    assert diff["data.dir"] == ["data/mnist"] * 2
    assert len(diff) == len(cmp.load_run(a).config) == 52  # every leaf of an mlp's schema (38, issue 12's 2, issue 13's 11, model.kind)


# --- metrics and deltas -----------------------------------------------------------------


def test_deltas_and_ratios_against_the_first_run(tmp_path):
    base = make_run(tmp_path, "a", acc=[0.90, 0.96], loss=[0.30, 0.20],
                    summary={"seconds_per_epoch": 10.0, "examples_per_second": 6000.0})
    other = make_run(tmp_path, "b", acc=[0.97, 0.98], loss=[0.10, 0.05],
                     summary={"seconds_per_epoch": 8.0, "examples_per_second": 4500.0,
                              "steps": 1500})
    comp = report([base, other], threshold=0.95)
    assert comp.rows[0].deltas == {}
    d = comp.rows[1].deltas
    assert d["final_test_accuracy"].value == pytest.approx(0.02)  # 0.98 - 0.96
    assert d["best_test_accuracy"].value == pytest.approx(0.02)
    assert d["final_test_loss"].value == pytest.approx(-0.15)  # 0.05 - 0.20
    assert d["steps"].value == 500  # 1500 - 1000
    assert d["seconds_per_epoch"].value == pytest.approx(0.8)  # 8 / 10
    assert d["examples_per_second"].value == pytest.approx(0.75)  # 4500 / 6000
    assert d["steps_to_threshold"].value == -500  # 500 - 1000
    verdicts = {k: v.verdict for k, v in d.items()}
    assert verdicts == {"final_test_accuracy": 1, "best_test_accuracy": 1, "final_test_loss": 1,
                        "final_train_set_accuracy": 0, "generalization_gap": 0,
                        "steps": 0, "seconds_per_epoch": 1, "examples_per_second": -1,
                        "steps_to_threshold": 1}
    column = cmp.column("seconds_per_epoch")
    assert format_delta(column, d["seconds_per_epoch"]) == "×0.80"
    assert format_delta(cmp.column("steps_to_threshold"), d["steps_to_threshold"]) == "-500"


def test_steps_to_threshold_is_the_first_evaluation_at_or_above_it(tmp_path):
    from bnexp import metrics as M  # issue 23: the one definition, bnexp.metrics'

    rows = [{"step": 500, "test_accuracy": 0.96}, {"step": 1000, "test_accuracy": 0.97},
            {"step": 1500, "test_accuracy": 0.965}, {"step": 2000, "test_accuracy": 0.98}]
    run = M.RunData("completed", {"steps": 2000, "total_steps": 2000}, rows)
    assert M.value(M.parse("steps_to_threshold"), run, threshold=0.97) == M.Value(1000.0)
    never = M.value(M.parse("steps_to_threshold"), run, threshold=0.99)
    assert (never.value, never.censored) == (2000.0, True)  # censored at its last step


def test_threshold_never_reached_shows_a_dash(tmp_path):
    a = make_run(tmp_path, "a", acc=[0.5, 0.6])
    b = make_run(tmp_path, "b", acc=[0.5, 0.99])
    comp = report([a, b], threshold=0.97)
    assert comp.rows[0].values["steps_to_threshold"] is None
    assert comp.rows[1].deltas["steps_to_threshold"] == cmp.Delta(None, 0)
    header, rows = metrics_table(comp, with_curves=False)
    assert rows[0][header.index("steps to 0.97")] == "—"
    assert rows[1][header.index("steps to 0.97")] == "1000"


def test_last_averages_the_final_evaluations(tmp_path):
    a = make_run(tmp_path, "a", acc=[0.5, 0.90, 0.92, 0.94, 0.96, 0.98])
    b = make_run(tmp_path, "b", acc=[0.5, 0.6])
    comp = report([a, b], last=5)
    assert comp.rows[0].values["final_test_accuracy"] == pytest.approx(0.94)  # (0.90+…+0.98)/5
    # Issue 23, item 8: fewer than 5 evaluations is never averaged over fewer.
    assert comp.rows[1].values["final_test_accuracy"] is None
    assert report([a, b], last=1).rows[0].values["final_test_accuracy"] == pytest.approx(0.98)


def test_run_without_evaluations_falls_back_to_the_summary(tmp_path):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", acc=[], summary={"status": "running", "test_accuracy": 0.9,
                                                 "steps": None, "seconds_per_epoch": None})
    values = report([a, b]).rows[1].values
    assert values["final_test_accuracy"] == 0.9
    assert values["steps"] is None and values["seconds_per_epoch"] is None
    assert "running" in output([a, b])


def test_interrupted_and_diverged_runs_are_shown_with_their_status(tmp_path):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", summary={"status": "interrupted"})
    c = make_run(tmp_path, "c", acc=[0.1, 0.1], loss=[2.3, float("nan")],
                 summary={"status": "diverged", "test_loss": None})
    text = output([a, b, c])
    assert "interrupted" in text and "diverged" in text
    runs = json.loads(output([a, b, c], fmt="json"))["runs"]
    assert [r["status"] for r in runs] == ["completed", "interrupted", "diverged"]
    assert runs[2]["values"]["final_test_loss"] is None  # NaN is not JSON


def test_sparklines_share_one_scale(tmp_path):
    assert sparklines([[0.0, 0.5, 1.0], [0.5, 0.5]]) == ["▁▅█", "▅▅"]
    assert sparkline([0.3, 0.3], 0.3, 0.3) == "▄▄"
    assert len(sparkline(list(range(100)), 0, 99, width=24)) == 24


# --- seed groups and the t-test ----------------------------------------------------------

BN = [0.981, 0.978, 0.983]
PLAIN = [0.971, 0.975, 0.969]


def two_arms(root: Path) -> list[Path]:
    bn = [make_run(root, f"bn{s}", seed=s, acc=[0.9, a]) for s, a in enumerate(BN)]
    plain = [make_run(root, f"plain{s}", seed=s, acc=[0.8, a], set={"model.norm.kind": "none"})
             for s, a in enumerate(PLAIN)]
    return bn + plain


def test_runs_differing_only_in_seed_form_a_group(tmp_path):
    comp = report(two_arms(tmp_path))
    assert [g.label for g in comp.groups] == ["model.norm.kind=batch", "model.norm.kind=none"]
    bn = comp.groups[0]
    assert len(bn.rows) == 3
    assert bn.mean("final_test_accuracy") == pytest.approx(0.980666666667)
    # sample std (ddof=1) by hand: deviations .000333, -.002667, .002333
    assert bn.std("final_test_accuracy") == pytest.approx(math.sqrt(1.2666667e-05 / 2), rel=1e-6)
    header, rows = groups_table(comp)
    assert rows[0][:3] == ["model.norm.kind=batch", "3", "0.9807 ± 0.0025"]


def test_grouping_ignores_the_order_of_config_keys(tmp_path):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", seed=1)
    config = yaml.safe_load((b / "config.yaml").read_text())
    (b / "config.yaml").write_text(yaml.safe_dump(dict(reversed(config.items())), sort_keys=False))
    assert [len(g.rows) for g in report([a, b]).groups] == [2]


def test_no_group_table_when_every_config_is_unique(tmp_path):
    b = make_run(tmp_path, "b", seed=1, set={"train.batch_size": 8})
    comp = report([make_run(tmp_path, "a"), b])
    assert [len(g.rows) for g in comp.groups] == [1, 1] and not show_groups(comp)
    [c] = comp.comparisons
    assert (c.verdict, c.result.p, c.result.n_a) == ("too_few_seeds", None, 1)


def student_t_sf2(t: float, df: float) -> float:
    """Two-sided p by integrating Student's t density from |t| outward (substituting x = |t| / u)."""
    u = np.linspace(1e-9, 1, 2_000_001)
    x = abs(t) / u
    density = (math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
               * (1 + x**2 / df) ** (-(df + 1) / 2))
    return 2 * np.trapezoid(density * abs(t) / u**2, u)


def test_welch_t_test_on_unmatched_seeds_matches_the_textbook_formula(tmp_path):
    bn = [make_run(tmp_path, f"bn{s}", seed=s, acc=[0.9, a]) for s, a in enumerate(BN)]
    plain = [make_run(tmp_path, f"plain{s}", seed=s + 3, acc=[0.8, a], set={"model.norm.kind": "none"})
             for s, a in enumerate(PLAIN)]
    [c] = report(bn + plain).comparisons
    a, b = np.array(BN), np.array(PLAIN)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (b.mean() - a.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert c.result.test == "welch"
    assert c.result.p == pytest.approx(student_t_sf2(t, df), rel=1e-4)
    assert c.result.p_adjusted == c.result.p  # a family of one
    assert c.result.difference == pytest.approx(b.mean() - a.mean())
    assert c.verdict == "distinguishable"
    assert "Welch t-test over 3 and 3 seeds, p = " in c.sentence()


def test_matched_seeds_get_a_paired_t_test(tmp_path):
    [c] = report(two_arms(tmp_path)).comparisons
    diff = np.array(PLAIN) - np.array(BN)
    t = diff.mean() / (diff.std(ddof=1) / math.sqrt(3))
    assert c.result.test == "paired"
    assert c.result.p == pytest.approx(student_t_sf2(t, 2), rel=1e-4)
    assert c.result.effect_size == pytest.approx(diff.mean() / diff.std(ddof=1))
    half = 4.302652729749464 * diff.std(ddof=1) / math.sqrt(3)  # t(0.975, df=2)
    assert (c.result.ci_low, c.result.ci_high) == pytest.approx((diff.mean() - half, diff.mean() + half))
    assert "paired t-test over 3 seeds" in c.sentence()


def test_sweep_directory_groups_every_grid_point_without_a_t_test(tmp_path):
    sweep = tmp_path / "sweep"
    for bs in (8, 60, 600):
        for s in (0, 1):
            make_run(sweep / f"bs{bs}", f"s{s}", seed=s, set={"train.batch_size": bs})
    (sweep / "bs8" / "s0" / "ckpt").mkdir()
    (sweep / "bs8" / "s0" / "ckpt" / "summary.json").write_text("not a run: inside one")
    comp = report([sweep])
    assert [r.label for r in comp.rows] == ["bs8/s0", "bs8/s1", "bs60/s0", "bs60/s1",
                                            "bs600/s0", "bs600/s1"]  # by path, numbers as numbers
    assert [g.label for g in comp.groups] == ["train.batch_size=8", "train.batch_size=60",
                                              "train.batch_size=600"]
    assert [(c.verdict, c.result.p) for c in comp.comparisons] == [("too_few_seeds", None)] * 2


# --- output formats ------------------------------------------------------------------------


def test_table_off_a_terminal_never_truncates_cells(tmp_path):
    long = "a_run_with_a_really_quite_long_name_to_make_the_table_wide"
    text = output([make_run(tmp_path, long), make_run(tmp_path, "b", seed=1)])
    assert long in text
    assert "…" not in text
    assert "Config diff" in text and "steps to 0.97" in text


def test_table_shows_groups_and_the_verdict(tmp_path):
    text = output(two_arms(tmp_path))
    assert "Seed groups" in text
    assert "Final accuracy, model.norm.kind=none vs model.norm.kind=batch: difference -0.009 [95% CI" in text
    assert "not distinguishable from seed noise; about" in text  # the seed advisor


def test_json_has_runs_diff_groups_and_comparisons(tmp_path):
    doc = json.loads(output(two_arms(tmp_path), fmt="json"))
    assert {"runs", "diff", "groups", "comparisons", "not_comparable", "pivot"} <= doc.keys()
    assert len(doc["runs"]) == 6 and len(doc["groups"]) == 2
    assert doc["diff"]["model.norm.kind"]["plain0"] == "none"
    assert doc["runs"][3]["settings"] == {"name": "plain0", "seed": "0", "model.norm.kind": "none"}
    assert doc["runs"][1]["deltas"]["final_test_accuracy"]["value"] == pytest.approx(0.978 - 0.981)
    [c] = doc["comparisons"]
    assert (c["a"], c["b"], c["test"], c["n_a"], c["n_b"]) == ("model.norm.kind=batch", "model.norm.kind=none",
                                                               "paired", 3, 3)
    assert c["p"] == c["p_adjusted"] and 0.05 < c["p"] < 0.2
    assert c["verdict"] == "not_distinguishable" and c["seeds_needed"] > 3
    assert c["difference"] == pytest.approx(np.mean(PLAIN) - np.mean(BN))
    assert c["ci_low"] < c["difference"] < c["ci_high"] and c["effect_size"] < 0
    assert c["excluded"] == [] and doc["not_comparable"] == []


def test_csv_has_one_row_per_run_with_raw_values_and_deltas(tmp_path):
    a = make_run(tmp_path, "a", acc=[0.9, 0.96])
    b = make_run(tmp_path, "b", acc=[0.9, 0.97], summary={"seconds_per_epoch": 5.0})
    rows = list(csv.DictReader(io.StringIO(output([a, b], fmt="csv"))))
    assert [r["run"] for r in rows] == ["a", "b"]
    assert [r["name"] for r in rows] == ["a", "b"]  # every differing config key is a column
    assert float(rows[1]["final_test_accuracy"]) == 0.97
    assert float(rows[1]["final_test_accuracy_delta"]) == pytest.approx(0.01)
    assert float(rows[1]["seconds_per_epoch_ratio"]) == 0.5
    assert rows[0]["final_test_accuracy_delta"] == ""


def test_markdown_has_pipe_tables_for_diff_metrics_and_groups(tmp_path):
    text = output(two_arms(tmp_path), fmt="markdown")
    assert len(re.findall(r"^\|(---\|)+$", text, flags=re.MULTILINE)) == 3
    assert "| model.norm.kind | batch | batch | batch | none | none | none |" in text
    assert "### Seed groups" in text and "seed noise" in text


# --- plot --------------------------------------------------------------------------------


def test_plot_writes_a_png_and_says_where(tmp_path):
    png = tmp_path / "out" / "curves.png"
    text = output(two_arms(tmp_path / "runs"), plot=str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    assert f"written to {png}" in text


def test_plot_of_single_runs_writes_a_png(tmp_path):
    from bnexp.plots import plot_learning_curves

    runs = cmp.load_runs([str(make_run(tmp_path, "a")), str(make_run(tmp_path, "b", seed=1))])
    assert plot_learning_curves(runs, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_draws_each_group_as_the_reports_band_in_the_reports_colours(tmp_path):
    """compare --plot and bnexp report draw one band (bnexp.bands.seed_band: min–max over seeds) in one palette."""
    from matplotlib.colors import to_hex

    from bnexp.bands import PALETTE, seed_band
    from bnexp.plots import learning_curves_figure

    runs = cmp.load_runs([str(p) for p in two_arms(tmp_path)])
    accuracy = learning_curves_figure(runs).axes[0]
    bands = accuracy.collections  # one fill_between per seed group, in group order
    assert [to_hex(band.get_facecolor()[0]) for band in bands] == [c.lower() for c in PALETTE[:2]]
    for band, members in zip(bands, (runs[:3], runs[3:])):
        steps, _, low, high = seed_band([([m["step"] for m in r.metrics], [m["test_accuracy"] for m in r.metrics])
                                         for r in members])
        outline = band.get_paths()[0].vertices
        assert {(x, y) for x, y in outline} >= {*zip(steps, low), *zip(steps, high)}


def test_legend_labels_name_the_differing_keys(tmp_path):
    runs = cmp.load_runs([str(make_run(tmp_path, "a")),
                          str(make_run(tmp_path, "b", seed=1, set={"model.norm.kind": "none"}))])
    assert cmp.run_labels(runs) == ["seed=0, model.norm.kind=batch",
                                    "seed=1, model.norm.kind=none"]


# --- bad input -----------------------------------------------------------------------------


def test_missing_directory_is_a_run_dir_error(tmp_path):
    with pytest.raises(RunDirError, match="no such directory"):
        output([make_run(tmp_path, "a"), tmp_path / "nope"])


def test_directory_without_summary_is_a_run_dir_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirError, match="summary.json"):
        output([make_run(tmp_path, "a"), tmp_path / "empty"])


def test_a_single_run_is_a_run_dir_error(tmp_path):
    a = make_run(tmp_path, "a")
    with pytest.raises(RunDirError, match="at least two runs"):
        output([a, a])


@pytest.mark.parametrize("content", [
    "step,epoch\n1,2\n",
    HEADER + "\n500,1,0.1,0.9,,,0.1,oops,0.5,1.0\n",
    HEADER + "\n500,1,0.1,0.9\n",
])
def test_corrupt_metrics_is_a_run_file_error_naming_the_file(tmp_path, content):
    b = make_run(tmp_path, "b")
    (b / "metrics.csv").write_text(content)
    with pytest.raises(RunFileError, match=r"b/metrics\.csv"):
        output([make_run(tmp_path, "a"), b])


def test_metrics_with_only_a_header_is_a_run_that_has_not_evaluated(tmp_path):
    b = make_run(tmp_path, "b", acc=[])
    assert report([make_run(tmp_path, "a"), b]).rows[1].values["best_test_accuracy"] is None


@pytest.mark.parametrize("name, content", [
    ("summary.json", "{not json"),
    ("summary.json", '{"status": "completed", "test_accuracy": "high"}'),
    ("config.yaml", "model: [unclosed"),
])
def test_corrupt_summary_or_config_is_a_run_file_error_naming_the_file(tmp_path, name, content):
    b = make_run(tmp_path, "b")
    (b / name).write_text(content)
    with pytest.raises(RunFileError, match=f"b/{name}"):
        output([make_run(tmp_path, "a"), b])


def test_unknown_format_is_a_usage_error(tmp_path):
    result = compare_cli(make_run(tmp_path, "a"), make_run(tmp_path, "b"), "--format", "html")
    assert result.exit_code == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: ") and "html" in result.stderr


# --- speed ----------------------------------------------------------------------------------


@pytest.mark.parametrize("other", [{"seed": 1}, {"set": {"model.norm.kind": "none"}}])
def test_comparing_two_runs_imports_no_tensorflow_scipy_or_matplotlib(tmp_path, other):
    """Two seeds of one config (one group), or two configs (two groups of one run: nothing
    to test) alike; SciPy's import alone took two thirds of compare's 1 s. Nor the report's
    templates, the training package or a sweep executor: compare reads run directories."""
    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b", **other)
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bnexp.cli import app\n"
        f"assert CliRunner().invoke(app, ['compare', {str(a)!r}, {str(b)!r}]).exit_code == 0\n"
        "heavy = ('tensorflow', 'keras', 'scipy', 'statsmodels', 'matplotlib', 'jinja2', 'bnexp.training',\n"
        "         'bnexp.sweep.run', 'bnexp.sweep.local', 'bnexp.sweep.raycluster')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).parents[1], check=True)
    assert result.stdout.strip() == "[]"


def test_a_torn_last_metrics_row_from_a_killed_run_is_not_an_error(tmp_path):
    a = make_run(tmp_path, "a")
    b = make_run(tmp_path, "b", summary={"status": "running"})
    with open(b / "metrics.csv", "a") as f:
        f.write("999,9.9,0.1")  # what kill -9 can leave mid-write
    comp = report([a, b])
    assert [r.run.status for r in comp.rows] == ["completed", "running"]
    assert all(m["step"] != 999 for m in comp.rows[1].run.metrics)


# --- how compare decides (issue 12) ---------------------------------------------------------


def delta_styles(comp: cmp.Comparison) -> list[str]:
    """The style of each row's final-accuracy delta in the Rich metrics table ('' for no colour)."""
    from bnexp.present.comparison import rich_metrics_table

    table = rich_metrics_table(comp, with_curves=False)
    cells = table.columns[[c.header for c in table.columns].index("final acc")]._cells
    return [",".join(str(span.style) for span in cell.spans) for cell in cells]


def test_copies_of_two_runs_give_no_p_value_no_colour_and_show_duplicates(tmp_path):
    """Issue 12, reproduction 1: a run copied twice and another config copied twice."""
    import shutil

    a = make_run(tmp_path, "a", acc=[0.9, 0.95])
    b = make_run(tmp_path, "b", acc=[0.9, 0.97], set={"model.norm.kind": "none"})
    paths = [a, shutil.copytree(a, tmp_path / "a_copy"), b, shutil.copytree(b, tmp_path / "b_copy")]
    comp = report(paths)
    assert [(g.n, len(g.duplicates)) for g in comp.groups] == [(1, 1), (1, 1)]
    assert comp.groups[0].duplicates[0].why == "duplicate of seed 0 (a): counted once"
    [c] = comp.comparisons
    assert c.verdict == "too_few_seeds" and c.result.p is None and c.result.test == "none"
    assert c.sentence() == "difference +0.02, too few seeds (n = 1): run at least 3"
    assert delta_styles(comp) == ["", "", "", ""]  # deltas shown, none coloured
    assert "duplicate of seed 0" in output(paths)
    doc = json.loads(output(paths, fmt="json"))
    assert [g["duplicates"] for g in doc["groups"]] == [
        [{"run": "a_copy", "why": "duplicate of seed 0 (a): counted once"}],
        [{"run": "b_copy", "why": "duplicate of seed 0 (b): counted once"}]]
    assert [g["n"] for g in doc["groups"]] == [1, 1]
    entry = doc["comparisons"][0]
    assert entry["p"] is None and entry["p_adjusted"] is None and entry["verdict"] == "too_few_seeds"
    assert {e["path"] for e in entry["excluded"]} == {str(tmp_path / "a_copy"), str(tmp_path / "b_copy")}


def sample_and_full(root: Path, seeds=(0, 1, 2)) -> list[Path]:
    sample = {"dataset": "mnist-sample", "source": "bundled", "train_examples": 5000, "test_examples": 1000}
    full = {"dataset": "mnist", "source": "x", "train_examples": 60000, "test_examples": 10000}
    return ([make_run(root, f"sample{s}", seed=s, acc=[0.9, 0.90 + s / 1000], set={"data.dataset": "mnist-sample"},
                      summary={"data": sample}) for s in seeds]
            + [make_run(root, f"full{s}", seed=s, acc=[0.9, 0.97 + s / 1000], summary={"data": full})
               for s in seeds])


def test_runs_on_different_test_sets_get_no_delta_and_no_test(tmp_path):
    """Issue 12, reproduction 2: mnist-sample (1,000 test images) against mnist (10,000)."""
    paths = sample_and_full(tmp_path)
    comp = report(paths)
    assert comp.comparisons == []
    assert comp.not_comparable == [
        "full0, full1, full2: tested on mnist (10,000 test examples), not the baseline's mnist-sample "
        "(1,000 test examples); no delta or test against runs of another test set"]
    full0, full1 = row_of(comp, "full0"), row_of(comp, "full1")
    assert full0.deltas == {}  # the first run of its test set: a baseline, not a delta to sample0
    assert full1.deltas["final_test_accuracy"].value == pytest.approx(0.001)  # against full0
    assert [g.label for g in comp.groups] == ["data.dataset=mnist-sample", "data.dataset=mnist"]
    assert "Not comparable: full0, full1, full2: tested on mnist" in output(paths)
    doc = json.loads(output(paths, fmt="json"))
    assert doc["comparisons"] == [] and len(doc["not_comparable"]) == 1


def test_each_test_set_is_its_own_family_with_its_own_baseline(tmp_path):
    """The same dataset with another number of test examples is another test set too."""
    def arm(name, seed, acc, n_test, kind="batch"):
        data = {"dataset": "mnist", "test_examples": n_test}
        return make_run(tmp_path, name, seed=seed, acc=[0.5, acc], summary={"data": data},
                        set={"model.norm.kind": kind})

    paths = [arm(f"a{s}", s, 0.95 + s / 100, 10000) for s in range(3)]
    paths += [arm(f"b{s}", s, 0.90 + s / 100, 5000) for s in range(3)]
    paths += [arm(f"c{s}", s, 0.80 + s / 100, 5000, "none") for s in range(3)]
    comp = report(paths)
    [c] = comp.comparisons  # only b against c: a's test set holds one group
    assert (c.baseline.label, c.group.label) == ("model.norm.kind=batch, test set=mnist (5,000 test examples)",
                                                 "model.norm.kind=none, test set=mnist (5,000 test examples)")
    assert c.result.difference == pytest.approx(-0.10)
    assert len(comp.not_comparable) == 1 and "b0, b1, b2, c0, c1, c2" in comp.not_comparable[0]


def test_two_seeds_give_no_p_value_whatever_the_spread(tmp_path):
    paths = [make_run(tmp_path, f"a{s}", seed=s, acc=[0.5, 0.95 + s / 1000]) for s in range(2)]
    paths += [make_run(tmp_path, f"b{s}", seed=s, acc=[0.5, 0.80 + s / 1000], set={"model.norm.kind": "none"})
              for s in range(2)]
    [c] = report(paths).comparisons
    assert (c.verdict, c.result.p, c.result.ci_low, c.result.effect_size) == ("too_few_seeds", None, None, None)
    assert "too few seeds (n = 2): run at least 3" in c.sentence()
    entry = json.loads(output(paths, fmt="json"))["comparisons"][0]
    assert {k: entry[k] for k in ("test", "p", "p_adjusted", "ci_low", "ci_high", "effect_size", "seeds_needed")} == {
        "test": "none", "p": None, "p_adjusted": None, "ci_low": None, "ci_high": None, "effect_size": None,
        "seeds_needed": None}
    assert entry["difference"] == pytest.approx(-0.15)


def test_zero_variance_is_decided_by_the_exact_rank_test_never_p_zero(tmp_path):
    # issue 24 changes this deliberately: zero variance used to read not_distinguishable
    # without any test; the exact Mann–Whitney test has one: 2 of C(6, 3) splits as extreme
    paths = [make_run(tmp_path, f"a{s}", seed=s, acc=[0.5, 0.95]) for s in range(3)]
    paths += [make_run(tmp_path, f"b{s}", seed=s + 3, acc=[0.5, 0.96], set={"model.norm.kind": "none"})
              for s in range(3)]
    [c] = report(paths).comparisons
    assert (c.verdict, c.result.test, c.result.p) == ("not_distinguishable", "mann_whitney", pytest.approx(0.1))
    assert c.sentence() == ("difference +0.01, P(b > a) = 1, exact Mann–Whitney test over 3 and 3 seeds (zero"
                            " variance: no t-test), p = 0.1: not distinguishable from seed noise; no seed"
                            " estimate: the seed advisor plans t-tests only")
    assert "p = 0 " not in output(paths)


def three_arms(root: Path) -> tuple[list[Path], dict[str, list[float]]]:
    accs = {"batch": [0.981, 0.978, 0.983, 0.980], "none": [0.971, 0.969, 0.972, 0.971],
            "layer": [0.979, 0.980, 0.978, 0.982]}
    paths = [make_run(root, f"{kind}{s}", seed=s, acc=[0.5, a], set={"model.norm.kind": kind})
             for kind, values in accs.items() for s, a in enumerate(values)]
    return paths, accs


def test_three_groups_are_each_tested_against_the_baseline_with_holm(tmp_path):
    from scipy import stats

    paths, accs = three_arms(tmp_path)
    comp = report(paths)
    raw = [stats.ttest_rel(accs[k], accs["batch"]).pvalue for k in ("none", "layer")]
    m = len(raw)
    order = np.argsort(raw)
    holm = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):  # Holm (1979): the i-th smallest times (m − i + 1), kept monotone
        running = max(running, (m - rank) * raw[i])
        holm[i] = min(running, 1.0)
    assert [c.group.label for c in comp.comparisons] == ["model.norm.kind=none", "model.norm.kind=layer"]
    assert [c.result.p for c in comp.comparisons] == pytest.approx(raw)
    assert [c.result.p_adjusted for c in comp.comparisons] == pytest.approx(list(holm))
    assert all("Holm-adjusted p" in c.sentence() for c in comp.comparisons)
    assert comp.comparisons[0].verdict == "distinguishable"
    assert delta_styles(comp).count("red") == 4 and "green" not in delta_styles(comp)  # none is worse; layer untested


def test_json_comparison_entries_have_every_field(tmp_path):
    paths, _ = three_arms(tmp_path)
    doc = json.loads(output(paths, fmt="json"))
    assert len(doc["comparisons"]) == 2
    for entry in doc["comparisons"]:
        # Issue 23 adds the Holm family and the runs each side has, diverged, failed and censored;
        # issue 24 adds ci_level, ci_of and advice_reason.
        assert set(entry) == {"a", "b", "metric", "family", "test", "p", "p_adjusted", "difference", "ci_low",
                              "ci_high", "ci_level", "ci_of", "effect_size", "n_a", "n_b", "verdict", "seeds_needed",
                              "advice_reason", "note", "sentence", "excluded", "n_diverged", "n_failed", "n_runs_a",
                              "n_runs_b", "n_diverged_a", "n_diverged_b", "n_failed_a", "n_failed_b", "n_censored_a",
                              "n_censored_b"}
        assert entry["ci_level"] == pytest.approx(1 - 0.05 * entry["p"] / entry["p_adjusted"])
        assert entry["a"] == "model.norm.kind=batch" and entry["metric"] == "final_test_accuracy"
        assert entry["test"] == "paired" and (entry["n_a"], entry["n_b"]) == (4, 4)
        assert entry["p"] <= entry["p_adjusted"]
        assert "Holm-adjusted p" in entry["sentence"]
    assert doc["groups"][0] | {"final_test_accuracy": None} == doc["groups"][0] | {"final_test_accuracy": None}
    assert (doc["groups"][0]["n"], doc["groups"][0]["mean"]) == (4, pytest.approx(0.9805))
    assert doc["groups"][0]["std"] == pytest.approx(np.std([0.981, 0.978, 0.983, 0.980], ddof=1))


def test_runs_that_did_not_complete_are_excluded_with_why(tmp_path):
    paths = [make_run(tmp_path, f"a{s}", seed=s, acc=[0.5, 0.95 + s / 1000]) for s in range(3)]
    paths.append(make_run(tmp_path, "a3", seed=3, acc=[0.1], summary={"status": "diverged", "steps": 34}))
    paths.append(make_run(tmp_path, "a4", seed=4, acc=[0.5], summary={"status": "interrupted", "steps": 500}))
    paths += [make_run(tmp_path, f"b{s}", seed=s, acc=[0.5, 0.90 + s * s / 1000], set={"model.norm.kind": "none"})
              for s in range(3)]
    comp = report(paths)
    assert [(e.row.label, e.why) for e in comp.groups[0].excluded] == [("a3", "diverged"),
                                                                        ("a4", "interrupted at step 500")]
    [c] = comp.comparisons
    # The diverged seed is an outcome, the worst one: it stays in the test (issue 24), so the
    # sides no longer share their seeds and the exact Mann–Whitney test ranks it last.
    assert (c.result.n_a, c.result.n_b, c.result.test) == (4, 3, "mann_whitney")
    assert note_text(c.result.notes) == "failures ranked worst: 0 and 1"
    assert [e["why"] for e in json.loads(output(paths, fmt="json"))["comparisons"][0]["excluded"]] == [
        "diverged", "interrupted at step 500"]


def grid(root: Path, seeds=(0, 1, 2)) -> list[Path]:
    """A sweep-like folder: norm kind × learning rate, with a manifest in grid order."""
    points = []
    noise = iter([(0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1)])  # each mean 1, std 1 (thousandths), not parallel
    for kind in ("none", "batch"):  # not alphabetical: the grid's order is the file's
        for lr in (0.1, 1.0):
            seed_noise = next(noise)
            for s in seeds:
                acc = {"none": 0.90, "batch": 0.95}[kind] + (0.01 if lr == 1.0 else 0) + seed_noise[s] / 1000
                run_dir = f"kind={kind},lr={lr}/seed{s}"
                make_run(root / f"kind={kind},lr={lr}", f"seed{s}", seed=s, acc=[0.5, acc],
                         set={"model.norm.kind": kind, "train.learning_rate": lr})
                points.append({"run_dir": run_dir})
    rundir.write_atomic(root / rundir.SWEEP_MANIFEST, json.dumps({"name": "g", "points": points}))
    return [root]


def test_a_sweeps_baseline_is_its_first_point_in_grid_order(tmp_path):
    comp = report(grid(tmp_path / "sweep"))
    assert comp.rows[0].label == "kind=none,lr=0.1/seed0"
    assert [g.label for g in comp.groups] == [
        "model.norm.kind=none, train.learning_rate=0.1", "model.norm.kind=none, train.learning_rate=1.0",
        "model.norm.kind=batch, train.learning_rate=0.1", "model.norm.kind=batch, train.learning_rate=1.0"]


def test_the_baseline_is_the_first_run_named(tmp_path):
    a = make_run(tmp_path, "a", acc=[0.5, 0.95])
    b = make_run(tmp_path, "b", acc=[0.5, 0.97], set={"model.norm.kind": "none"})
    comp = report([b, a])
    assert [r.label for r in comp.rows] == ["b", "a"]
    assert comp.rows[1].deltas["final_test_accuracy"].value == pytest.approx(-0.02)
    assert comp.comparisons[0].baseline.label == "model.norm.kind=none"


def test_pivot_lays_out_mean_std_n_by_grid_values(tmp_path):
    paths = grid(tmp_path / "sweep")
    comp = report(paths, pivot_rows="model.norm.kind", pivot_columns="train.learning_rate")
    header, rows = pivot_table(comp.pivot)
    assert header == ["model.norm.kind", "train.learning_rate=0.1", "train.learning_rate=1.0"]
    assert rows == [["none", "0.9010 ± 0.0010 (3)", "0.9110 ± 0.0010 (3)"],
                    ["batch", "0.9510 ± 0.0010 (3)", "0.9610 ± 0.0010 (3)"]]
    options = {"pivot_rows": "model.norm.kind", "pivot_columns": "train.learning_rate"}
    assert "| none | 0.9010 ± 0.0010 (3) | 0.9110 ± 0.0010 (3) |" in output(paths, fmt="markdown", **options)
    table = output(paths, **options)
    assert "Final test accuracy, mean ± std (n seeds)" in table and "0.9610 ± 0.0010 (3)" in table
    assert "Holm-adjusted p" in table
    pivot = json.loads(output(paths, fmt="json", **options))["pivot"]
    assert (pivot["row_keys"], pivot["column_key"], pivot["columns"]) == (
        ["model.norm.kind"], "train.learning_rate", ["0.1", "1.0"])
    assert pivot["rows"][1]["values"] == {"model.norm.kind": "batch"}
    assert pivot["rows"][1]["cells"][1]["mean"] == pytest.approx(0.961) and pivot["rows"][1]["cells"][1]["n"] == 3
    lines = list(csv.reader(io.StringIO(output(paths, fmt="csv", **options))))
    # Issue 23: each cell also says how many runs it has, and how many diverged or failed to learn.
    stats = ("mean", "std", "n", "n_runs", "n_diverged", "n_failed")
    assert lines[0] == ["model.norm.kind"] + [f"train.learning_rate={lr} {s}" for lr in ("0.1", "1.0") for s in stats]
    assert lines[2][0] == "batch" and float(lines[2][7]) == pytest.approx(0.961) and lines[2][9:13] == ["3", "3", "0", "0"]


def test_pivot_without_columns_keeps_other_differing_keys_in_its_rows(tmp_path):
    comp = report(grid(tmp_path / "sweep"), pivot_rows="train.learning_rate")
    header, rows = pivot_table(comp.pivot)
    assert header == ["train.learning_rate", "model.norm.kind", "final acc"]  # no cell mixes two configs
    assert [r[:2] for r in rows] == [["0.1", "none"], ["1.0", "none"], ["0.1", "batch"], ["1.0", "batch"]]


def test_pivot_on_an_unknown_key_is_one_line_naming_the_allowed_keys(tmp_path):
    [sweep] = grid(tmp_path / "sweep")
    result = compare_cli(sweep, "--pivot", "model.norm.kinds")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: --pivot model.norm.kinds: not a config key that differs between these runs' groups "
        "(allowed: model.norm.kind, train.learning_rate)"]
    assert compare_cli(sweep, "--columns", "model.norm.kind").exit_code == 2


def test_csv_gives_every_differing_config_key_its_own_column(tmp_path):
    rows = list(csv.DictReader(io.StringIO(output(grid(tmp_path / "sweep"), fmt="csv"))))
    assert len(rows) == 12
    assert (rows[0]["model.norm.kind"], rows[0]["train.learning_rate"], rows[0]["seed"]) == ("none", "0.1", "0")
    assert (rows[-1]["model.norm.kind"], rows[-1]["train.learning_rate"], rows[-1]["seed"]) == ("batch", "1.0", "2")
    assert rows[-1]["group"] == "model.norm.kind=batch, train.learning_rate=1.0"
    assert float(rows[-1]["final_test_accuracy"]) == pytest.approx(0.961)


def test_train_set_accuracy_and_the_gap_are_columns(tmp_path):
    def with_train_set(name, seed, test, on_train):
        path = make_run(tmp_path, name, seed=seed, acc=[0.5, test])
        run = rundir.RunDir(path)
        rows = run.read_metrics()
        run.rewrite_metrics([r | {"train_set_accuracy": on_train, "train_set_loss": 0.1} for r in rows])
        return path

    comp = report([with_train_set("a", 0, 0.95, 0.99), with_train_set("b", 1, 0.96, 0.97)])
    assert comp.rows[1].values["final_train_set_accuracy"] == 0.97
    assert comp.rows[1].values["generalization_gap"] == pytest.approx(0.01)
    assert comp.rows[1].deltas["generalization_gap"].value == pytest.approx(-0.03)
    header, _ = metrics_table(comp, with_curves=False)
    assert {"train-set acc", "train−test gap"} <= set(header)


def test_plot_draws_ics_and_the_landscape_from_their_tables(tmp_path):
    from bnexp.plots import learning_curves_figure

    paths = [make_run(tmp_path, "a"), make_run(tmp_path, "b", seed=1, set={"model.norm.kind": "none"})]
    for path, scale in zip(paths, (1.0, 3.0)):
        run = rundir.RunDir(path)
        run.start_diagnostics(["ics", "landscape"], None)
        run.append_diagnostics({
            "ics": [{"step": s, "layer": layer, "ics_l2": scale * (layer + s / 500), "ics_cosine": 0.9} for s in (500, 1000) for layer in (0, 1, 2)],
            "landscape": [{"step": s, "loss_min": 0.1, "loss_max": 0.5, "grad_change_max": scale * s / 100, "beta_smoothness": scale * s}
                          for s in (500, 1000)],
        })
    fig = learning_curves_figure(cmp.load_runs([str(p) for p in paths]))
    ics, landscape = fig.axes[2], fig.axes[3]  # the row below the curves: no BN diagnostics here
    assert "internal covariate shift" in ics.get_title() and "β-smoothness" in landscape.get_title()
    # Mean over the layers after the first (1 and 2) of scale · (layer + step/500).
    assert [list(line.get_ydata()) for line in ics.lines] == [[2.5, 3.5], [7.5, 10.5]]
    assert [list(line.get_ydata()) for line in landscape.lines] == [[500, 1000], [5, 10], [1500, 3000], [15, 30]]


def test_a_wide_config_diff_folds_to_each_key_and_its_values(tmp_path):
    """Nine runs (past DIFF_COLUMNS): one row per differing key, its values with their run
    counts, in the order the runs show them; no line of the table wider than the screen."""
    kinds = ["batch", "none", "layer"]
    paths = [make_run(tmp_path, f"r{i}", seed=i // 3, set={"model.norm.kind": kinds[i % 3]}) for i in range(9)]
    text = output(paths)
    # the metrics table sets the width; the diff adds none (verdict sentences are paragraphs,
    # one line each off a terminal, and since issue 24 name their rank test at length)
    table_lines = [line for line in text.splitlines() if any(c in line for c in "│┃━─")]
    assert max(len(line) for line in table_lines) <= 60 * 3
    diff = text.split("Config diff")[1].split("\n\n")[0]
    assert "values over 9 runs" in diff
    assert "batch (3 runs), none (3 runs), layer (3 runs)" in " ".join(diff.split()).replace("│ ", "").replace(" │", "")
    markdown = output(paths, fmt="markdown")
    assert "| seed | 0 (3 runs), 1 (3 runs), 2 (3 runs) |" in markdown
    assert "| model.norm.kind | batch (3 runs), none (3 runs), layer (3 runs) |" in markdown


def test_a_folded_config_diff_names_at_most_twelve_values_of_a_key(tmp_path):
    paths = [make_run(tmp_path, f"r{i:02d}", seed=i) for i in range(15)]
    markdown = output(paths, fmt="markdown")
    assert "| seed | " + ", ".join(f"{i} (1 run)" for i in range(12)) + ", and 3 more (--format json lists each run's) |" in markdown


def test_a_narrow_config_diff_keeps_a_column_per_run(tmp_path):
    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b", seed=1)
    assert "| seed | 0 | 1 |" in output([a, b], fmt="markdown")


def test_two_of_five_diverged_is_not_read_as_distinguishable(tmp_path):
    """Issue 23's example, as issue 24 wants it decided: three survivors 0.012 above the
    baseline read "distinguishable" when the diverged seeds dropped out; ranked worst, the
    exact signed-rank test (SciPy's own here) finds no difference."""
    import scipy.stats as sps

    base = [0.950, 0.952, 0.948, 0.951, 0.949]
    paths = [make_run(tmp_path, f"a{s}", seed=s, acc=[0.5, v]) for s, v in enumerate(base)]
    survivors = [0.962, 0.964, 0.960]
    paths += [make_run(tmp_path, f"b{s}", seed=s, acc=[0.5, v], set={"model.norm.kind": "none"})
              for s, v in enumerate(survivors)]
    paths += [make_run(tmp_path, f"b{s}", seed=s, acc=[0.1], summary={"status": "diverged", "steps": 30},
                       set={"model.norm.kind": "none"}) for s in (3, 4)]
    [c] = report(paths).comparisons
    # Matched seeds 0-4: the paired exact signed-rank test, a diverged seed's pair lost outright.
    diffs = [v - b for v, b in zip(survivors, base)] + [-1.0, -1.0]
    expected = sps.wilcoxon(diffs, method="exact").pvalue
    assert (c.result.test, c.verdict) == ("wilcoxon", "not_distinguishable")
    assert c.result.p == pytest.approx(expected)
    doc = json.loads(output(paths, fmt="json"))["comparisons"][0]
    assert (doc["n_diverged_b"], doc["verdict"], doc["difference"]) == (2, "not_distinguishable", None)
    assert "2 diverged" in doc["sentence"] and "distinguishable from seed noise" in doc["sentence"]


SAME_CPU = {"cpu_model": "Intel(R) Xeon(R) Platinum 8480+", "vector_level": "amx", "threads": 2}
OTHER_CPU = {"cpu_model": "AMD EPYC 9R14 96-Core Processor", "vector_level": "avx512", "threads": 2}


@pytest.mark.parametrize("twin_hardware, counted, why", [
    (SAME_CPU, 2, "conflicting duplicates of seed 0: a0 0.98, twin 0.5 on the same hardware; neither is counted"),
    (OTHER_CPU, 3, "duplicate of seed 0 (a0), from other hardware, 0.5 against 0.98: counted once"),
])
def test_a_twin_that_disagrees_is_left_out_on_the_same_hardware_and_counted_once_across(
        tmp_path, twin_hardware, counted, why):
    """Issue 24, reproduction 7: runs of one config and seed are bit-identical on one CPU, so
    twins that disagree there contradict each other and neither stands for the seed."""
    paths = [make_run(tmp_path, f"a{s}", seed=s, summary={"hardware": SAME_CPU}) for s in range(3)]
    paths.append(make_run(tmp_path, "twin", seed=0, acc=(0.9, 0.95, 0.97, 0.5), summary={"hardware": twin_hardware}))
    [group] = report(paths).groups
    assert group.n == counted
    assert why in [e.why for e in group.excluded]


def test_runs_that_cannot_be_read_are_listed_as_not_counted_and_the_rest_compared(tmp_path):
    """Issue 24, reproduction 7: a missing summary and an empty accuracy cell put the run in
    the not-counted list with the reason; nothing crashes, and compare exits 0."""
    paths = [make_run(tmp_path, f"a{s}", seed=s) for s in range(3)]
    paths += [make_run(tmp_path, f"b{s}", seed=s, set={"model.norm.kind": "none"}) for s in range(4)]
    (tmp_path / "b2" / "summary.json").unlink()
    metrics_file = tmp_path / "b3" / "metrics.csv"
    lines = metrics_file.read_text().splitlines()
    cells = lines[-1].split(",")
    cells[rundir.METRICS_COLUMNS.index("test_accuracy")] = ""
    metrics_file.write_text("\n".join(lines[:-1] + [",".join(cells)]) + "\n")
    result = compare_cli(tmp_path, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    [(b2, missing), (b3, empty)] = [(Path(e["path"]).name, e["why"]) for e in doc["not_counted"]]
    assert (b2, b3) == ("b2", "b3")
    assert missing.endswith("b2/summary.json is missing") and "b3/metrics.csv is corrupt" in empty
    assert [g["n"] for g in doc["groups"]] == [3, 2]
    text = compare_cli(tmp_path).stdout
    assert "Not counted: " in text and "summary.json is missing" in text
