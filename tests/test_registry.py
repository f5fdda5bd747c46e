"""Claims fixed before their results (issue 24, reproduction 6): the register a sweep
directory keeps in sweep.json, on synthetic runs. A fake executor "trains" each point by
writing its run directory with planted accuracies, so the whole sweep path (load_sweep,
run_sweep, sweep.json, compare's claims, --check) runs in milliseconds, no TensorFlow."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import pytest
import yaml

from bnexp import claims as C, rundir
from bnexp.claims import register as R
from bnexp.present.claims import claims_markdown
from bnexp.sweep import MANIFEST, claims_for, load_sweep
from bnexp.sweep.run import run_sweep

BASE = {"name": "reg", "data": {"dataset": "mnist-sample"}, "model": {"hidden": [16]},
        "train": {"steps": 500, "eval_every": 100}}
GRID = {"model.norm.kind": ["none", "batch"]}
BN, NONE = {"model.norm.kind": "batch"}, {"model.norm.kind": "none"}
# planted final accuracies: BN clearly higher on every seed
FINAL = {"batch": [0.960, 0.962, 0.958, 0.961, 0.959, 0.963, 0.960],
         "none": [0.950, 0.951, 0.949, 0.952, 0.948, 0.950, 0.951]}


def claim(name, direction="higher", better=BN, than=NONE, **extra):
    return {"name": name, "claim": f"claim {name}", "source": "a test", "metric": "final_accuracy",
            "better": better, "than": than, "direction": direction, **extra}


HOLDS = claim("bn-higher")
CONTRADICTED = claim("none-higher", better=NONE, than=BN)


class FakeExecutor:
    """Writes each point's run directory at once: five evaluations ending at its planted accuracy."""

    slots, threads = 4, 1

    def __init__(self):
        self.running: dict = {}

    def open(self, threads):
        pass

    def take(self, todo: deque):
        return todo.popleft()

    def start(self, point, config_yaml, run: Path):
        run_dir = rundir.RunDir(run)
        run_dir.path.mkdir(parents=True, exist_ok=True)
        final = FINAL[point.overrides["model.norm.kind"]][point.overrides["seed"]]
        run_dir.start_metrics()
        for i, d in enumerate([-0.002, -0.001, 0.0, 0.001, 0.002]):
            run_dir.append_metrics({"step": 100 * (i + 1), "epoch": 1.0, "train_loss": 0.1, "train_accuracy": 0.9,
                                    "test_loss": 0.1, "test_accuracy": final + d, "learning_rate": 0.1,
                                    "elapsed_s": 1.0})
        run_dir.write_summary(rundir.Summary(status="completed", test_accuracy=final, steps=500, total_steps=500))
        self.running[point] = True

    def finished(self, timeout):
        done, self.running = [(p, 0, "") for p in self.running], {}
        return done

    def interrupt(self, signum):
        pass

    def close(self):
        pass


class Quiet:
    def start(self, sweep, to_run): pass
    def started(self, point): pass
    def finished(self, point): pass
    def stop(self): pass


def sweep(tmp: Path, expect: list[dict], seeds=None, name="s.yaml"):
    path = tmp / name
    path.write_text(yaml.safe_dump({"name": "reg", "base": BASE, "grid": GRID, "seeds": [0, 1, 2, 3, 4],
                                    "expect": expect}, sort_keys=False))
    plan = load_sweep(path, tmp / "out", seeds)
    run_sweep(plan, FakeExecutor(), Quiet())
    return plan


def by_name(results):
    return {(r["name"], r["status"]): r for r in results}


def test_reproduction_6_a_removed_claim_stays_withdrawn_and_the_family_never_shrinks(tmp_path):
    first = sweep(tmp_path, [HOLDS, CONTRADICTED])
    verdicts = by_name(first.verdicts)
    assert verdicts["bn-higher", "active"]["verdict"] == "holds"
    assert verdicts["none-higher", "active"]["verdict"] == "contradicted"
    assert not any(r["post_hoc"] for r in first.verdicts)  # registered before any run finished
    assert C.check_exit_code(first.verdicts) == 1
    p_before = verdicts["bn-higher", "active"]["p_adjusted"]
    # rerun of the finished sweep with the contradicted claim removed: nothing trains,
    # and the claim stays, withdrawn with its verdict, still in the Holm family
    second = sweep(tmp_path, [HOLDS])
    doc = json.loads((tmp_path / "out" / MANIFEST).read_text())
    assert [(r["name"], r["status"]) for r in doc["registry"]] == [("bn-higher", "active"), ("none-higher", "withdrawn")]
    withdrawn = by_name(second.verdicts)["none-higher", "withdrawn"]
    assert withdrawn["withdrawn_verdict"] == "contradicted" and withdrawn["verdict"] == "contradicted"
    assert any(n.startswith("withdrawn at") for n in withdrawn["notes"])
    assert by_name(second.verdicts)["bn-higher", "active"]["p_adjusted"] == pytest.approx(p_before)
    assert C.check_exit_code(second.verdicts) == 1  # withdrawn while contradicted
    # compare of the directory (no sweep file) and the claims table show it
    again = claims_for([tmp_path / "out"])
    assert [(r["name"], r["status"]) for r in again] == [("bn-higher", "active"), ("none-higher", "withdrawn")]
    assert "| none-higher (withdrawn) | contradicted |" in claims_markdown(again)


def test_a_claim_added_after_its_runs_finished_is_post_hoc_and_needs_fresh_seeds(tmp_path):
    sweep(tmp_path, [HOLDS])
    late = claim("bn-higher-late", last=3)  # a different definition: a new claim
    plan = sweep(tmp_path, [HOLDS, late])
    r = by_name(plan.verdicts)["bn-higher-late", "active"]
    assert r["post_hoc"] and r["finished_at_registration"] == 10 and r["verdict"] == "holds"
    assert r["family"] == "claims in sweep reg" and len(plan.verdicts) == 2  # the family grew, visibly
    assert r["fresh_verdict"] is None and C.check_exit_code(plan.verdicts) == 1
    assert "| bn-higher-late (post hoc) | holds |" in claims_markdown(plan.verdicts)
    # fresh seeds, added with --seeds: judged on them alone, it holds, and --check passes
    # two fresh seeds are too few for a test of their own: --check still fails
    fresh = sweep(tmp_path, [HOLDS, late], seeds=[5, 6, 0])
    r = by_name(fresh.verdicts)["bn-higher-late", "active"]
    assert (r["fresh_verdict"], r["fresh_seeds"]) == (None, None) and C.check_exit_code(fresh.verdicts) == 1
    registered = {e.name: e for e in fresh.registry}
    assert registered["bn-higher-late"].seeds_seen == (0, 1, 2, 3, 4)


def test_fresh_seeds_let_a_post_hoc_claim_pass(tmp_path):
    first = sweep(tmp_path, [HOLDS], seeds=[0, 1, 2])
    assert C.check_exit_code(first.verdicts) == 0
    late = claim("bn-higher-late", last=3)
    plan = sweep(tmp_path, [HOLDS, late], seeds=[4, 5, 6])  # its runs of seeds 4-6 train after it is registered
    r = by_name(plan.verdicts)["bn-higher-late", "active"]
    assert r["post_hoc"] and r["fresh_seeds"] == [4, 5, 6] and r["fresh_verdict"] == "holds"
    assert C.check_exit_code(plan.verdicts) == 0


def test_a_changed_definition_is_a_new_claim_and_the_old_one_is_withdrawn(tmp_path):
    sweep(tmp_path, [HOLDS])
    changed = claim("bn-higher", last=2)
    plan = sweep(tmp_path, [changed])
    assert [(r.name, r.status, r.post_hoc) for r in plan.registry] == [
        ("bn-higher", "withdrawn", False), ("bn-higher", "active", True)]
    assert plan.registry[0].hash != plan.registry[1].hash == R.definition_hash(plan.claims[0])
    # rewording is not redefining
    reworded = {**changed, "claim": "BN ends a little higher"}
    again = sweep(tmp_path, [reworded])
    assert [(r.status, r.claim) for r in again.registry][1] == ("active", "BN ends a little higher")
    assert len(again.registry) == 2


def test_a_sweep_json_from_before_registers_keeps_its_claims_with_unknown_registration(tmp_path):
    sweep(tmp_path, [HOLDS, CONTRADICTED])
    path = tmp_path / "out" / MANIFEST
    doc = json.loads(path.read_text())
    del doc["registry"]
    path.write_text(json.dumps(doc))
    plan = sweep(tmp_path, [HOLDS])
    assert [(r.name, r.status, r.registered_at, r.post_hoc) for r in plan.registry] == [
        ("bn-higher", "active", None, False), ("none-higher", "withdrawn", None, False)]
    assert plan.registry[1].withdrawn_verdict == "contradicted" and plan.registry[1].withdrawn_at


def test_check_exit_code_rules():
    holds = {"verdict": "holds"}
    assert C.check_exit_code([holds]) == 0
    assert C.check_exit_code([holds, {"verdict": "inconclusive", "status": "withdrawn"}]) == 0
    assert C.check_exit_code([{"verdict": "inconclusive", "status": "withdrawn",
                               "withdrawn_verdict": "contradicted"}]) == 1
    assert C.check_exit_code([{"verdict": "holds", "post_hoc": True, "fresh_verdict": None}]) == 1
    assert C.check_exit_code([{"verdict": "holds", "post_hoc": True, "fresh_verdict": "holds"}]) == 0


# --- before training: what the design can decide (reproduction 4) ---------------------------


def test_reproduction_4_the_sweep_warns_before_training_that_a_claim_cannot_hold(tmp_path):
    from typer.testing import CliRunner

    from bnexp.cli import app

    diverged = claim("bn-diverges-less", direction="lower", metric="diverged")
    sooner = claim("bn-sooner", direction="lower", metric="steps_to_threshold", threshold=0.9)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "reg", "base": BASE, "grid": GRID, "seeds": [0, 1, 2],
                                    "expect": [HOLDS, diverged, sooner]}, sort_keys=False))
    result = CliRunner().invoke(app, ["sweep", str(path), "--out", str(tmp_path / "out"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert ("warning: claim 'bn-diverges-less': with 3 seeds per side the smallest p Fisher's exact test can give"
            " is 0.1: this claim cannot hold (at least 4 seeds per side can)") in result.output
    assert "warning: claim 'bn-sooner': with 3 seeds per side the smallest p the exact rank test" in result.output
    # A t-test has no floor, but a failed run turns it into the signed-rank test: 2/2³ = 0.25 at 3 pairs.
    assert ("warning: claim 'bn-higher': should any run diverge or fail to learn, the claim is judged by the exact"
            " signed-rank test, whose smallest p with 3 seeds per side is 0.25: it could then not hold"
            " (at least 6 seeds per side can)") in result.output
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def test_design_warnings_name_the_seeds_that_would_do():
    from bnexp.stats import smallest_p

    entries = C.validate_claims([claim("d", direction="lower", metric="diverged")], GRID, [0, 1, 2, 3],
                                "w", canonical=str)
    assert C.design_warnings(entries, [0, 1, 2, 3]) == []  # 2/70 < 0.05
    assert smallest_p("fisher", 4, 4) == pytest.approx(2 / 70)


def test_a_continuous_claim_at_5_seeds_is_warned_that_a_failed_run_leaves_it_undecidable():
    """ioffe2015_conv_higher_lr's case: every run without BN failed to learn, the signed-rank
    test over 5 pairs gave its floor 2/2⁵ = 0.0625, and the claim stayed inconclusive."""
    from bnexp.stats import smallest_p

    entries = C.validate_claims([claim("h", direction="higher", metric="final_accuracy")], GRID, [0, 1, 2, 3, 4],
                                "w", canonical=str)
    assert smallest_p("wilcoxon", 5, 5) == pytest.approx(2 / 2 ** 5)
    assert smallest_p("wilcoxon", 6, 6) == pytest.approx(2 / 2 ** 6)
    [line] = C.design_warnings(entries, [0, 1, 2, 3, 4])
    assert "smallest p with 5 seeds per side is 0.062: it could then not hold (at least 6 seeds per side can)" in line
    six = C.validate_claims([claim("h", direction="higher", metric="final_accuracy")], GRID, list(range(6)), "w",
                            canonical=str)
    assert C.design_warnings(six, list(range(6))) == []


# --- claims across test sets (reproduction 5) -----------------------------------------------


def test_reproduction_5_sides_on_different_test_sets_are_not_judged():
    entries = C.validate_claims([HOLDS], GRID, [0, 1, 2], "w", canonical=str)

    def run(final, test_set):
        rows = [{"step": 100 * (i + 1), "test_accuracy": final + d, "test_loss": 0.1}
                for i, d in enumerate([-0.002, -0.001, 0.0, 0.001, 0.002])]
        return C.RunRecord("completed", 500, rows, test_set=test_set)

    small, full = "mnist (1,000 test examples)", "mnist (10,000 test examples)"
    groups = {"batch": {s: run(0.96 + 0.001 * s, small) for s in range(3)},
              "none": {s: run(0.95 - 0.001 * s, full) for s in range(3)}}
    [result] = C.judge_entries(entries, lambda point: groups[point["model.norm.kind"]], [0, 1, 2], "w")
    assert result["verdict"] == "untestable" and result["p"] is None
    assert any(n.startswith("not judged: its runs were tested on different test sets (mnist (1,000 test"
                            " examples); mnist (10,000 test examples))") for n in result["notes"])
    groups["none"] = {s: run(0.95 - 0.001 * s, small) for s in range(3)}
    [same] = C.judge_entries(entries, lambda point: groups[point["model.norm.kind"]], [0, 1, 2], "w")
    assert same["verdict"] == "holds"


def test_the_seeds_needed_cell_says_why_there_is_no_number():
    from bnexp.present.claims import seeds_needed

    assert seeds_needed(12, None, "inconclusive") == "12"
    assert seeds_needed(None, "decided", "holds") == seeds_needed(None, None, "contradicted") == "not needed"
    assert seeds_needed(None, "beyond_max", "inconclusive") == "> 1000"
    assert seeds_needed(None, "not_planned", "inconclusive") == "not planned for this test"
    assert seeds_needed(None, "no_difference", "inconclusive") == "none: no difference"
