"""A synthetic report dict in `bnexp.report`'s contract, for the report's tests, bench and screenshot.

Only the shapes are realistic (curve lengths, statuses, a diverged loss, diagnostics
on a few runs, a URL in a claim's source). The statistics are drawn at random: this
is input for a renderer, not a result.
"""

from __future__ import annotations

import math

import numpy as np

KINDS = ("batch", "none")


def synthetic_report(learning_rates=(0.1, 0.5, 1.0, 3.0, 10.0), seeds: int = 10, points: int = 100,
                     diagnosed_seeds: int = 1, seed: int = 0) -> dict:
    """Runs over norm kind × learning rate × seeds (2 × 5 × 10 = 100 by default)."""
    rng = np.random.default_rng(seed)
    runs, groups, kinds, rates, seed_values = [], [], [], [], []
    for kind in KINDS:
        for lr in learning_rates:
            label = f"kind={kind}, lr={lr:g}"
            members = []
            for s in range(1, seeds + 1):
                members.append(len(runs))
                runs.append(_run(rng, kind, lr, s, points, diagnosed=s <= diagnosed_seeds))
                runs[-1]["label"] = f"{label}, seed={s}"
                runs[-1]["group"] = label
                kinds.append(kind)
                rates.append(lr)
                seed_values.append(s)
            finals = [runs[i]["final_accuracy"] for i in members if runs[i]["final_accuracy"] is not None]
            groups.append({"label": label, "runs": members, "n": len(finals),
                           "mean": float(np.mean(finals)) if finals else None,
                           "std": float(np.std(finals, ddof=1)) if len(finals) > 1 else None,
                           "duplicates": []})
    _set_statuses(runs)
    return {
        "header": {"inputs": ["runs/synthetic-study"], "created": "2026-11-02T10:15:00+00:00",
                   "bnexp_version": "0.1.0", "git_commit": "7276ea0c0ffee"},
        "config_diff": [{"key": "model.norm.kind", "values": kinds},
                        {"key": "optimizer.learning_rate", "values": rates},
                        {"key": "seed", "values": seed_values}],
        "runs": runs,
        "groups": groups,
        "pivots": [_pivot(groups, learning_rates)],
        "comparisons": [_comparison(rng, groups[0], g, first=k == 0) for k, g in enumerate(groups[1:])],
        "not_comparable": ["runs/other/seed=1 is on mnist-sample (1,000 test images), the others on mnist (10,000)"],
        "claims": _claims(rng),
    }


def _run(rng, kind: str, lr: float, s: int, points: int, diagnosed: bool) -> dict:
    steps = [i * 500 for i in range(points)]
    stable = kind == "batch" or lr <= 1.0
    final = (0.982 if kind == "batch" else 0.965) - 0.002 * abs(math.log10(lr)) + rng.normal(0, 0.0015)
    speed = 2500 if kind == "batch" else 9000
    accuracy, loss = [], []
    for step in steps:
        progress = 1 - math.exp(-step / (speed / max(lr, 0.1) ** 0.5))
        accuracy.append(float(0.1 + (final - 0.1) * progress + rng.normal(0, 0.002)))
        loss.append(float(2.3 * math.exp(-4 * progress) + (1 - final) * 2 + abs(rng.normal(0, 0.01))))
    if not stable:  # the loss explodes, then the run is stopped as diverged
        cut = points // 5
        accuracy = accuracy[:cut] + [0.098] * 3
        loss = loss[:cut] + [4.0e3, 5.6e9, float("inf")]
        steps = steps[:cut + 3]
    run = {
        "path": f"runs/synthetic-study/kind={kind},lr={lr:g}/seed={s}",
        "status": "completed" if stable else "diverged",
        "final_accuracy": float(np.mean(accuracy[-5:])),
        "best_accuracy": float(max(accuracy)),
        "steps": steps[-1],
        "seconds_per_epoch": float(2.1 + rng.normal(0, 0.1) + (0.6 if kind == "batch" else 0)),
        "curve": {"step": steps, "test_accuracy": accuracy, "test_loss": loss},
    }
    if diagnosed:
        run["diagnostics"] = _diagnostics(rng, kind, steps)
    return run


def _set_statuses(runs: list[dict]) -> None:
    """One run of each unfinished kind, so that every status colour is shown."""
    running, interrupted, failed = runs[1], runs[2], runs[3]
    running["status"] = "running"
    for key in ("step", "test_accuracy", "test_loss"):
        running["curve"][key] = running["curve"][key][: len(running["curve"][key]) // 2]
    running["steps"] = running["curve"]["step"][-1]
    interrupted["status"] = "interrupted"
    failed.update(status="failed", final_accuracy=None, best_accuracy=None, steps=None, seconds_per_epoch=None,
                  curve={"step": [], "test_accuracy": [], "test_loss": []})


def _diagnostics(rng, kind: str, steps: list[int]) -> dict:
    spread = 1.0 if kind == "batch" else 3.0
    activations, bn, ics, landscape = [], [], [], []
    for t, step in enumerate(steps):
        drift = 0 if kind == "batch" else 2 * (1 - math.exp(-t / 20))
        for layer in (1, 2, 3):
            for unit in (0, 1, 2):
                mid = drift * (unit - 1) + rng.normal(0, 0.05)
                activations.append({"step": step, "layer": layer, "unit": unit, "p15": mid - spread,
                                    "p50": mid, "p85": mid + spread * 1.1})
            if kind == "batch":
                bn.append({"step": step, "layer": layer, "mean_gap": abs(rng.normal(0.05, 0.01)) / (1 + t / 10),
                           "variance_gap": abs(rng.normal(0.1, 0.02)) / (1 + t / 10)})
            ics.append({"step": step, "layer": layer, "ics_l2": abs(rng.normal(layer * 0.3, 0.05)) * (1.2 if kind == "batch" else 1),
                        "ics_cosine": min(1.0, 0.9 + rng.normal(0, 0.02))})
        loss_min = 2.3 * math.exp(-t / 15)
        landscape.append({"step": step, "loss_min": loss_min, "loss_max": loss_min * (1.3 if kind == "batch" else 3),
                          "grad_change_max": abs(rng.normal(1 if kind == "batch" else 4, 0.2)),
                          "beta_smoothness": abs(rng.normal(5 if kind == "batch" else 20, 1))})
    return {"activations": activations, "bn": bn, "ics": ics, "landscape": landscape}


def _pivot(groups: list[dict], learning_rates) -> dict:
    cells = [[{"mean": g["mean"], "std": g["std"], "n": g["n"]}
              for g in groups[k * len(learning_rates):(k + 1) * len(learning_rates)]] for k in range(len(KINDS))]
    return {"metric": "final_accuracy", "rows_key": "model.norm.kind", "columns_key": "optimizer.learning_rate",
            "rows": list(KINDS), "columns": [f"{lr:g}" for lr in learning_rates], "cells": cells}


def _comparison(rng, a: dict, b: dict, first: bool) -> dict:
    few = b["n"] < 3
    difference = (b["mean"] or 0) - (a["mean"] or 0)
    p = None if few else float(rng.uniform(1e-6, 0.3))
    return {"a": a["label"], "b": b["label"], "test": "none" if few else "paired",
            "p": p, "p_adjusted": None if few else min(1.0, p * 3),
            "difference": difference, "ci_low": None if few else difference - 0.003,
            "ci_high": None if few else difference + 0.003, "effect_size": None if few else difference / 0.0015,
            "n_a": a["n"], "n_b": b["n"],
            "verdict": "too_few_seeds" if few else ("distinguishable" if p * 3 < 0.05 else "not_distinguishable"),
            "sentence": f"{b['label']} against {a['label']}: random synthetic numbers",
            "excluded": [{"path": "runs/synthetic-study/copy/seed=1", "why": "duplicate of seed 1"}] if first else []}


def _claims(rng) -> list[dict]:
    specs = [
        ("bn-reaches-95-sooner", "BN reaches 95% test accuracy in fewer steps",
         "Ioffe & Szegedy 2015, section 4.1, Figure 1(a), https://arxiv.org/abs/1502.03167",
         "steps_to_threshold", "lower", "holds", -8500.0),
        ("bn-ends-higher", "BN ends at a higher test accuracy", "Ioffe & Szegedy 2015, Figure 1(a)",
         "final_accuracy", "higher", "holds", 0.0171),
        ("bn-reduces-ics", "BN reduces internal covariate shift", "Santurkar et al. 2018, section 2.2",
         "ics_l2", "lower", "contradicted", 0.21),
        ("bn-regularizes", "BN gives a smaller generalization gap", "Ioffe & Szegedy 2015, section 3.4",
         "generalization_gap", "lower", "inconclusive", -0.0012),
    ]
    claims = []
    for name, claim, source, metric, direction, verdict, difference in specs:
        p = float(rng.uniform(1e-5, 0.01)) if verdict != "inconclusive" else 0.31
        claims.append({"name": name, "claim": claim, "source": source, "metric": metric, "direction": direction,
                       "verdict": verdict, "difference": difference, "ci_low": difference - abs(difference) / 3,
                       "ci_high": difference + abs(difference) / 3 if verdict != "inconclusive" else 0.0021,
                       "p": p, "p_adjusted": min(1.0, p * 4), "n_better": 5, "n_than": 5,
                       "seeds_needed": 23 if verdict == "inconclusive" else None, "family": "ioffe2015.yaml"})
    return claims
