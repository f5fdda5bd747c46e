"""sweep.json: what a sweep directory records of its sweep, rewritten at every change of a
point's status, and read back (checked first: a directory may come from anyone) to
continue the sweep, or to judge its claims again without the sweep file.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError

from bnexp import config as config_module, rundir
from bnexp.claims import MAX_SEEDS, Expect, register as registry_module
from bnexp.config import Schema
from bnexp.errors import RunDirError, RunFileError
from bnexp.rundir import provenance
from bnexp.sweep.spec import MAX_POINTS, NAME, Sweep

MANIFEST = rundir.SWEEP_MANIFEST
MAX_THREADS = 1024  # the thread count sweep.json may record: far above any machine


def recorded_registry(manifest: dict, path: Path) -> list:
    """sweep.json's register; for a sweep.json from before registers, its `expect` claims.
    RunFileError naming `path` when an entry is not one bnexp writes."""
    try:
        if "registry" in manifest:
            return [registry_module.Registered.from_json(r) for r in manifest["registry"]]
        return registry_module.from_expect([Expect.model_validate(e) for e in manifest.get("expect") or []])
    except (ValidationError, KeyError, TypeError, ValueError) as e:
        raise RunFileError(f"{path} is corrupt: its claim register: {' '.join(str(e).split())[:200]}") from None


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
    registry: list = field(default_factory=list)  # bnexp.claims.register.Registered, one per claim


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
