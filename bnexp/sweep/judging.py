"""A sweep directory's claims: registered (bnexp.claims.register) as its sweep file brings
them, and judged from its run directories as they are now, by the sweep once its points
have run, or later from sweep.json alone (`bnexp compare`, the claims report).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bnexp import claims as claims_module, rundir
from bnexp.claims import Expect, register as registry_module
from bnexp.rundir import provenance
from bnexp.status import RESULTS
from bnexp.sweep.manifest import MANIFEST, read_recorded
from bnexp.sweep.spec import Point, Sweep, points_at, run_dirs_at


def register_claims(out: Path, claims: list[Expect], points: list[Point]) -> list:
    """The directory's claim register (bnexp.claims.register) after this sweep file's claims: what
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


def judge_sweep_dir(name: str, entries: list[Expect], seeds: list[int], out: Path, recorded: list[dict],
                    registry: list | None = None) -> list[dict]:
    """The claims' verdicts from the run directories under `out` (`recorded`: sweep.json's
    points); the claims of one sweep are one Holm family, named after the sweep.

    With the directory's `registry` (bnexp.claims.register), `entries` must be its claims in its
    order (withdrawn ones included: the family never shrinks), and each result says its
    standing; a post-hoc claim is also judged on its fresh seeds alone.
    """
    if not entries:
        return []
    kinds = {claims_module.diagnostics_kind(e.metric) for e in entries} - {None}

    def runs_for(grid_point: dict[str, Any]) -> dict[int, claims_module.RunRecord]:
        found = {seed: run_record(rundir.inside(out, run_dir), kinds) for seed, run_dir in run_dirs_at(recorded, grid_point).items()}
        return {seed: record for seed, record in found.items() if record is not None}

    results = claims_module.judge_entries(entries, runs_for, seeds, f"sweep {name}")
    if registry is None:
        return results
    out_results = []
    for entry, result, r in zip(entries, results, registry):
        fresh = None
        fresh_seeds = registry_module.fresh_seeds(r, seeds)
        if r.post_hoc and len(fresh_seeds) >= claims_module.MIN_SEEDS:
            [alone] = claims_module.judge_entries([entry], runs_for, fresh_seeds, f"fresh seeds of {entry.name}")
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
        diagnostics={kind: run.read_diagnostics(kind) for kind in kinds if kind in rundir.DIAGNOSTICS_TABLES},
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
    return judge_sweep_dir(sweep.name, [r.entry for r in sweep.registry], sweep.seeds, sweep.out, recorded,
                           sweep.registry)


def claims_for(paths: list[str | Path]) -> list[dict] | None:
    """`bnexp compare`'s hook: the claims of each named sweep directory, judged again from
    its runs; None when no path is a sweep directory with claims."""
    results = []
    for path in paths:
        recorded = read_recorded(Path(path))
        if recorded is not None:
            results += judge_sweep_dir(recorded.name, recorded.claims, recorded.seeds, recorded.out, recorded.points,
                                       recorded.registry)
    return results or None
