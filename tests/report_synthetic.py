"""A synthetic study written as real run directories, for the report's tests, bench and screenshot.

A sweep (norm kind × learning rate × seeds, 2 × 5 × 10 = 100 runs by default) whose run
directories are written through bnexp.rundir and whose sweep.json through bnexp.sweep,
as `bnexp sweep` writes them; only the training is skipped. Only the shapes are
realistic (curve lengths, every status, a diverged loss, diagnostics on a few runs, a
URL in a claim's source); the numbers are drawn at random. `bnexp report` reads it as it
reads any study, so its statistics and verdicts are compare's own.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import yaml

from bnexp import rundir
from bnexp.rundir import Summary
from bnexp.sweep import load_sweep, write_manifest

KINDS = ("batch", "none")
EVAL_EVERY = 500
BASE = {"name": "synthetic-study", "data": {"dataset": "mnist-sample"},
        "model": {"hidden": [100, 100, 100], "activation": "sigmoid", "init": {"kind": "normal", "std": 0.1}},
        "train": {"optimizer": "sgd", "batch_size": 60, "eval_every": EVAL_EVERY},
        "diagnostics": {"enabled": True, "units": [0, 1, 2], "ics": True, "landscape": True}}
PAPER = "Ioffe & Szegedy 2015, section 4.1, Figure 1(a), https://arxiv.org/abs/1502.03167"


def expect(rate: float) -> list[dict]:
    """Claims at one learning rate: one holds, one is contradicted, one is inconclusive."""
    bn, plain = {"model.norm.kind": "batch", "train.learning_rate": rate}, {"model.norm.kind": "none", "train.learning_rate": rate}
    return [
        {"name": "bn-reaches-95-sooner", "claim": "BN reaches 95% test accuracy in fewer steps", "source": PAPER,
         "metric": "steps_to_threshold", "threshold": 0.95, "better": bn, "than": plain, "direction": "lower"},
        {"name": "no-bn-ends-higher", "claim": "Without BN the network ends at a higher test accuracy",
         "source": "a claim made up to be contradicted", "metric": "final_accuracy", "better": plain, "than": bn,
         "direction": "higher"},
        {"name": "bn-smaller-generalization-gap", "claim": "BN regularizes: a smaller train−test gap",
         "source": "Ioffe & Szegedy 2015, section 3.4", "metric": "generalization_gap", "better": bn, "than": plain,
         "direction": "lower"},
    ]


def write_study(root: Path, learning_rates=(0.1, 0.5, 1.0, 3.0, 10.0), seeds: int = 10, points: int = 100,
                diagnosed_seeds: int = 1, seed: int = 0) -> Path:
    """Write the sweep under `root`; returns its sweep directory."""
    root.mkdir(parents=True, exist_ok=True)
    spec = {"name": "synthetic-study", "base": BASE, "set": {"train.steps": (points - 1) * EVAL_EVERY or 1},
            "grid": {"model.norm.kind": list(KINDS), "train.learning_rate": list(learning_rates)},
            "seeds": list(range(1, seeds + 1)), "expect": expect(learning_rates[0])}
    sweep_file = root / "synthetic-study.yaml"
    sweep_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    sweep = load_sweep(sweep_file, root / "synthetic-study")
    rng = np.random.default_rng(seed)
    # The second group's second to fourth seeds: one run of each unfinished status, so every status shows.
    unfinished = {seeds + 1: "running", seeds + 2: "interrupted", seeds + 3: "failed"}
    for i, point in enumerate(sweep.points):
        kind, rate, s = point.overrides["model.norm.kind"], point.overrides["train.learning_rate"], point.overrides["seed"]
        status = unfinished.get(i, "completed" if kind == "batch" or rate <= 1.0 else "diverged")
        point.status = status
        write_run(rundir.RunDir(sweep.out / point.run_dir), point.config, rng, kind, rate, status, points,
                  diagnosed=s <= diagnosed_seeds)
    write_manifest(sweep)
    return sweep.out


def write_run(run: rundir.RunDir, config, rng, kind: str, rate: float, status: str, points: int, diagnosed: bool) -> None:
    run.path.mkdir(parents=True)
    run.write_config(config)
    rows = [] if status == "failed" else metrics_rows(rng, kind, rate, status, points)
    run.rewrite_metrics(rows)
    accuracy = [r["test_accuracy"] for r in rows]
    run.write_summary(Summary(
        status=status, name=config.name, seed=config.seed,
        test_accuracy=accuracy[-1] if rows else None,
        test_loss=rows[-1]["test_loss"] if rows and math.isfinite(rows[-1]["test_loss"]) else None,
        best_test_accuracy=max(accuracy) if rows else None, steps=rows[-1]["step"] if rows else None,
        total_steps=config.train.steps, seconds_per_epoch=float(2.1 + rng.normal(0, 0.1) + (0.6 if kind == "batch" else 0)),
        data={"dataset": "mnist-sample", "train_examples": 5000, "test_examples": 1000},
        git_commit="7276ea0c0ffee", started_at="2026-11-02T10:15:00+00:00"))
    if diagnosed and rows:
        tables = {k: v for k, v in diagnostics_rows(rng, kind, [r["step"] for r in rows]).items() if k in rundir.DIAGNOSTICS_TABLES}
        run.start_diagnostics(list(tables), None)
        run.append_diagnostics(tables)


def metrics_rows(rng, kind: str, rate: float, status: str, points: int) -> list[dict]:
    """Test curves that rise to a final accuracy; a diverged run's loss explodes, then stops."""
    final = (0.982 if kind == "batch" else 0.965) - 0.002 * abs(math.log10(rate)) + rng.normal(0, 0.0015)
    speed = 2500 if kind == "batch" else 9000
    shown = {"running": points // 2, "diverged": points // 5}.get(status, points)
    rows = []
    for i in range(shown):
        step = i * EVAL_EVERY
        progress = 1 - math.exp(-step / (speed / max(rate, 0.1) ** 0.5))
        accuracy = float(0.1 + (final - 0.1) * progress + rng.normal(0, 0.002))
        loss = float(2.3 * math.exp(-4 * progress) + (1 - final) * 2 + abs(rng.normal(0, 0.01)))
        rows.append(row(step, accuracy, loss, rate))
    if status == "diverged":
        last = rows[-1]["step"]
        rows += [row(last + (k + 1) * EVAL_EVERY, 0.098, loss, rate) for k, loss in enumerate((4.0e3, 5.6e9, math.inf))]
    return rows


def row(step: int, accuracy: float, loss: float, rate: float) -> dict:
    return {"step": step, "epoch": step / 83, "train_loss": loss, "train_accuracy": accuracy, "test_loss": loss,
            "test_accuracy": accuracy, "learning_rate": rate, "elapsed_s": step / 400}


def diagnostics_rows(rng, kind: str, steps: list[int]) -> dict[str, list[dict]]:
    """Rows of every table the report draws, in each table's columns."""
    spread = 1.0 if kind == "batch" else 3.0
    tables = {"activations": [], "bn": [], "gradients": [], "ics": [], "landscape": []}
    for t, step in enumerate(steps):
        drift = 0 if kind == "batch" else 2 * (1 - math.exp(-t / 20))
        for layer in (0, 1, 2):
            for unit in (0, 1, 2):
                mid = drift * (unit - 1) + rng.normal(0, 0.05)
                tables["activations"].append({"step": step, "layer": layer, "unit": unit, "p15": mid - spread,
                                              "p50": mid, "p85": mid + spread * 1.1})
            if kind == "batch":
                tables["bn"].append({"step": step, "layer": layer, "mean_gap": abs(rng.normal(0.05, 0.01)) / (1 + t / 10),
                                     "variance_gap": abs(rng.normal(0.1, 0.02)) / (1 + t / 10)})
            tables["gradients"].append({"step": step, "variable": f"dense_{layer}/kernel", "grad_norm": abs(rng.normal(1, 0.1))})
            tables["ics"].append({"step": step, "layer": layer,
                                  "ics_l2": abs(rng.normal(layer * 0.3, 0.05)) * (1.2 if kind == "batch" else 1),
                                  "ics_cosine": min(1.0, 0.9 + rng.normal(0, 0.02))})
        loss_min = 2.3 * math.exp(-t / 15)
        tables["landscape"].append({"step": step, "loss_min": loss_min, "loss_max": loss_min * (1.3 if kind == "batch" else 3),
                                    "grad_change_max": abs(rng.normal(1 if kind == "batch" else 4, 0.2)),
                                    "beta_smoothness": abs(rng.normal(5 if kind == "batch" else 20, 1))})
    return tables


def synthetic_report(root: Path, **study):
    """`bnexp report`'s ReportData of the study written under `root` (`study`: write_study's options)."""
    from bnexp.report_data import report_data

    return report_data([write_study(root, **study)], threshold=0.95, last=5)
