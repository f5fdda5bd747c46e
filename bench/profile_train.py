"""Where a `bnexp train` epoch goes beyond the graph-looped floor (issue 15's profile).

Run from the repository root (full MNIST needed):

    BNEXP_THREADS=2 PYTHONPATH=. .venv/bin/python bench/profile_train.py --data-dir ../shared/data/mnist

One process, alternating per repetition:
  floor_graph  bench/speed.py's graph-looped floor, its epochs timed;
  bnexp        the real training loop (bnexp.training.train_run on bench/paper_mlp.yaml, in a
               temporary run directory), with timers wrapped around its parts: the
               compiled calls, the sync/progress reads, test evaluation, metrics row,
               TensorBoard, checkpoint; what is left of an epoch is the loop's own Python;
  graph-only   bnexp's Trainer alone, an epoch as ONE run_steps call (no boundaries),
               as PROGRESS_EVERY=200 splits it (5 calls), and as 5 calls with the
               loop's device reads after each: the cost of the compiled step itself
               against the floor's, and of the wake-ups.
Every figure is the median over the epochs after the first (which compiles) and then
over the repetitions, in ms per epoch. Also times start-up: `python -m bnexp train`
from process start to the first training step, broken into imports, data, model
build, first call (trace + XLA compile).
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parent.parent
# As bench/speed.py's bnexp arm: the floor evaluates nothing, so neither does a second (train-set) evaluation here.
PROFILE_OVERRIDES = ["train.eval_train_examples=0"]


class Timers:
    """Per-name lists of call durations; wrap(obj, 'method', 'label') times every call."""

    def __init__(self):
        self.calls = collections.defaultdict(list)

    def wrap(self, owner, method: str, label: str) -> None:
        original = getattr(owner, method)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.calls[label].append(time.perf_counter() - t0)

        setattr(owner, method, timed)

    def per_epoch(self, epochs: int) -> dict[str, float]:
        """Median over epochs 2..N of each label's summed time in ms (calls split evenly by epoch)."""
        out = {}
        for label, times in self.calls.items():
            per = len(times) // epochs
            sums = [sum(times[e * per:(e + 1) * per]) for e in range(1, epochs)]
            out[label] = 1000 * statistics.median(sums) if sums and per else 0.0
        return out


def floor_graph_epochs(data_dir: str, epochs: int) -> list[float]:
    import speed

    return speed.run_floor(data_dir, epochs, speed.GRAPH_UNROLL, graph_loop=True)["epoch_seconds"]


def bnexp_profiled(data_dir: str, epochs: int) -> dict:
    """The real loop, with its parts timed. Returns epoch times and per-part ms/epoch."""
    from bnexp import config as config_module, data as data_module, evaluate, rundir, training
    from bnexp.training import loop

    config = config_module.load_config(REPO / "bench/paper_mlp.yaml", [f"train.epochs={epochs}", *PROFILE_OVERRIDES])
    data = data_module.load("mnist", data_dir)
    timers = Timers()
    # Class attributes, restored afterwards: the wrappers see every instance's calls.
    parts = [
        (training.Trainer, "run_steps", "compiled calls (run_steps)"),
        (loop.Loop, "_report_progress", "progress read (totals.numpy)"),
        (loop.Loop, "_evaluate", "_evaluate total"),
        (evaluate.Evaluator, "evaluate", "  test evaluation (10k)"),
        (loop.Metrics, "add", "  metrics row, TensorBoard event, log line"),
        (rundir.RunDir, "append_metrics", "    metrics.csv row"),
        (rundir.RunDir, "log", "    log.txt line"),
        (loop.Loop, "checkpoint", "checkpoint (npz + fsync)"),
    ]
    saved = {(cls, m): getattr(cls, m) for cls, m, _ in parts}
    for cls, method, label in parts:
        timers.wrap(cls, method, label)
    try:
        with tempfile.TemporaryDirectory(prefix="bnexp-profile-") as tmp:
            run = rundir.create(Path(tmp), config.name, Path(tmp) / "run")
            run.write_config(config)
            summary = training.train_run(config, run, data, training.Reporter(), training.StopRequest()).to_json()
            run.unlock()
    finally:
        for (cls, m), original in saved.items():
            setattr(cls, m, original)
    epoch_seconds = summary["epoch_seconds"]
    parts = timers.per_epoch(epochs)
    epoch_ms = 1000 * statistics.median(epoch_seconds[1:])
    measured = sum(v for k, v in parts.items() if not k.startswith("  "))
    parts["loop's own Python (rest)"] = epoch_ms - measured
    return {"epoch_seconds": epoch_seconds, "epoch_ms": epoch_ms, "parts_ms": parts}


def graph_only(data_dir: str, epochs: int) -> dict:
    """bnexp's Trainer without the loop: one call per epoch, 5 calls, 5 calls + the loop's reads."""
    from bnexp import config as config_module, data as data_module, training as train

    config = config_module.load_config(REPO / "bench/paper_mlp.yaml", [f"train.epochs={epochs}", *PROFILE_OVERRIDES])
    data = data_module.load("mnist", data_dir)
    plan = train.Plan.of(config, len(data.x_train))
    trainer = train.Trainer(config, data, plan)
    steps, batch = plan.steps_per_epoch, plan.batch_size
    every = train.PROGRESS_EVERY

    def one_call(idx):
        trainer.run_steps(idx)
        trainer.first_bad_step.numpy()

    def split(idx):
        for start in range(0, steps, every):
            trainer.run_steps(idx[start:start + every])
        trainer.first_bad_step.numpy()

    def split_with_reads(idx):
        for start in range(0, steps, every):
            trainer.run_steps(idx[start:start + every])
            trainer.first_bad_step.numpy()
            trainer.totals.numpy()

    results = {}
    for name, fn in [("1 call/epoch", one_call), ("5 calls/epoch", split), ("5 calls + reads", split_with_reads)]:
        times = []
        for e in range(epochs):
            t0 = time.perf_counter()
            order = train.epoch_order(config.seed, e, len(data.x_train))
            fn(order[: steps * batch].reshape(steps, batch))
            times.append(time.perf_counter() - t0)
        results[name] = 1000 * statistics.median(times[1:])
    return results


STARTUP_PROBE = r"""
import time, sys
t0 = float(sys.argv[1]); marks = {"interpreter up": time.time() - t0}
import bnexp.cli, bnexp.config, bnexp.data, bnexp.training
marks["import bnexp (no TF)"] = time.time() - t0
from bnexp.backend import tensorflow; tensorflow()
marks["import TensorFlow"] = time.time() - t0
import bnexp.model, bnexp.evaluate
marks["import bnexp.model/evaluate (Keras layers)"] = time.time() - t0
from bnexp import config as c, data as d, training as tr
from bnexp.rundir.provenance import environment
cfg = c.load_config(sys.argv[3] + "/bench/paper_mlp.yaml"); data = d.load("mnist", sys.argv[2])
marks["config + data load"] = time.time() - t0
env = environment()
marks["environment() (git, versions)"] = time.time() - t0
plan = tr.Plan.of(cfg, len(data.x_train)); trainer = tr.Trainer(cfg, data, plan)
marks["Trainer: model, optimizer, tf.constant(data)"] = time.time() - t0
import numpy as np
idx = tr.epoch_order(0, 0, len(data.x_train))[:200 * 60].reshape(200, 60)
trainer.run_steps(idx); trainer.first_bad_step.numpy()
marks["first 200-step call (trace + XLA compile + run)"] = time.time() - t0
trainer.run_steps(idx); trainer.first_bad_step.numpy()
marks["second 200-step call (steady)"] = time.time() - t0
trainer.evaluator.evaluate(data.x_test, data.y_test)
marks["first evaluation (compile + run)"] = time.time() - t0
print(__import__("json").dumps(marks))
"""


def startup(data_dir: str) -> dict:
    """Cumulative seconds from process start to each stage, as `bnexp train` passes them."""
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", STARTUP_PROBE, str(t0), data_dir, str(REPO)],
                         capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", help="write the raw results here")
    p.add_argument("--only", choices=["profile", "startup"], help="run one part only")
    args = p.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    report: dict = {"threads": os.environ.get("BNEXP_THREADS"), "reps": []}
    if args.only != "startup":
        for rep in range(args.reps):
            floor = floor_graph_epochs(data_dir, args.epochs)
            profiled = bnexp_profiled(data_dir, args.epochs)
            graph = graph_only(data_dir, args.epochs)
            report["reps"].append({"floor_graph_ms": 1000 * statistics.median(floor[1:]),
                                   "floor_graph_epochs": floor, "bnexp": profiled, "graph_only_ms": graph})
            print(json.dumps(report["reps"][-1], indent=1), flush=True)
        print_profile(report["reps"])
    if args.only != "profile":
        report["startup"] = [startup(data_dir) for _ in range(args.reps)]
        print_startup(report["startup"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


def print_profile(reps: list[dict]) -> None:
    med = lambda xs: statistics.median(xs)  # noqa: E731
    floor = med([r["floor_graph_ms"] for r in reps])
    bnexp = med([r["bnexp"]["epoch_ms"] for r in reps])
    print(f"\nms per epoch, median of epochs 2..N, then of {len(reps)} reps (min-max over reps)")
    print(f"{'floor_graph epoch':48s} {floor:8.1f}")
    print(f"{'bnexp epoch (full loop)':48s} {bnexp:8.1f}   ratio {bnexp / floor:.3f}")
    for label in reps[0]["bnexp"]["parts_ms"]:
        values = [r["bnexp"]["parts_ms"][label] for r in reps]
        print(f"  {label:46s} {med(values):8.1f}   ({min(values):.1f}-{max(values):.1f})")
    for label in reps[0]["graph_only_ms"]:
        values = [r["graph_only_ms"][label] for r in reps]
        print(f"graph-only {label:37s} {med(values):8.1f}   ratio to floor {med(values) / floor:.3f}")


def print_startup(runs: list[dict]) -> None:
    print("\nstart-up, seconds from process start (cumulative; median of runs), and each stage alone")
    previous = 0.0
    for label in runs[0]:
        value = statistics.median(r[label] for r in runs)
        print(f"  {label:52s} {value:6.2f}  (+{value - previous:.2f})")
        previous = value


if __name__ == "__main__":
    main()
