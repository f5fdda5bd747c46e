"""Sweep benchmark for issue 15: `bnexp sweep` against one `bnexp train` process per point.

Run from the repository root (only the bundled mnist-sample is used):

    PYTHONPATH=. .venv/bin/python bench/sweep_speed.py --sweeps small --reps 3
    PYTHONPATH=. .venv/bin/python bench/sweep_speed.py --sweeps large --reps 1 --arms baseline
    PYTHONPATH=. .venv/bin/python bench/speed.py --sweeps small     # the same, after the single-run arms

The sweeps (issue 15): configs/quickstart.yaml, model.norm.kind [batch, none] ×
train.learning_rate [0.1, 0.3, 1.0, 3.0]; `small` is one seed and 5 epochs (8 points),
`large` is seeds 0-4 and 20 epochs (40 points).

Arms:
  baseline  today's executor's design, written out by hand: one `python -m bnexp train`
            process per point (--set overrides on the base config), WORKERS at a time, each
            with BNEXP_THREADS=1; wall time from the first start to the last exit.
  sweep     `python -m bnexp sweep SWEEP_FILE --workers WORKERS` with BNEXP_THREADS=1 (its
            points on warm workers, programs reused across points), wall time of the whole
            process.
Repetitions alternate the arms. After each sweep run, every point's metrics.csv must
equal the same point's baseline metrics.csv with the elapsed_s column dropped (issue 15's
identity rule); a mismatch is reported and fails the target. Both arms train with one
thread per point, so the identity applies on any machine.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BASE = REPO / "configs" / "quickstart.yaml"
GRID = {"model.norm.kind": ["batch", "none"], "train.learning_rate": [0.1, 0.3, 1.0, 3.0]}
SWEEPS = {
    "small": {"seeds": [0], "epochs": 5, "target": 0.4},
    "large": {"seeds": [0, 1, 2, 3, 4], "epochs": 20, "target": 0.5},
}
WORKERS = 2
THREADS = 1  # per point, in both arms
IGNORED_COLUMNS = {"elapsed_s"}  # wall-clock, so never equal


def points(name: str) -> list[dict]:
    """Each point's overrides, as sweep.json writes them: grid values in file order, then the seed."""
    combos = itertools.product(*GRID.values())
    return [dict(zip(GRID, combo)) | {"seed": seed} for combo in combos for seed in SWEEPS[name]["seeds"]]


def key(overrides: dict) -> str:
    return json.dumps(overrides, sort_keys=True)


def bnexp_env(threads: int | None = None) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if threads is not None:
        env["BNEXP_THREADS"] = str(threads)
    return env


def train_command(name: str, overrides: dict, run_dir: Path) -> list[str]:
    sets = {**overrides, "train.epochs": SWEEPS[name]["epochs"]}
    return [sys.executable, "-m", "bnexp", "train", str(BASE), "--run-dir", str(run_dir), "--quiet",
            *[arg for k, v in sets.items() for arg in ("--set", f"{k}={json.dumps(v)}")]]


def run_baseline(name: str, out: Path) -> dict:
    """One `bnexp train` per point, WORKERS at a time; a diverged point (exit 1) is a result too."""
    todo = [(key(o), train_command(name, o, out / f"point{i:03d}"), out / f"point{i:03d}")
            for i, o in enumerate(points(name))]
    running, runs, failures = [], {}, []
    t0 = time.perf_counter()
    try:
        while todo or running:
            while todo and len(running) < WORKERS:
                k, cmd, run_dir = todo.pop(0)
                process = subprocess.Popen(cmd, cwd=REPO, env=bnexp_env(THREADS),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                running.append((k, run_dir, process))
                runs[k] = run_dir
            for entry in list(running):
                k, run_dir, process = entry
                if process.poll() is not None:
                    running.remove(entry)
                    if read_status(run_dir) not in ("completed", "diverged"):
                        failures.append(f"{k}: exit {process.returncode}, {process.stderr.read()[-500:]}")
            time.sleep(0.05)
    finally:  # interrupted: leave no point training on its own
        for _, _, process in running:
            process.kill()
            process.wait()
    return {"wall_seconds": time.perf_counter() - t0, "runs": runs, "failures": failures}


def run_sweep_arm(name: str, out: Path) -> dict:
    """`bnexp sweep` over the same points; its sweep.json maps each point to its run directory."""
    spec = out.parent / f"{out.name}.yaml"
    spec.write_text(yaml.safe_dump({
        "name": f"bench-{name}", "base": str(BASE), "set": {"train.epochs": SWEEPS[name]["epochs"]},
        "grid": GRID, "seeds": SWEEPS[name]["seeds"]}, sort_keys=False))
    cmd = [sys.executable, "-m", "bnexp", "sweep", str(spec), "--out", str(out), "--workers", str(WORKERS), "--quiet"]
    t0 = time.perf_counter()
    process = subprocess.run(cmd, cwd=REPO, env=bnexp_env(THREADS), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    manifest = json.loads((out / "sweep.json").read_text()) if (out / "sweep.json").exists() else {"points": []}
    runs = {key(p["overrides"]): out / p["run_dir"] for p in manifest["points"]}
    failures = [f"{p['run_dir']}: {p['status']} {p.get('message') or ''}" for p in manifest["points"]
                if p["status"] not in ("completed", "diverged")]
    if process.returncode not in (0,) and not failures:
        failures.append(f"bnexp sweep exited {process.returncode}: {process.stderr[-500:]}")
    return {"wall_seconds": wall, "runs": runs, "failures": failures}


def read_status(run_dir: Path) -> str | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()).get("status") if path.exists() else None


def metrics_rows(run_dir: Path) -> list[list[str]]:
    """metrics.csv as text cells, without the wall-clock column: what must be identical."""
    rows = list(csv.reader(io.StringIO((run_dir / "metrics.csv").read_text())))
    keep = [i for i, column in enumerate(rows[0]) if column not in IGNORED_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


def mismatches(baseline: dict, swept: dict) -> list[str]:
    """The points whose metrics differ between the arms (or that one arm lacks)."""
    bad = []
    for k, run_dir in baseline.items():
        other = swept.get(k)
        if other is None or not (other / "metrics.csv").exists():
            bad.append(f"{k}: no sweep run")
        elif metrics_rows(run_dir) != metrics_rows(other):
            bad.append(f"{k}: metrics.csv differs")
        elif ending(run_dir) != ending(other):  # a run that diverges before its first row has only this
            bad.append(f"{k}: status or message differs: {ending(run_dir)} vs {ending(other)}")
    return bad


def ending(run_dir: Path) -> tuple:
    """How a run ended: its status and message (a divergence's names the step and the last finite loss)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    return summary.get("status"), summary.get("message")


def bench_sweep(name: str, reps: int, arms: list[str], log=print) -> dict:
    """Alternate the arms `reps` times; check every sweep run against the first baseline run."""
    walls = {arm: [] for arm in arms}
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix=f"bench-sweep-{name}-") as tmp:
        reference = None
        for rep in range(reps):
            for arm in arms:
                out = Path(tmp, f"{arm}{rep}")
                result = (run_baseline if arm == "baseline" else run_sweep_arm)(name, out)
                walls[arm].append(result["wall_seconds"])
                problems += [f"{arm} rep {rep + 1}: {f}" for f in result["failures"]]
                if arm == "baseline" and reference is None:
                    reference = result["runs"]
                if arm == "sweep" and reference is not None:
                    problems += [f"sweep rep {rep + 1}: {m}" for m in mismatches(reference, result["runs"])]
                log(f"sweep {name} rep {rep + 1}/{reps}  {arm}: {result['wall_seconds']:.1f} s"
                    + (f", {len(result['failures'])} failed" if result["failures"] else ""))
    medians = {arm: statistics.median(w) for arm, w in walls.items() if w}
    ratio = medians["sweep"] / medians["baseline"] if {"sweep", "baseline"} <= medians.keys() else None
    target = SWEEPS[name]["target"]
    return {
        "sweep": name, "points": len(points(name)), "epochs": SWEEPS[name]["epochs"], "workers": WORKERS,
        "wall_seconds": walls, "median_wall_seconds": medians, "ratio": ratio, "limit": target,
        "identity_checked": reference is not None and "sweep" in arms,
        "problems": problems, "pass": ratio is not None and ratio <= target and not problems,
    }


def print_results(results: list[dict]) -> None:
    for r in results:
        med = r["median_wall_seconds"]
        line = ", ".join(f"{arm} {s:.1f} s" for arm, s in med.items())
        ratio = "" if r["ratio"] is None else f"; sweep/baseline {r['ratio']:.2f} (limit {r['limit']})"
        identity = "metrics identical" if r["identity_checked"] and not r["problems"] else (
            "identity not checked" if not r["identity_checked"] else f"{len(r['problems'])} problem(s)")
        print(f"sweep {r['sweep']} ({r['points']} points × {r['epochs']} epochs, {r['workers']} workers), "
              f"median wall: {line}{ratio}; {identity}")
        for problem in r["problems"]:
            print(f"  {problem}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sweeps", default="small", help="comma-separated, from: " + ", ".join(SWEEPS))
    p.add_argument("--arms", default="baseline,sweep", help="comma-separated, from: baseline, sweep")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    names = [n for n in args.sweeps.split(",") if n]
    arms = [a for a in args.arms.split(",") if a]
    if set(names) - SWEEPS.keys() or set(arms) - {"baseline", "sweep"}:
        sys.exit(f"--sweeps from {', '.join(SWEEPS)}; --arms from baseline, sweep")
    results = [bench_sweep(name, args.reps, arms) for name in names]
    print_results(results)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
