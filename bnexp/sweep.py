"""Sweeps: one base config, a grid of overrides and several seeds; one run per point.

A sweep directory holds sweep.json (each point's overrides, run directory and status)
and one run directory per point, nested as `<grid values>/seed=<seed>`. The sweep
directory itself is no run, so `bnexp compare SWEEP_DIR` finds every point's run and
groups the seeds of each grid point.

Points train on warm workers (bnexp.worker): long-lived processes, one per slot, that
import TensorFlow once, keep the datasets loaded and train point after point exactly as
`bnexp train` would, each into its own run directory. A worker is a process apart from
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

Like train, this module never prints: it tells a SweepReporter (bnexp.present.sweeping
draws one). No TensorFlow here either; only the workers import it.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from bnexp import claims as claims_module, config as config_module, registry as registry_module, rundir
from bnexp.claims import Expect
from bnexp.config import Config, Schema
from bnexp.errors import BnexpError, ConfigError, RunDirError, RunFileError, UsageError, signal_exit_code
from bnexp.raycluster import check_reachable, connect_ray
from bnexp.rundir import provenance
from bnexp.status import RESULTS, Status
from bnexp.training.programs import program_key

MANIFEST = rundir.SWEEP_MANIFEST
# A diverged run is a finding (this setting does not train), not an accident: keep it.
DOTTED_KEY = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # as Config.name: it names the sweep directory
MAX_LABEL = 200  # bytes of one directory name; file systems allow 255
# Caps a sweep file or sweep.json may not pass, each a one-line error: far above any study,
# far below what would take minutes and gigabytes to list.
MAX_POINTS = 10_000
MAX_SEEDS = claims_module.MAX_SEEDS
MAX_THREADS = 1024


class SweepFile(Schema):
    """The sweep file: `base` config (a path relative to the sweep file, or inline),
    `set` overrides for every point, the `grid` of values to cross, the `seeds`, and the
    claims it `expect`s (checked by bnexp.claims.validate_claims)."""

    name: Annotated[str, Field(pattern=NAME)]
    base: str | dict[str, Any]
    set: dict[Annotated[str, Field(pattern=DOTTED_KEY)], Any] = {}
    grid: dict[Annotated[str, Field(pattern=DOTTED_KEY)], Annotated[list[Any], Field(min_length=1)]] = {}
    seeds: Annotated[list[Annotated[int, Field(ge=0, le=2**31 - 1)]], Field(min_length=1, max_length=MAX_SEEDS)] = [0]
    expect: Any = []


@dataclass(eq=False)
class Point:
    """One config of the sweep: its grid values and seed, its run directory and its state."""

    run_dir: str  # relative to the sweep directory; also the point's name
    overrides: dict[str, Any]
    config: Config
    status: Status = Status.PENDING
    message: str | None = None
    test_accuracy: float | None = None
    failed_to_learn: bool = False  # the run's summary says so (bnexp.metrics.failed_to_learn)


@dataclass
class Sweep:
    """A validated sweep: its points and the directory they are written to."""

    name: str
    file: Path
    out: Path
    points: list[Point]
    grid: dict[str, list[Any]]
    seeds: list[int]  # the file's (or --seeds), after those the directory already held
    claims: list[Expect]  # validated: `better` and `than` are whole grid points
    threads: int | None = None  # TensorFlow threads of every point: sweep.json's, once it has run
    verdicts: list[dict] | None = None  # bnexp.claims.judge's, once the points have run
    stopped_by: str | None = None  # the signal that interrupted the sweep
    registry: list = field(default_factory=list)  # bnexp.registry.Registered: every claim this directory has seen

    @property
    def exit_code(self) -> int:
        """0 when every point has a result (a divergence is one), else 1; signals map as in bnexp train."""
        if self.stopped_by:
            return signal_exit_code(self.stopped_by)
        return 0 if all(p.status in RESULTS for p in self.points) else 1


# --- reading the sweep file -----------------------------------------------------------


def load_sweep(path: str | Path, out: str | Path | None, seeds: list[int] | None = None) -> Sweep:
    """Read and validate the sweep file, every point's config and every claim; create nothing.

    `seeds` (from --seeds) replaces the file's. With an existing `out` of the same sweep,
    the seeds it already holds come first, so its points stay in sweep.json and in the
    claims; each point takes its status from its run directory, and a run made from a
    different config is refused, so an edited sweep never mixes old and new results in
    one directory.
    """
    path = Path(path)
    spec = read_sweep_file(path)
    out = Path(out) if out is not None else default_out(spec.name)
    check_out(out, spec.name)
    spec = spec.model_copy(update={"seeds": list(dict.fromkeys([*seeds_in(out), *(seeds or spec.seeds)]))})
    points = expand(spec, base_config(spec, path), str(path))
    claims = claims_module.validate_claims(spec.expect, spec.grid, spec.seeds, str(path), canonical=flow)
    claims_module.check_recorded(claims, lambda point: [p.config for p in points_at(points, point)], str(path))
    for point in points:
        read_status(point, rundir.inside(out, point.run_dir))
    registry = register_claims(out, claims, points)
    return Sweep(spec.name, path, out, points, spec.grid, spec.seeds, claims, threads_in(out), registry=registry)


def register_claims(out: Path, claims: list[Expect], points: list[Point]) -> list:
    """The directory's claim register (bnexp.registry) after this sweep file's claims: what
    sweep.json held, each new claim with the runs of its sides that already have a result."""
    def seen(entry: Expect) -> tuple[int, list[int]]:
        done = [p for side in (entry.better, entry.than) for p in points_at(points, side) if p.status in RESULTS]
        return len(done), sorted({p.overrides["seed"] for p in done})

    recorded = read_recorded(out)
    manifest = rundir.read_json(out / MANIFEST) if recorded else {}
    previous = recorded.registry if recorded else []
    last = {c.get("hash") or registry_module.definition_hash(e): c.get("verdict")
            for c, e in zip(manifest.get("claims") or [], [r.entry for r in previous]) if isinstance(c, dict)}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return registry_module.register(previous, claims, seen, now, last)


def recorded_registry(manifest: dict, path: Path) -> list:
    """sweep.json's register; for a sweep.json from before registers, its `expect` claims.
    RunFileError naming `path` when an entry is not one bnexp writes."""
    try:
        if "registry" in manifest:
            return [registry_module.Registered.from_json(r) for r in manifest["registry"]]
        return registry_module.from_expect([Expect.model_validate(e) for e in manifest.get("expect") or []])
    except (ValidationError, KeyError, TypeError, ValueError) as e:
        raise RunFileError(f"{path} is corrupt: its claim register: {' '.join(str(e).split())[:200]}") from None


def read_sweep_file(path: Path) -> SweepFile:
    raw = config_module.read_yaml_file(path)
    raw.setdefault("name", path.stem)
    try:
        spec = SweepFile.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{path}: {describe(e.errors()[0], raw)}" + config_module.more_errors(e)) from None
    if "seed" in spec.grid or "seed" in spec.set:
        raise ConfigError(f"{path}: seeds are listed under 'seeds:', not as a grid or set key")
    if len(set(spec.seeds)) < len(spec.seeds):
        raise ConfigError(f"{path}: seeds {spec.seeds} lists a seed twice")
    for key, values in spec.grid.items():
        if len({flow(v) for v in values}) < len(values):
            raise ConfigError(f"{path}: grid.{key} {flow(values)} lists a value twice")
    return spec


def describe(error: dict, raw: dict) -> str:
    """config.describe, except that unknown keys are suggested from the sweep file's own keys."""
    if error["type"] != "extra_forbidden":
        return config_module.describe(error, raw)
    key, allowed = str(error["loc"][0]), list(SweepFile.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    return f"unknown key '{key}'" + (f"; did you mean '{close[0]}'?" if close else "") + f" (allowed: {', '.join(allowed)})"


def base_config(spec: SweepFile, path: Path) -> dict:
    if isinstance(spec.base, dict):
        return spec.base
    return config_module.read_yaml_file(path.parent / spec.base)


def expand(spec: SweepFile, base: dict, where: str) -> list[Point]:
    """Every grid combination × every seed, in file order, each config validated."""
    count = math.prod(len(values) for values in spec.grid.values()) * len(spec.seeds)
    if count > MAX_POINTS:
        raise ConfigError(f"{where}: the grid and seeds make {count:,} points; at most {MAX_POINTS:,} allowed in one sweep")
    short = short_keys(list(spec.grid))
    slugs = {key: value_slugs(values) for key, values in spec.grid.items()}
    points = []
    for combo in itertools.product(*(range(len(values)) for values in spec.grid.values())):
        label = fit(",".join(f"{short[k]}={slugs[k][i]}" for k, i in zip(spec.grid, combo)))
        for seed in spec.seeds:
            overrides = {k: spec.grid[k][i] for k, i in zip(spec.grid, combo)} | {"seed": seed}
            run_dir = f"{label}/seed={seed}" if label else f"seed={seed}"
            config = point_config(base, spec.set | overrides, f"{where} point {run_dir}")
            points.append(Point(run_dir, overrides, config))
    return points


def flow(value: Any) -> str:
    """A value in one line of JSON, which YAML reads back the same (a YAML date becomes a string)."""
    return json.dumps(value, sort_keys=True, default=str)


def point_config(base: dict, assignments: dict[str, Any], where: str) -> Config:
    """The base with each assignment applied as `--set key=value` would (JSON is YAML), validated."""
    raw = copy.deepcopy(base)
    try:
        for key, value in assignments.items():
            config_module.apply_override(raw, f"{key}={flow(value)}")
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    return config_module.validate(raw, where)


def short_keys(keys: list[str]) -> dict[str, str]:
    """The shortest dotted suffix of each key that no other key ends with: train.batch_size -> batch_size."""

    def suffix(key: str, n: int) -> str:
        return ".".join(key.split(".")[-n:])

    short = {}
    for key in keys:
        n = 1
        while n < key.count(".") + 1 and any(suffix(other, n) == suffix(key, n) for other in keys if other != key):
            n += 1
        short[key] = suffix(key, n)
    return short


def value_slugs(values: list) -> list[str]:
    """File-name-safe spellings of grid values ([16, 16] -> 16_16), numbered if two would clash."""
    slugs = [re.sub(r"[^A-Za-z0-9.+-]+", "_", flow(v)).strip("_") for v in values]
    if len(set(slugs)) < len(slugs):
        slugs = [f"{s}_{i}" for i, s in enumerate(slugs)]
    return slugs


def fit(label: str) -> str:
    """Cut an over-long directory name, keeping it unique with a hash of the whole."""
    if len(label.encode()) <= MAX_LABEL:
        return label
    digest = hashlib.sha1(label.encode()).hexdigest()[:10]
    return label.encode()[:MAX_LABEL - 11].decode(errors="ignore") + "-" + digest


# --- the sweep directory ----------------------------------------------------------------


def default_out(name: str) -> Path:
    return rundir.runs_root() / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def seeds_in(out: Path) -> list[int]:
    """The seeds of the points an existing sweep directory records, in their order."""
    recorded = read_recorded(out)
    return list(dict.fromkeys(p["overrides"]["seed"] for p in recorded.points)) if recorded else []


def threads_in(out: Path) -> int | None:
    """The thread count an existing sweep directory's points trained with."""
    recorded = read_recorded(out)
    return recorded.threads if recorded else None


def check_out(out: Path, name: str) -> None:
    """`out` may be new, empty, or a directory of this same sweep (which is then continued)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise RunDirError(f"--out {out} is not a directory")
    manifest = out / MANIFEST
    if os.path.lexists(manifest):
        found = read_recorded(out).name
        if found != name:
            raise RunDirError(f"{out} holds the sweep '{found}', not '{name}': choose another --out")
    elif any(p.name != ".lock" for p in out.iterdir()):
        raise RunDirError(f"{out} is not empty and holds no {MANIFEST}: choose another --out")


def read_status(point: Point, run: Path) -> None:
    """Take the point's status from its run directory; refuse a run of a different config."""
    found = rundir.RunDir(run)
    if not found.has_summary():
        return
    if found.has_config():
        check_same_config(point, found)
    summary = found.read_summary()
    point.status = summary.status or Status.PENDING
    point.message, point.test_accuracy = summary.message, summary.test_accuracy
    point.failed_to_learn = bool(summary.failed_to_learn)


def check_same_config(point: Point, run: rundir.RunDir) -> None:
    # data.dir may differ: --data-dir moves the data, not the experiment.
    saved = config_module.flatten(run.read_config().model_dump(mode="json"))
    wanted = config_module.flatten(point.config.model_dump(mode="json"))
    for key in dict.fromkeys([*wanted, *saved]):
        if key != "data.dir" and saved.get(key) != wanted.get(key):
            raise ConfigError(f"{run.path} was trained with {key}={flow(saved.get(key))} but the sweep now gives "
                              f"{flow(wanted.get(key))}: write the changed sweep to another --out")


def write_manifest(sweep: Sweep) -> None:
    manifest = {
        "name": sweep.name,
        "sweep_file": str(sweep.file.resolve()),
        "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "grid": sweep.grid,
        "seeds": sweep.seeds,
        "threads": sweep.threads,
        "hardware": {**provenance.hardware(), "threads": sweep.threads},  # this process's; each run records its own
        "expect": [e.model_dump(mode="json", exclude_unset=True) for e in sweep.claims],
        "claims": sweep.verdicts,
        "registry": [r.to_json() for r in sweep.registry],
        "points": [{"run_dir": p.run_dir, "overrides": p.overrides, "status": p.status,
                    "message": p.message, "test_accuracy": p.test_accuracy} for p in sweep.points],
    }
    rundir.write_atomic(sweep.out / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")


# --- claims ------------------------------------------------------------------------------


def grid_values(overrides: dict[str, Any]) -> dict[str, Any]:
    """A point's grid values: its overrides without the seed."""
    return {k: v for k, v in overrides.items() if k != "seed"}


def points_at(points: list[Point], grid_point: dict[str, Any]) -> list[Point]:
    """The points (one per seed) of one grid point, values compared as the grid compares them."""
    return [p for p in points if flow(grid_values(p.overrides)) == flow(grid_point)]


def run_dirs_at(recorded: list[dict], grid_point: dict[str, Any]) -> dict[int, str]:
    """Seed → run directory (relative) of one grid point, from sweep.json's `points`."""
    return {p["overrides"]["seed"]: p["run_dir"] for p in recorded
            if flow(grid_values(p["overrides"])) == flow(grid_point)}


def judge_claims(name: str, entries: list[Expect], seeds: list[int], out: Path, recorded: list[dict],
                 registry: list | None = None) -> list[dict]:
    """The claims' verdicts from the run directories under `out` (`recorded`: sweep.json's
    points); the claims of one sweep are one Holm family, named after the sweep.

    With the directory's `registry` (bnexp.registry), `entries` must be its claims in its
    order (withdrawn ones included: the family never shrinks), and each result says its
    standing; a post-hoc claim is also judged on its fresh seeds alone.
    """
    if not entries:
        return []
    kinds = {claims_module.diagnostics_kind(e.metric) for e in entries} - {None}

    def runs_for(grid_point: dict[str, Any]) -> dict[int, claims_module.RunRecord]:
        found = {seed: run_record(rundir.inside(out, run_dir), kinds) for seed, run_dir in run_dirs_at(recorded, grid_point).items()}
        return {seed: record for seed, record in found.items() if record is not None}

    results = claims_module.judge(entries, runs_for, seeds, f"sweep {name}")
    if registry is None:
        return results
    out_results = []
    for entry, result, r in zip(entries, results, registry):
        fresh = None
        fresh_seeds = registry_module.fresh_seeds(r, seeds)
        if r.post_hoc and len(fresh_seeds) >= claims_module.MIN_SEEDS:
            [alone] = claims_module.judge([entry], runs_for, fresh_seeds, f"fresh seeds of {entry.name}")
            fresh = {"verdict": alone["verdict"], "seeds": fresh_seeds}
        out_results.append(registry_module.annotate(result, r, fresh))
    return out_results


def run_record(path: Path, kinds: set[str]) -> claims_module.RunRecord | None:
    """What a claim reads of one run directory; None when the run has not started."""
    run = rundir.RunDir(path)
    if not run.has_summary():
        return None
    summary = run.read_summary()
    return claims_module.RunRecord(
        status=summary.status or "unknown", total_steps=summary.total_steps or 0, metrics=run.read_metrics(),
        generalization_gap=summary.to_json().get("generalization_gap"),  # a field of newer runs only
        diagnostics={kind: run.read_diagnostics(kind) for kind in kinds if kind in rundir.DIAGNOSTICS},
        summary=summary.to_json(), evals=run.read_evals(), hardware=provenance.same_hardware_key(summary.hardware),
        test_set=test_set_of(summary))


def test_set_of(summary) -> str | None:
    """`mnist (10,000 test examples)`, as bnexp.compare names a test set; None when not recorded."""
    data = summary.data or {}
    if data.get("test_examples") is None:
        return None
    return f"{data.get('dataset') or '?'} ({data['test_examples']:,} test examples)"


def judge_sweep(sweep: Sweep) -> list[dict]:
    """The sweep's claims judged from its run directories as they are now."""
    recorded = [{"overrides": p.overrides, "run_dir": p.run_dir} for p in sweep.points]
    return judge_claims(sweep.name, [r.entry for r in sweep.registry], sweep.seeds, sweep.out, recorded,
                        sweep.registry)


@dataclass
class Recorded:
    """A sweep directory as its sweep.json records it: what `bnexp compare` and the
    claims report need when the sweep file may have moved or changed."""

    out: Path
    name: str
    seeds: list[int]
    claims: list[Expect]  # every registered claim, withdrawn ones included, in the register's order
    points: list[dict]  # sweep.json's, as read: run_dir and overrides
    threads: int | None = None
    registry: list = field(default_factory=list)  # bnexp.registry.Registered, one per claim


class RecordedPoint(Schema):
    """What bnexp reads of one of sweep.json's points; other keys are its own notes."""

    model_config = {"extra": "ignore"}
    run_dir: str
    overrides: dict[str, Any]


class Manifest(Schema):
    """What bnexp reads of sweep.json, checked before any of it names a path or a thread count."""

    model_config = {"extra": "ignore"}
    name: Annotated[str, Field(pattern=NAME)]
    points: Annotated[list[RecordedPoint], Field(max_length=MAX_POINTS)]
    seeds: Annotated[list[Annotated[int, Field(ge=0, le=2**31 - 1)]], Field(max_length=MAX_SEEDS)] | None = None
    threads: Annotated[int, Field(ge=1, le=MAX_THREADS)] | None = None
    expect: list[Expect] | None = None
    registry: list[dict[str, Any]] | None = None


def read_recorded(out: Path) -> Recorded | None:
    """The sweep recorded in `out`, or None when `out` holds no sweep.json; RunFileError
    naming the file when a name, path, seed or thread count in it is not one bnexp writes."""
    path = Path(out) / MANIFEST
    if not os.path.lexists(path):
        return None
    raw = rundir.read_json(path)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as e:
        raise RunFileError(f"{path} is corrupt: {config_module.describe(e.errors()[0], raw)}") from None
    points = [p.model_dump() for p in manifest.points]
    for point in points:
        rundir.check_relative(point["run_dir"], "run_dir", path)
        seed = point["overrides"].get("seed")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise RunFileError(f"{path} is corrupt: the point {point['run_dir']} has no integer seed")
    seeds = manifest.seeds or list(dict.fromkeys(p["overrides"]["seed"] for p in points))
    registry = recorded_registry(raw, path)
    return Recorded(Path(out), manifest.name, seeds, [r.entry for r in registry], points, manifest.threads, registry)


def claims_for(paths: list[str | Path]) -> list[dict] | None:
    """`bnexp compare`'s hook: the claims of each named sweep directory, judged again from
    its runs; None when no path is a sweep directory with claims."""
    results = []
    for path in paths:
        recorded = read_recorded(Path(path))
        if recorded is not None:
            results += judge_claims(recorded.name, recorded.claims, recorded.seeds, recorded.out, recorded.points,
                                    recorded.registry)
    return results or None


def prepare(out: Path, run_dir: str) -> bool:
    """Whether the point resumes from its checkpoint; a run with none is cleared to start
    over, if it is one (rundir.remove_run: no link, nothing but a run's files)."""
    run = rundir.inside(out, run_dir)
    holder = rundir.RunDir(run)
    if holder.has_checkpoint():
        return True
    if rundir.check_removable(out, run_dir):  # before the lock: a refused folder is left as it was
        holder.lock()  # refuses a run another process is still writing
        try:
            rundir.remove_run(out, run_dir)
        finally:
            holder.unlock()
    return False


# --- running points -------------------------------------------------------------------


class SweepReporter:
    """What a sweep tells the outside world; bnexp.present.sweeping draws it."""

    def start(self, sweep: Sweep, to_run: int) -> None: ...
    def started(self, point: Point) -> None: ...
    def finished(self, point: Point) -> None: ...
    def stop(self) -> None: ...


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads(workers: int) -> int:
    """TensorFlow threads for each of `workers` points at once: $BNEXP_THREADS when set, else
    the cores shared out, so that the points share them rather than fight."""
    return int(os.environ.get("BNEXP_THREADS") or 0) or max(1, available_cores() // workers)


def parent_pid() -> str:
    """How a worker started here knows its sweep (bnexp.worker.die_with_parent): this pid,
    with ':watch' when started off the main thread (a Ray actor's)."""
    import threading

    return str(os.getpid()) + ("" if threading.current_thread() is threading.main_thread() else ":watch")


class Worker:
    """A warm worker process (`python -m bnexp.worker`): it trains the points it is sent, one
    at a time, each as `bnexp train --quiet` would, and answers each with that command's exit
    code and one-line error. Its stderr goes to a file, whose last line says why it died."""

    def __init__(self, threads: int):
        self.stderr = tempfile.TemporaryFile("w+")
        # A Ray worker blocks SIGINT, and a child inherits the mask: unblock it for the fork,
        # or the forwarded stop would never arrive.
        mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            # A session of its own keeps a terminal's Ctrl-C away: the sweep forwards it once,
            # since a second SIGINT stops training without a checkpoint.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bnexp.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self.stderr, text=True,
                env={**os.environ, "BNEXP_THREADS": str(threads), "BNEXP_PARENT_PID": parent_pid()},
                start_new_session=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.keys: set[str] = set()  # program keys of the points it has trained: their programs it holds

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, config_yaml: str | None, run_dir: str, data_dir: str | None) -> None:
        """Give it a point: its config (None to resume) and run directory."""
        task = {"config": config_yaml, "run_dir": run_dir, "data_dir": data_dir}
        try:
            self.process.stdin.write(json.dumps(task) + "\n")
            self.process.stdin.flush()
        except OSError:  # it died idle: reply() says how
            pass

    def answered(self, timeout: float) -> bool:
        """Whether its reply (or its death) can be read without waiting, after up to `timeout` s."""
        return bool(select.select([self.process.stdout], [], [], timeout)[0])

    def reply(self) -> tuple[int, str]:
        """The exit code and one-line error of the point it was sent; a worker that died
        (kill -9, a crash) answers with its death: a negative signal number and why."""
        line = self.process.stdout.readline()
        if line:
            answer = json.loads(line)
            return answer["code"], answer["message"]
        code = self.process.wait()
        self.stderr.seek(0)
        lines = [text.strip() for text in self.stderr.read().splitlines() if text.strip()]
        cause = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return code if code else 1, f"the worker training it died ({cause})" + (f": {lines[-1]}" if lines else "")

    def interrupt(self, signum: int) -> None:
        if self.alive:
            self.process.send_signal(signum)

    def close(self) -> None:
        """End of input: it exits once its current point is done."""
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def wait(self) -> None:
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def close_all(workers: list[Worker]) -> None:
    """Close every worker's input, then wait for each: they shut down side by side."""
    for worker in workers:
        worker.close()
    for worker in workers:
        worker.wait()


def take_next(todo: deque, free_keys: set[str] | None, held: set[str]) -> Point:
    """Take from `todo` the point a free worker should train next: one whose programs it
    holds (`free_keys`, None for a worker yet to start), else one whose programs no worker
    holds (`held`) so that it compiles them for the points that share them, else the first.
    Points that share programs so end up on the worker that compiled them."""
    keys = [program_key(p.config) for p in todo]
    for wanted in (lambda k: k in (free_keys or ()), lambda k: k not in held):
        for i, key in enumerate(keys):
            if wanted(key):
                point = todo[i]
                del todo[i]
                return point
    return todo.popleft()


class WarmActor:
    """A Ray actor holding one warm worker. The worker is a process of its own, so a point
    that crashes it leaves the actor alive to start another, and `interrupt` (the actor
    runs two calls at once) reaches it while `train` waits for its reply."""

    def __init__(self, threads: int):
        self.threads = threads
        self.worker = Worker(threads)

    def train(self, config_yaml: str | None, run_dir: str, data_dir: str | None) -> tuple[int, str]:
        if not self.worker.alive:  # the last point crashed it
            self.worker.wait()
            self.worker = Worker(self.threads)
        self.worker.send(config_yaml, run_dir, data_dir)
        while not self.worker.answered(0.5):
            pass
        return self.worker.reply()

    def interrupt(self, signum: int) -> None:
        self.worker.interrupt(signum)


class LocalExecutor:
    """Points on `workers` warm worker processes of this one; a worker that dies is replaced."""

    def __init__(self, workers: int, data_dir: str | None):
        self.slots, self.data_dir = workers, data_dir
        self.threads = default_threads(workers)
        self.workers: list[Worker] = []
        self.running: dict[Point, Worker] = {}
        self.chosen: Worker | None = None

    def open(self, threads: int) -> None:
        self.threads = threads

    def take(self, todo: deque) -> Point:
        """The next point for the first free worker (take_next), which `start` then gives it."""
        idle = [w for w in self.workers if w not in self.running.values()]
        self.chosen = idle[0] if idle else None
        return take_next(todo, self.chosen.keys if self.chosen else None, set().union(*(w.keys for w in self.workers)))

    def start(self, point: Point, config_yaml: str | None, run: Path) -> None:
        worker = self.chosen or self._new_worker()
        worker.send(config_yaml, str(run), self.data_dir)
        worker.keys.add(program_key(point.config))
        self.running[point] = worker

    def _new_worker(self) -> Worker:
        worker = Worker(self.threads)
        self.workers.append(worker)
        return worker

    def finished(self, timeout: float) -> list[tuple[Point, int, str]]:
        pipes = {worker.process.stdout: point for point, worker in self.running.items()}
        ready = select.select(list(pipes), [], [], timeout)[0] if pipes else time.sleep(timeout) or []
        results = []
        for pipe in ready:
            worker = self.running.pop(pipes[pipe])
            results.append((pipes[pipe], *worker.reply()))
            if not worker.alive:  # a crash: the next point gets a fresh worker
                self.workers.remove(worker)
                worker.wait()
        return results

    def interrupt(self, signum: int) -> None:
        for worker in self.running.values():
            worker.interrupt(signum)

    def close(self) -> None:
        """Never leave a point training alone (after an error of the sweep's own): stop it
        cleanly, so it checkpoints, and wait for it; then end every worker."""
        self.interrupt(signal.SIGINT)
        for worker in self.running.values():
            worker.reply()
        self.running.clear()
        close_all(self.workers)
        self.workers.clear()


@dataclass(eq=False)
class Actor:
    """A WarmActor's handle and the program keys of the points it has trained."""

    handle: Any
    keys: set[str] = field(default_factory=set)


class RayExecutor:
    """Points on long-lived Ray actors (WarmActor), on the cluster at `address` or on a Ray
    instance started for the sweep.

    Each actor asks for the CPUs its TensorFlow threads use, so Ray packs as many on a
    machine as its cores allow. Run directories are written by the workers: on a real
    cluster the sweep directory must be on a file system every node shares.
    """

    def __init__(self, workers: int, address: str | None, data_dir: str | None):
        try:
            import ray
        except ImportError:
            raise BnexpError("--executor ray needs Ray: pip install -e .[ray]") from None
        self.ray, self.address, self.data_dir = ray, address, data_dir
        if address:  # before anything is written: a dead address fails here, in one line
            check_reachable(address)
        self.threads = default_threads(workers)
        self.idle: list[Actor] = []  # actors with no point
        self.running: dict[Any, tuple[Point, Actor]] = {}  # call reference -> (point, actor)

    def open(self, threads: int) -> None:
        import logging

        self.threads = threads
        options = {"logging_level": logging.ERROR}
        if self.address:
            connect_ray(self.address, **options)
        else:  # "local": a new instance of its own, never a cluster that happens to run here (or RAY_ADDRESS)
            self.ray.init(address="local", num_cpus=available_cores(), include_dashboard=False, log_to_driver=False,
                          **options)
        # No restarts: a restarted actor would retry nothing, and a lost one is replaced at the next point.
        self.actor = self.ray.remote(num_cpus=threads, max_concurrency=2, max_restarts=0)(WarmActor)
        self.slots = max(1, int(self.ray.cluster_resources().get("CPU", 1) // threads))

    def take(self, todo: deque) -> Point:
        """The next point for the first idle actor (take_next), which `start` then gives it."""
        actors = self.idle + [actor for _, actor in self.running.values()]
        return take_next(todo, self.idle[0].keys if self.idle else None, set().union(*(a.keys for a in actors)))

    def start(self, point: Point, config_yaml: str | None, run: Path) -> None:
        actor = self.idle.pop(0) if self.idle else Actor(self.actor.remote(self.threads))
        actor.keys.add(program_key(point.config))
        self.running[actor.handle.train.remote(config_yaml, str(run.resolve()), self.data_dir)] = (point, actor)

    def finished(self, timeout: float) -> list[tuple[Point, int, str]]:
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        results = []
        for ref in ready:
            point, actor = self.running.pop(ref)
            try:
                code, error = self.ray.get(ref)
                self.idle.append(actor)
            except Exception as e:  # the actor itself died (worker lost, node down)
                code, error = -1, f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
            results.append((point, code, error))
        return results

    def interrupt(self, signum: int) -> None:
        for _, actor in self.running.values():
            actor.handle.interrupt.remote(signum)

    def close(self) -> None:
        if not self.ray.is_initialized():
            return
        if self.running:  # after an error of the sweep's own: let the points checkpoint
            self.interrupt(signal.SIGINT)
            self.ray.wait(list(self.running), num_returns=len(self.running), timeout=120)
        self.ray.shutdown()  # the actors go, and their workers, reading the end of their input, follow


def make_executor(kind: Literal["local", "ray"], workers: int, address: str | None, data_dir: str | Path | None):
    """Check the executor options (and that Ray is there) before anything runs."""
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    if kind == "ray":
        return RayExecutor(workers, address, data_dir)
    if address:
        raise UsageError("--address is for --executor ray")
    return LocalExecutor(workers, data_dir)


class Stop:
    """SIGINT and SIGTERM both raise KeyboardInterrupt in the sweep's loop; the first one's name is kept."""

    def __enter__(self) -> "Stop":
        self.signum = None
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.signum = self.signum or signum
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def run_sweep(sweep: Sweep, executor, reporter: SweepReporter) -> None:
    """Run every point without a result, `executor.slots` at a time, keeping sweep.json
    current; then judge the claims, into `sweep.verdicts` and sweep.json.

    A signal is forwarded to the running points, which checkpoint and end as interrupted;
    `sweep.stopped_by` then names it. A second signal stops them at once, as in bnexp train.
    """
    sweep.out.mkdir(parents=True, exist_ok=True)
    # One thread count for all of a sweep's points, reruns included: the count changes
    # floating-point sums, so a point resumed with another would not end as it began.
    sweep.threads = sweep.threads or executor.threads
    lock = rundir.RunDir(sweep.out)
    lock.lock()  # one sweep process per sweep directory
    todo = deque(p for p in sweep.points if p.status not in RESULTS)
    try:
        write_manifest(sweep)
        reporter.start(sweep, len(todo))
        with Stop() as stop:
            try:
                executor.open(sweep.threads)  # after Stop: Ray's workers then inherit the default SIGINT, not an ignored one
                while todo or executor.running:
                    while todo and len(executor.running) < executor.slots:
                        start_point(sweep, executor.take(todo), executor, reporter)
                    collect(sweep, executor, reporter)
            except KeyboardInterrupt:
                sweep.stopped_by = signal.Signals(stop.signum or signal.SIGINT).name
                executor.interrupt(stop.signum or signal.SIGINT)
                while executor.running:
                    try:
                        collect(sweep, executor, reporter)
                    except KeyboardInterrupt:
                        executor.interrupt(signal.SIGINT)
        sweep.verdicts = judge_sweep(sweep)
        write_manifest(sweep)
    finally:
        executor.close()
        reporter.stop()
        lock.unlock()


def start_point(sweep: Sweep, point: Point, executor, reporter: SweepReporter) -> None:
    run = sweep.out / point.run_dir
    try:
        resume = prepare(sweep.out, point.run_dir)
    except BnexpError as e:
        end_point(sweep, point, Status.FAILED, str(e), reporter)
        return
    executor.start(point, None if resume else config_module.to_yaml(point.config), run)
    point.status, point.message = Status.RUNNING, None
    write_manifest(sweep)
    reporter.started(point)


def collect(sweep: Sweep, executor, reporter: SweepReporter) -> None:
    for point, code, error in executor.finished(timeout=0.25):
        run = rundir.RunDir(sweep.out / point.run_dir)
        summary = run.read_summary() if run.has_summary() else rundir.Summary(status=None)
        status = outcome(code, summary.status, stopping=sweep.stopped_by is not None)
        point.test_accuracy, point.failed_to_learn = summary.test_accuracy, bool(summary.failed_to_learn)
        message = (error or summary.message or f"exit code {code}") if status == Status.FAILED else summary.message
        end_point(sweep, point, status, message, reporter)


def outcome(code: int, summary_status: Status | None, stopping: bool) -> Status:
    """A point's status from its exit code and its summary, which may be stale if the
    process died before writing (a resume that could not load its data, say). A point
    stopped with the sweep before it could say so (still importing, or a Ray task
    cancelled in its queue) is interrupted: a rerun resumes or restarts it."""
    if (code, summary_status) in ((0, Status.COMPLETED), (1, Status.DIVERGED), (130, Status.INTERRUPTED),
                                  (143, Status.INTERRUPTED)):
        return summary_status
    return Status.INTERRUPTED if stopping else Status.FAILED


def end_point(sweep: Sweep, point: Point, status: Status, message: str | None, reporter: SweepReporter) -> None:
    point.status, point.message = status, message
    write_manifest(sweep)
    reporter.finished(point)
