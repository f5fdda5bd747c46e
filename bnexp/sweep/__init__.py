"""Sweeps: one base config, a grid of overrides and several seeds; one run per point.

A sweep directory holds sweep.json (each point's overrides, run directory and status)
and one run directory per point, nested as `<grid values>/seed=<seed>`. The sweep
directory itself is no run, so `bnexp compare SWEEP_DIR` finds every point's run and
groups the seeds of each grid point.

Points train on warm workers (bnexp.sweep.worker): long-lived processes, one per slot,
that import TensorFlow once, keep the datasets loaded and train point after point exactly
as `bnexp train` would, each into its own run directory. A worker is a process apart from
the sweep, so a point that crashes it (kill -9, a segfault, out of memory) takes no other
point down: that point fails and a fresh worker takes the next one. With Ray, each
worker is held by a long-lived actor (WarmActor). Every point of a sweep, reruns
included, trains with one thread count, recorded in sweep.json. Rerunning a sweep
skips the points that have a result, resumes the rest from their checkpoints, and starts
again those that stopped before their first checkpoint.

A sweep file's `expect:` claims (bnexp.claims) are checked with the points, before
anything trains, and judged from the run directories once the points have run.
sweep.json keeps the validated claims, the grid and the seeds, so `bnexp compare
SWEEP_DIR` judges them again from the directory alone (`claims_for`). A sweep
directory's seeds only grow: rerunning it with other seeds (`--seeds`) adds their
points, and the claims are judged over every seed it holds.

One module a job:

- `spec`: the sweep file's schema, its grid crossed with the seeds, each point's name;
- `manifest`: sweep.json, written and read back;
- `load`: `load_sweep`, a sweep file read against its directory;
- `judging`: the directory's claims, registered and judged from its runs;
- `run`: the driving loop (`run_sweep`) and `make_executor` (not imported here, as the
  executors below are not: reading a sweep directory, as compare and report do, loads no
  executor and nothing of training);
- `local`: warm workers of this machine (`Worker`, `LocalExecutor`);
- `raycluster`: warm workers on Ray actors (`RayExecutor`) and connecting to a cluster;
- `worker`: the worker process itself, `python -m bnexp.sweep.worker` (not imported
  here: it imports bnexp.training, and a module run with -m must not be imported first).

Like train, the sweep never prints: it tells a SweepReporter (bnexp.present.sweeping
draws one). No TensorFlow here either; only the workers import it.
"""

from bnexp.sweep.judging import claims_for, judge_sweep_dir, run_record
from bnexp.sweep.load import load_sweep
from bnexp.sweep.manifest import MANIFEST, Recorded, read_recorded, write_manifest
from bnexp.sweep.spec import Point, Sweep, fit, flow, grid_values, run_dirs_at, short_keys, value_slugs

__all__ = [
    "MANIFEST", "Point", "Recorded", "Sweep", "claims_for", "fit", "flow", "grid_values", "judge_sweep_dir",
    "load_sweep", "read_recorded", "run_dirs_at", "run_record", "short_keys", "value_slugs", "write_manifest",
]
