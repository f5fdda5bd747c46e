"""Claims wired into sweeps: `expect:` checked before anything trains, verdicts at the end
of `bnexp sweep`, in sweep.json, from `bnexp compare SWEEP_DIR`, `--check`, `--seeds`, and
the claims report. The verdict logic itself is tested in test_claims.py and test_stats.py.

One real sweep on the bundled sample (two momenta × three seeds, 40 steps) is shared by
the tests that only read it; its claims are chosen to be deterministic whatever the runs
give: two groups of accuracies are always equivalent within a margin of 1 (a TOST with
p far below 0.05), and no run of this setup diverges, so `diverged` is 0 against 0:
Fisher's p = 1, inconclusive.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats as sps
from typer.testing import CliRunner

from bnexp import rundir
from bnexp.cli import app
from bnexp.sweep import MANIFEST

BASE = {
    "name": "tiny",
    "data": {"dataset": "mnist-sample"},
    "model": {"hidden": [16], "norm": {"kind": "batch"}},
    "train": {"optimizer": "momentum", "learning_rate": 0.05, "batch_size": 50, "steps": 40, "eval_every": 20},
}
GRID = {"model.norm.momentum": [0.9, 0.99]}
FAST, SLOW = {"model.norm.momentum": 0.9}, {"model.norm.momentum": 0.99}
# Two evaluations per run: `last` may not ask for more (issue 23: never averaged over fewer).
SAME = {"name": "same", "claim": "the momentum hardly matters", "source": "a test", "metric": "final_accuracy",
        "better": FAST, "than": SLOW, "direction": "equivalent", "margin": 1.0, "last": 2}
DIVERGES = {"name": "div", "claim": "the faster average diverges more", "source": "a test", "metric": "diverged",
            "better": FAST, "than": SLOW, "direction": "higher"}
FIELDS = {"name", "verdict", "metric", "difference", "ci_low", "ci_high", "p", "p_adjusted", "n_better", "n_than",
          "seeds_needed", "claim", "source", "direction", "family", "notes",
          # issue 24: the interval's level and kind, the test, the advisor's reason, the register
          "ci_level", "ci_of", "test", "advice_reason", "status", "post_hoc", "hash", "registered_at",
          "finished_at_registration", "withdrawn_verdict", "fresh_verdict", "fresh_seeds"}


def write_sweep(folder: Path, expect: list[dict], name: str = "claims.yaml", **fields) -> Path:
    path = folder / name
    spec = {"name": "tiny", "base": BASE, "grid": GRID, "seeds": [0, 1, 2], "expect": expect} | fields
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def bnexp(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text())


@pytest.fixture(scope="module")
def claimed(tmp_path_factory):
    """The sweep run once: (sweep file, sweep directory, the command's result)."""
    tmp = tmp_path_factory.mktemp("claims")
    path = write_sweep(tmp, [SAME, DIVERGES])
    result = bnexp("sweep", path, "--out", tmp / "out", "--workers", "2")
    return path, tmp / "out", result


def final_accuracies(out: Path, grid_point: dict) -> np.ndarray:
    """Each seed's mean of its last 2 evaluations, read from its metrics by the run-directory owner."""
    label = f"momentum={grid_point['model.norm.momentum']}"
    return np.array([np.mean([r["test_accuracy"] for r in rundir.RunDir(out / label / f"seed={s}").read_metrics()][-2:])
                     for s in (0, 1, 2)])


# --- at the end of the sweep, and in sweep.json ---------------------------------------------


def test_the_sweep_prints_the_verdicts_and_an_inconclusive_claim_leaves_the_exit_code_alone(claimed):
    _, out, result = claimed
    assert result.exit_code == 0, result.output
    table = result.output[result.output.index("Claims (one Holm family: claims in sweep tiny)"):]
    assert "same" in table and "holds" in table and "div" in table and "inconclusive" in table
    # issue 24: the TOST interval is at 1 − 2·0.05·p/p_adjusted, and Holm doubled same's p
    # (div's p is 1), so it is the 95% interval; div's odds ratio is undefined at 0 of 3 v 0 of 3
    assert "[95% CI" in table and "[90% CI" not in table


def test_sweep_json_records_the_claims_and_what_judging_them_again_needs(claimed):
    _, out, _ = claimed
    doc = manifest(out)
    assert doc["grid"] == GRID and doc["seeds"] == [0, 1, 2]
    assert [e["name"] for e in doc["expect"]] == ["same", "div"] and doc["expect"][0]["better"] == FAST
    same, div = doc["claims"]
    assert set(same) == FIELDS and (same["verdict"], div["verdict"]) == ("holds", "inconclusive")
    # TOST by paired t-tests (the sides share seeds), against SciPy directly.
    fast, slow = final_accuracies(out, FAST), final_accuracies(out, SLOW)
    p = max(sps.ttest_rel(fast + 1.0, slow, alternative="greater").pvalue,
            sps.ttest_rel(fast - 1.0, slow, alternative="less").pvalue)
    assert same["difference"] == pytest.approx(np.mean(fast - slow)) and same["p"] == pytest.approx(p)
    assert same["p_adjusted"] == pytest.approx(2 * p)  # Holm over the two claims; div's p is 1
    # its interval at TOST's Holm level 1 − 2·0.05·p/(2p) = 95%
    ci = sps.ttest_rel(fast, slow).confidence_interval(0.95)
    assert same["ci_level"] == pytest.approx(0.95) and (same["ci_low"], same["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert (div["p"], div["difference"], div["n_better"], div["n_than"]) == (1.0, 0.0, 3, 3)
    assert same["family"] == div["family"] == "claims in sweep tiny"


# --- --check ----------------------------------------------------------------------------------


def test_check_exits_1_on_a_claim_that_does_not_hold_also_when_nothing_trains(claimed, tmp_path):
    path, finished, _ = claimed
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    summaries = sorted(out.rglob(rundir.SUMMARY))
    before = [p.stat().st_mtime_ns for p in summaries]
    result = bnexp("sweep", path, "--out", out, "--check")
    assert result.exit_code == 1, result.output
    assert "6 already have a result" in result.output and "inconclusive" in result.output
    assert [p.stat().st_mtime_ns for p in summaries] == before  # nothing trained


def test_check_exits_0_when_every_claim_holds_and_a_removed_claim_stays_withdrawn(claimed, tmp_path):
    _, finished, _ = claimed
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    result = bnexp("sweep", write_sweep(tmp_path, [SAME]), "--out", out, "--check")
    assert result.exit_code == 0, result.output  # div, withdrawn, was inconclusive, not contradicted
    # issue 24: div was removed from the file; it stays in sweep.json and in the family
    assert [(c["name"], c["status"]) for c in manifest(out)["claims"]] == [("same", "active"), ("div", "withdrawn")]
    assert [e["name"] for e in manifest(out)["expect"]] == ["same"]


# --- bnexp compare SWEEP_DIR ------------------------------------------------------------------


def test_compare_judges_the_claims_again_under_their_own_key_without_the_sweep_file(claimed, tmp_path):
    _, finished, _ = claimed
    out = tmp_path / "moved"
    shutil.copytree(finished, out)  # the sweep file is not needed: sweep.json holds the claims
    result = bnexp("compare", out, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["claims"] == manifest(finished)["claims"]
    # claims stay under their own key: the comparisons are seed groups against the baseline
    assert all("name" not in c and c["metric"] == "final_test_accuracy" for c in doc["comparisons"])
    markdown = bnexp("compare", out, "--format", "markdown").output
    assert "### Claims (one Holm family: claims in sweep tiny)" in markdown and "| same | holds |" in markdown
    assert "holds" in bnexp("compare", out).output


def test_compare_of_runs_that_are_no_sweep_has_no_claims(claimed):
    _, out, _ = claimed
    result = bnexp("compare", out / "momentum=0.9", "--format", "json")
    assert result.exit_code == 0 and json.loads(result.output)["claims"] is None


# --- --seeds ------------------------------------------------------------------------------------


def run_dirs(result) -> list[str]:
    return [line.split("│")[1].strip() for line in result.output.splitlines() if "seed=" in line]


def test_seeds_replace_the_files_seeds(tmp_path):
    path = write_sweep(tmp_path, [SAME])
    result = bnexp("sweep", path, "--seeds", "1,3-5", "--dry-run", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert run_dirs(result) == [f"momentum={m}/seed={s}" for m in (0.9, 0.99) for s in (1, 3, 4, 5)]
    assert not (tmp_path / "out").exists()


def test_seeds_given_to_an_existing_sweep_are_added_to_its_own(claimed):
    path, out, _ = claimed
    result = bnexp("sweep", path, "--seeds", "3-4", "--dry-run", "--out", out)
    assert result.exit_code == 0, result.output
    assert run_dirs(result) == [f"momentum={m}/seed={s}" for m in (0.9, 0.99) for s in range(5)]
    statuses = [line.split("│")[3].strip() for line in result.output.splitlines() if "seed=" in line]
    assert statuses == (["completed"] * 3 + ["pending"] * 2) * 2


@pytest.mark.parametrize("seeds, message", [
    ("5-1", "--seeds '5-1': range 5-1 runs backwards; write 1-5"),
    ("1,,2", "--seeds '1,,2': an empty item"),
    ("1,2", "seeds: claims need at least 3 seeds per side, the sweep has 2 (1, 2)"),
])
def test_bad_seeds_exit_2_in_one_line(tmp_path, seeds, message):
    result = bnexp("sweep", write_sweep(tmp_path, [SAME]), "--seeds", seeds, "--out", tmp_path / "out")
    assert result.exit_code == 2 and message in result.output and result.output.strip().count("\n") == 0


# --- checked before anything trains -----------------------------------------------------------


@pytest.mark.parametrize("change, fields, message", [
    ({"metric": "final_acc"}, {}, "expect[0] 'same': metric 'final_acc' is not known; did you mean 'final_accuracy'?"),
    ({"better": {"model.norm.momentum": 0.5}}, {}, "better: model.norm.momentum=0.5 matches no grid point"),
    ({}, {"grid": GRID | {"train.learning_rate": [0.05, 0.1]}}, "better matches 2 grid points, not one"),
    ({}, {"seeds": [0, 1]}, "claims need at least 3 seeds per side"),
    ({"margin": None}, {}, "margin is required for direction equivalent"),
    ({"metric": "bn.mean_gap", "layer": 1}, {},
     "metric bn.mean_gap reads diag_bn.csv, which the runs of better do not record: set diagnostics.enabled: true"),
])
def test_a_bad_claim_exits_2_in_one_line_and_creates_nothing(tmp_path, change, fields, message):
    entry = {k: v for k, v in (SAME | change).items() if v is not None}
    result = bnexp("sweep", write_sweep(tmp_path, [entry], **fields), "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.output and result.output.startswith(f"error: {tmp_path / 'claims.yaml'}: ")
    assert result.output.strip().count("\n") == 0 and not (tmp_path / "out").exists()


def test_a_diagnostics_claim_passes_once_its_table_is_recorded(tmp_path):
    entry = SAME | {"metric": "bn.mean_gap", "layer": 1}
    path = write_sweep(tmp_path, [entry], set={"diagnostics.enabled": True})
    result = bnexp("sweep", path, "--dry-run", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output


# --- the claims report --------------------------------------------------------------------------


def test_the_claims_report_tables_every_claim_with_its_figure(claimed, tmp_path):
    _, out, _ = claimed
    report = tmp_path / "docs" / "claims.md"
    result = bnexp("claims-report", out.parent, "--out", report)
    assert result.exit_code == 0, result.output
    text = report.read_text()
    same = next(line for line in text.splitlines() if line.startswith("| **same**"))
    cells = [c.strip() for c in same.strip("|").split(" | ")]
    assert cells[1] == "a test" and cells[3] == "holds" and cells[7] == "[figure](claims/tiny-same.png)"
    assert cells[2] == ("network 784-16-10 relu; norm batch; optimizer momentum lr 0.05; batch 50; steps 40;"
                        " model.norm.momentum 0.9 vs 0.99; seeds 0, 1, 2")
    assert (report.parent / "claims" / "tiny-same.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    div = next(line for line in text.splitlines() if line.startswith("| **div**"))
    assert "inconclusive" in div and "figure" not in div  # a 0/1 metric has no curve to show


def test_the_claims_report_works_on_partial_results(claimed, tmp_path):
    _, finished, _ = claimed
    out = tmp_path / "runs" / "tiny"
    shutil.copytree(finished, out)
    shutil.rmtree(out / "momentum=0.99" / "seed=2")  # a run still to come
    report = tmp_path / "claims.md"
    assert bnexp("claims-report", out, "--out", report).exit_code == 0
    text = report.read_text()
    same = next(line for line in text.splitlines() if line.startswith("| **same**"))
    assert "inconclusive" in same
    assert "- same: than seed 2: no result yet (not run)" in text
