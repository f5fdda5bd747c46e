"""What `bnexp report` shows, read from run directories: bnexp.report's input dict.

Every number the page's tables hold comes from `bnexp compare`'s analysis, as
`compare --format json` prints it (bnexp.present.comparison.json_doc): the runs, the
config diff, the seed groups, the comparisons, the test sets set apart, the pivot and a
sweep's claims. The page holds them as they are, so its tables and that output agree by
construction. Beside them go what compare does not print: the header, each run's
learning curves (its metrics rows) and its diagnostics tables, read through
bnexp.rundir. Nothing here computes a statistic, and nothing imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

from bnexp import __version__, compare, rundir
from bnexp.present.comparison import json_doc
from bnexp.sweep import claims_for, grid_values, read_recorded
from bnexp.rundir.provenance import git_commit, now

CURVE_KEYS = ("step", "test_accuracy", "test_loss")


# The metrics a report tabulates and tests unless --metric names others.
REPORT_METRICS = ("final_test_accuracy", "final_train_set_accuracy", "generalization_gap")


def report_data(paths: list[str | Path], *, threshold: float = 0.97, last: int = 1,
                pivot_rows: str | None = None, pivot_columns: str | None = None,
                metric: list[str] | None = None, baseline: str | None = None) -> dict:
    """The report of the runs under `paths` (runs, folders of runs, sweeps), as
    `compare PATHS --threshold --last --metric --baseline` sees them (the metrics
    default to REPORT_METRICS).

    The pivots (one per metric) lay out `pivot_rows` × `pivot_columns`, by default the
    named sweeps' first and second grid keys (that differ between the groups); with no
    sweep, and no key given, there are none.
    """
    unreadable: list[tuple[str, str]] = []
    runs = compare.load_runs([str(p) for p in paths], unreadable)
    comp = compare.compare(runs, threshold=threshold, last=last, pivot_rows=pivot_rows, pivot_columns=pivot_columns,
                           metric=list(metric or REPORT_METRICS), baseline=baseline, unreadable=unreadable)
    if pivot_rows is None and pivot_columns is None:
        rows, columns = default_pivot(paths, comp.groups)
        comp.pivots = [compare.pivot(comp.groups, rows, columns, r.name) for r in comp.refs] if rows is not None else []
        comp.pivot = comp.pivots[0] if comp.pivots else None
    return {
        "header": header(paths, runs),
        **json_doc(comp, None, claims_for(paths)),
        "curves": [curve(run) for run in runs],
        "diagnostics": [diagnostics(run.path) for run in runs],
    }


def default_pivot(paths: list[str | Path], groups: list[compare.Group]) -> tuple[str | None, str | None]:
    """Rows and columns of the pivot: the first two grid keys of the named sweeps that
    differ between `groups` (any further grid key joins the rows in compare.pivot)."""
    allowed = compare.pivot_keys(groups)
    grid = []
    for path in paths:
        recorded = read_recorded(Path(path))
        if recorded is not None and recorded.points:
            grid += grid_values(recorded.points[0]["overrides"])
    keys = [k for k in dict.fromkeys(grid) if k in allowed]
    return (keys[0] if keys else None), (keys[1] if len(keys) > 1 else None)


def header(paths: list[str | Path], runs: list[compare.Run]) -> dict:
    """What was compared, when, by which bnexp, and the commits that trained the runs."""
    return {
        "inputs": [str(p) for p in paths],
        "created": now(),
        "bnexp_version": __version__,
        "git_commit": git_commit(),
        "run_commits": sorted({run.summary.git_commit for run in runs if run.summary.git_commit}),
    }


def curve(run: compare.Run) -> dict[str, list]:
    """The run's test curves: its metrics rows (already read by compare) as columns."""
    return {key: [row[key] for row in run.metrics] for key in CURVE_KEYS}


def diagnostics(path: Path) -> dict[str, list[dict]]:
    """Every diagnostics table bnexp.rundir declares that the run recorded, by kind."""
    run = rundir.RunDir(path)
    return {kind: run.read_diagnostics(kind) for kind in rundir.DIAGNOSTICS_TABLES if run.has_diagnostics(kind)}
