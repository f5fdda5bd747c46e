"""The sweep file: its schema, its grid crossed with its seeds into points, and each
point's name (its run directory, `<grid values>/seed=<seed>`) and validated config.

`Sweep` and `Point` are what a sweep is once read (bnexp.sweep.load makes them); this
module reads no sweep directory.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError

from bnexp import config as config_module
from bnexp.claims import MAX_SEEDS, Expect
from bnexp.config import Config, Schema
from bnexp.errors import ConfigError, signal_exit_code
from bnexp.status import RESULTS, Status

DOTTED_KEY = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # as Config.name: it names the sweep directory
MAX_LABEL = 200  # bytes of one directory name; file systems allow 255
# Caps a sweep file or sweep.json may not pass, each a one-line error: far above any study,
# far below what would take minutes and gigabytes to list.
MAX_POINTS = 10_000


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
    verdicts: list[dict] | None = None  # bnexp.claims.judge_entries', once the points have run
    stopped_by: str | None = None  # the signal that interrupted the sweep
    registry: list = field(default_factory=list)  # bnexp.claims.register.Registered: every claim this directory has seen

    @property
    def exit_code(self) -> int:
        """0 when every point has a result (a divergence is one), else 1; signals map as in bnexp train."""
        if self.stopped_by:
            return signal_exit_code(self.stopped_by)
        return 0 if all(p.status in RESULTS for p in self.points) else 1


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
