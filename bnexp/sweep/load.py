"""load_sweep: a sweep file read against the directory it is to fill, every point's status
taken from its run directory, and every claim checked and registered; nothing trains.
"""

from __future__ import annotations

from pathlib import Path

from bnexp import claims as claims_module, config as config_module, rundir
from bnexp.errors import ConfigError
from bnexp.status import Status
from bnexp.sweep.judging import register_claims
from bnexp.sweep.manifest import check_out, default_out, seeds_in, threads_in
from bnexp.sweep.spec import Point, Sweep, base_config, expand, flow, points_at, read_sweep_file


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
