"""What `bnexp report` shows, read from run directories: bnexp.report's typed input.

Every number the page's tables hold comes from `bnexp compare`'s analysis
(bnexp.compare.compare), taken from its objects field by field as `compare --format json`
writes them (bnexp.present.comparison), so the page's tables and that output agree: the
runs, the config diff, the seed groups, the comparisons, the pivots and a sweep's claims.
Beside them go what compare does not print: the header, each run's learning curves (its
metrics rows) and its diagnostics tables, read through bnexp.rundir. Nothing here
computes a statistic, and nothing imports TensorFlow. A non-finite number is None, as
in compare's JSON.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

from bnexp import __version__, compare, rundir
from bnexp.metrics import FAILED_TO_LEARN
from bnexp.present.claims import label
from bnexp.present.comparison import pivot_cell
from bnexp.rundir.provenance import git_commit, now
from bnexp.sweep import claims_for, grid_values, read_recorded

# The metrics a report tabulates and tests unless --metric names others.
REPORT_METRICS = ("final_test_accuracy", "final_train_set_accuracy", "generalization_gap")


@dataclass
class Header:
    """What was compared (the paths as named), when, by which bnexp, and the commits that trained the runs."""

    inputs: list[str] = field(default_factory=list)
    created: str | None = None
    bnexp_version: str | None = None
    git_commit: str | None = None
    run_commits: list[str] = field(default_factory=list)


@dataclass
class Curve:
    """A run's test curves: one entry per evaluation."""

    step: list[float] = field(default_factory=list)
    test_accuracy: list[float | None] = field(default_factory=list)
    test_loss: list[float | None] = field(default_factory=list)


@dataclass
class RunEntry:
    """One run as compare lists it (`values`: final_test_accuracy, best_test_accuracy, steps,
    seconds_per_epoch, …; `settings`: its value of each differing config key), with its curve
    and its diagnostics tables ({kind: rows}, the kinds bnexp.rundir declares)."""

    label: str
    path: str
    status: str
    group: str = ""
    failed_to_learn: bool = False
    settings: dict[str, str] = field(default_factory=dict)
    values: dict[str, float | None] = field(default_factory=dict)
    curve: Curve = field(default_factory=Curve)
    diagnostics: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class SeedGroup:
    """A seed group's label and the labels of the runs its statistics count."""

    label: str
    runs: list[str] = field(default_factory=list)


@dataclass
class Excluded:
    path: str
    why: str


@dataclass
class ComparisonEntry:
    """A group `b` against its baseline `a` on one metric (difference: b − a), as compare judged it."""

    a: str
    b: str
    metric: str
    test: str
    verdict: str
    sentence: str
    n_a: int | None = None
    n_b: int | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    effect_size: float | None = None
    p: float | None = None
    p_adjusted: float | None = None
    n_diverged: int = 0
    n_failed: int = 0
    n_diverged_a: int = 0
    n_failed_a: int = 0
    n_diverged_b: int = 0
    n_failed_b: int = 0
    excluded: list[Excluded] = field(default_factory=list)


@dataclass
class PivotCell:
    """A seed group's mean ± std (n) of the pivot's metric, and compare's text for it."""

    group: str
    text: str
    mean: float | None = None
    std: float | None = None
    n: int | None = None
    n_diverged: int | None = None
    n_failed: int | None = None


@dataclass
class PivotRow:
    values: dict[str, str]
    cells: list[PivotCell | None]


@dataclass
class PivotTable:
    """One metric laid out by `row_keys` × `column_key` (one column without)."""

    metric: str
    row_keys: list[str]
    column_key: str | None
    columns: list[str]
    rows: list[PivotRow]


@dataclass
class ClaimEntry:
    """A sweep's claim judged again from its runs (bnexp.sweep.claims_for); `label` is its
    name with its standing (bnexp.present.claims.label)."""

    name: str
    label: str
    claim: str
    metric: str
    verdict: str
    source: str | None = None
    direction: str = ""
    family: str | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    ci_level: float | None = None
    p: float | None = None
    p_adjusted: float | None = None
    n_better: int | None = None
    n_than: int | None = None
    seeds_needed: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything the page shows; every section but the header may be empty and is then left out.

    `last` and `threshold` are how compare read the runs; `diff` is {config key: {run label: value}}.
    """

    header: Header = field(default_factory=Header)
    runs: list[RunEntry] = field(default_factory=list)
    groups: list[SeedGroup] = field(default_factory=list)
    diff: dict[str, dict[str, str]] = field(default_factory=dict)
    comparisons: list[ComparisonEntry] = field(default_factory=list)
    not_comparable: list[str] = field(default_factory=list)
    hardware_note: str | None = None
    pivots: list[PivotTable] = field(default_factory=list)
    claims: list[ClaimEntry] = field(default_factory=list)
    last: int | None = None
    threshold: float | None = None


def report_data(paths: list[str | Path], *, threshold: float = 0.97, last: int = 1,
                pivot_rows: str | None = None, pivot_columns: str | None = None,
                metric: list[str] | None = None, baseline: str | None = None) -> ReportData:
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
    return ReportData(
        header=header(paths, runs),
        runs=[run_entry(i, row, comp) for i, row in enumerate(comp.rows)],
        groups=[SeedGroup(g.label, [r.label for r in g.used]) for g in comp.groups],
        diff={key: dict(zip((r.label for r in comp.rows), values)) for key, values in comp.diff},
        comparisons=[comparison_entry(c.to_dict()) for c in comp.comparisons],
        not_comparable=list(comp.not_comparable),
        hardware_note=comp.hardware_note,
        pivots=[pivot_table(p) for p in comp.pivots or ([comp.pivot] if comp.pivot else [])],
        claims=[claim_entry(c) for c in claims_for(paths) or []],
        last=comp.last,
        threshold=comp.threshold,
    )


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


def header(paths: list[str | Path], runs: list[compare.Run]) -> Header:
    return Header(inputs=[str(p) for p in paths], created=now(), bnexp_version=__version__, git_commit=git_commit(),
                  run_commits=sorted({run.summary.git_commit for run in runs if run.summary.git_commit}))


def run_entry(index: int, row: compare.Row, comp: compare.Comparison) -> RunEntry:
    run = row.run
    return RunEntry(label=row.label, path=str(run.path), status=str(run.status), group=row.group,
                    failed_to_learn=run.outcome == FAILED_TO_LEARN,
                    settings={key: values[index] for key, values in comp.diff},
                    values={k: _num(v) for k, v in row.values.items()},
                    curve=curve(run), diagnostics=diagnostics(run.path))


def curve(run: compare.Run) -> Curve:
    """The run's test curves: its metrics rows (already read by compare) as columns."""
    return Curve(*([_num(row[key]) for row in run.metrics] for key in ("step", "test_accuracy", "test_loss")))


def diagnostics(path: Path) -> dict[str, list[dict]]:
    """Every diagnostics table bnexp.rundir declares that the run recorded, by kind."""
    run = rundir.RunDir(path)
    return {kind: run.read_diagnostics(kind) for kind in rundir.DIAGNOSTICS_TABLES if run.has_diagnostics(kind)}


def comparison_entry(c: dict) -> ComparisonEntry:
    """From compare.GroupComparison.to_dict, the fields the page shows."""
    excluded = [Excluded(e["path"], e["why"]) for e in c.get("excluded") or []]
    return ComparisonEntry(**_fields(ComparisonEntry, c, skip={"excluded"}), excluded=excluded)


def pivot_table(p: compare.Pivot) -> PivotTable:
    def cell(g: compare.Group | None) -> PivotCell | None:
        if g is None:
            return None
        return PivotCell(group=g.label, text=pivot_cell(g, p.metric), mean=_num(g.mean(p.metric)),
                         std=_num(g.std(p.metric)), n=g.sample(p.metric).n, n_diverged=g.n_diverged, n_failed=g.n_failed)

    return PivotTable(metric=p.metric, row_keys=list(p.row_keys), column_key=p.column_key,
                      columns=list(p.column_values) if p.column_key else [],
                      rows=[PivotRow(dict(zip(p.row_keys, values)), [cell(g) for g in cells])
                            for values, cells in zip(p.row_values, p.cells)])


def claim_entry(c: dict) -> ClaimEntry:
    """From a claims entry of bnexp.sweep.claims_for."""
    return ClaimEntry(label=label(c), **_fields(ClaimEntry, c, skip={"label", "notes"}), notes=list(c.get("notes") or []))


def _fields(cls, entry: dict, skip: set[str]) -> dict:
    """The entry's values of `cls`'s fields (numbers as plain Python numbers, non-finite as None)."""
    names = [name for name in cls.__dataclass_fields__ if name not in skip and name in entry]
    return {name: _num(entry[name]) if isinstance(entry[name], numbers.Number) else entry[name] for name in names}


def _num(x):
    """A plain int or float, None for a missing or non-finite value (compare's JSON null)."""
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    x = float(x)
    return x if math.isfinite(x) else None
