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
from bnexp.present.comparison import format_delta, groups_table, metrics_table, show, ttest_sentence
from bnexp.rundir import Summary

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


def make_run(root: Path, name: str, *, acc=(0.90, 0.95, 0.97, 0.98), loss=None, seed=0,
             set=None, summary=None, eval_every=500) -> Path:
    """Write a run's config, metrics and summary through bnexp.rundir, as `bnexp train` does.

    `set` maps dotted config keys to values; `summary` overrides summary fields.
    """
    run = rundir.RunDir(root / name)
    run.path.mkdir(parents=True)
    raw = copy.deepcopy(BASE_CONFIG) | {"name": name, "seed": seed}
    for key, value in (set or {}).items():
        apply_override(raw, f"{key}={json.dumps(value)}")
    run.write_config(validate(raw, name))
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
    assert len(diff) == len(cmp.load_run(a).config) == 49  # every leaf of the schema (38, and issue 13's 11)


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
                        "steps": 0, "seconds_per_epoch": 1, "examples_per_second": -1,
                        "steps_to_threshold": 1}
    column = cmp.column("seconds_per_epoch")
    assert format_delta(column, d["seconds_per_epoch"]) == "×0.80"
    assert format_delta(cmp.column("steps_to_threshold"), d["steps_to_threshold"]) == "-500"


def test_steps_to_threshold_is_the_first_evaluation_at_or_above_it(tmp_path):
    metrics = [{"step": 500, "test_accuracy": 0.96}, {"step": 1000, "test_accuracy": 0.97},
               {"step": 1500, "test_accuracy": 0.965}, {"step": 2000, "test_accuracy": 0.98}]
    assert cmp.steps_to_threshold(metrics, 0.97) == 1000
    assert cmp.steps_to_threshold(metrics, 0.99) is None


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
    assert comp.rows[1].values["final_test_accuracy"] == pytest.approx(0.55)  # fewer than 5
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
    assert comp.groups == [] and comp.ttest is None


def test_welch_t_test_matches_the_textbook_formula(tmp_path):
    comp = report(two_arms(tmp_path))
    a, b = np.array(BN), np.array(PLAIN)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    # two-sided p: integrate Student's t density from |t| outward (substituting x = |t| / u)
    u = np.linspace(1e-9, 1, 2_000_001)
    x = abs(t) / u
    density = (math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
               * (1 + x**2 / df) ** (-(df + 1) / 2))
    p = 2 * np.trapezoid(density * abs(t) / u**2, u)
    assert comp.ttest.t == pytest.approx(t, rel=1e-9)
    assert comp.ttest.p == pytest.approx(p, rel=1e-4)
    assert comp.ttest.p < 0.05
    assert ttest_sentence(comp.ttest).startswith("distinguishable from seed noise (p = ")


def test_ttest_sentence_says_whether_the_difference_is_seed_noise():
    assert ttest_sentence(cmp.TTest("a", "b", 4.1, 0.003)) == \
        "distinguishable from seed noise (p = 0.003 < 0.05)"
    assert ttest_sentence(cmp.TTest("a", "b", 0.9, 0.41)) == \
        "not distinguishable from seed noise (p = 0.41 ≥ 0.05)"


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
    assert comp.ttest is None


# --- output formats ------------------------------------------------------------------------


def test_table_off_a_terminal_never_truncates_cells(tmp_path):
    long = "a_run_with_a_really_quite_long_name_to_make_the_table_wide"
    text = output([make_run(tmp_path, long), make_run(tmp_path, "b", seed=1)])
    assert long in text
    assert "…" not in text
    assert "Config diff" in text and "steps to 0.97" in text


def test_table_shows_groups_and_the_t_test_verdict(tmp_path):
    text = output(two_arms(tmp_path))
    assert "Seed groups" in text
    assert "distinguishable from seed noise" in text


def test_json_has_runs_diff_groups_and_ttest(tmp_path):
    doc = json.loads(output(two_arms(tmp_path), fmt="json"))
    assert {"runs", "diff", "groups", "ttest"} <= doc.keys()
    assert len(doc["runs"]) == 6 and len(doc["groups"]) == 2
    assert doc["diff"]["model.norm.kind"]["plain0"] == "none"
    assert doc["ttest"]["p"] < 0.05
    assert doc["runs"][1]["deltas"]["final_test_accuracy"]["value"] == pytest.approx(0.978 - 0.981)


def test_csv_has_one_row_per_run_with_raw_values_and_deltas(tmp_path):
    a = make_run(tmp_path, "a", acc=[0.9, 0.96])
    b = make_run(tmp_path, "b", acc=[0.9, 0.97], summary={"seconds_per_epoch": 5.0})
    rows = list(csv.DictReader(io.StringIO(output([a, b], fmt="csv"))))
    assert [r["run"] for r in rows] == ["a", "b"]
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
    HEADER + "\n500,1,0.1,0.9,0.1,oops,0.5,1.0\n",
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


def test_comparing_two_runs_imports_no_tensorflow_scipy_or_matplotlib(tmp_path):
    a, b = make_run(tmp_path, "a"), make_run(tmp_path, "b", seed=1)
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from bnexp.cli import app\n"
        f"assert CliRunner().invoke(app, ['compare', {str(a)!r}, {str(b)!r}]).exit_code == 0\n"
        "heavy = ('tensorflow', 'keras', 'scipy', 'matplotlib')\n"
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
