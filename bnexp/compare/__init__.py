"""Compare runs: config diff, metrics against a baseline, seed groups and their statistics.

This is analysis only: it reads run directories through bnexp.rundir and returns data;
bnexp.present formats it. Nothing here prints or imports TensorFlow, so `bnexp compare`
answers at once. bnexp.stats (and with it SciPy) is imported only when two seed groups
are to be compared, because importing it costs more than the rest of the command.

How compare decides (docs/statistics.md says the same for users):

- What is compared is one or more metrics of bnexp.metrics (`--metric`, default final
  test accuracy); each metric is its own Holm family on each test set.
- The baseline is the first run named on the command line; within a folder, the first
  run in natural order, within a sweep the first point in grid order (bnexp.rundir);
  `--baseline` picks another group, by grid values or by a run's path.
- Runs whose test sets differ (dataset, or number of test examples) are never set
  against each other: each test set is a *family* with its own baseline and its own
  deltas and tests, and one line says which runs are apart.
- A seed group holds the runs whose configs differ only in seed (and in keys that do
  not change the experiment: NOT_EXPERIMENT, OBSERVERS). Within it every seed counts
  once: a second run of a seed is a duplicate, shown, never counted. A run enters a
  metric's statistics when bnexp.metrics gives it a value; the others are listed as not
  counted, with why. Diverged and failed-to-learn runs are counted in every sentence,
  table and JSON entry (`n_diverged`, `n_failed`).
- Each group is tested against its family's baseline group by bnexp.stats
  (`compare_family`, via `compare_to_baselines`: paired on matched seeds, else Welch, Fisher's exact test for a 0/1
  metric; Holm-adjusted when a family holds more than one comparison; no p-value below
  3 seeds or at zero variance).
- A delta is coloured better or worse only where its group is distinguishable from
  the baseline's group on the first metric: a colour is a claim, and only the test can back one.

`--last N` is bnexp.metrics': the mean of a run's last N evaluations, for every metric
that uses evaluations; a run with fewer is not counted.

The package, by job: `runs` (finding and loading runs, the unreadable ones not counted),
`configs` (config diff, seed groups, labels), `groups` (per-run values and deltas, seed
groups' samples), `testing` (baselines, the Holm families and which test each comparison
takes) and `pivot`; this module builds the `Comparison` the command reports. Every public
name is importable from `bnexp.compare`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bnexp import metrics
from bnexp.compare.configs import (NOT_EXPERIMENT, OBSERVERS, TEST_SET, config_diff, differing_keys, path_labels,
                                   pivot_keys, run_labels, seed_groups)
from bnexp.compare.groups import (COLUMNS, METRIC, TABLE_METRICS, Column, Delta, Exclusion, Group, Row, Sample,
                                  column, delta, deltas, finite, make_group, make_sample, run_values, twin_note)
from bnexp.compare.pivot import Pivot, pivot
from bnexp.compare.runs import Run, hardware_note, load_run, load_runs, read_diagnostics
from bnexp.compare.testing import (FAILURES, GroupComparison, baseline_groups, compare_to_baselines, counted,
                                   failed_seeds, not_comparable, ranked_call, set_deltas)
from bnexp.errors import UsageError

__all__ = ["COLUMNS", "FAILURES", "METRIC", "NOT_EXPERIMENT", "OBSERVERS", "TABLE_METRICS", "TEST_SET", "Column",
           "Comparison", "Delta", "Exclusion", "Group", "GroupComparison", "Pivot", "Row", "Run", "Sample",
           "baseline_groups", "column", "compare", "compare_to_baselines", "config_diff", "counted", "delta", "deltas",
           "differing_keys", "failed_seeds", "finite", "hardware_note", "load_run", "load_runs", "make_group",
           "make_sample", "not_comparable", "path_labels", "pivot", "pivot_keys", "ranked_call", "read_diagnostics",
           "run_labels", "run_values", "seed_groups", "set_deltas", "twin_note"]


@dataclass
class Comparison:
    """Everything `bnexp compare` reports; bnexp.present only formats it.

    `refs`: the metrics compared (--metric), each its own Holm family per test set.
    """

    rows: list[Row]
    diff: list[tuple[str, list[str]]]
    groups: list[Group]
    comparisons: list[GroupComparison]
    not_comparable: list[str]
    threshold: float
    last: int
    pivot: Pivot | None = None
    hardware_note: str | None = None  # set when the runs come from more than one CPU
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (run path, why): listed, not counted
    refs: list[metrics.Ref] = field(default_factory=lambda: [metrics.Ref(metrics.get(METRIC))])
    pivots: list[Pivot] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)

    def label(self, column: Column) -> str:
        return column.label.format(threshold=self.threshold)

    def ref_label(self, ref: metrics.Ref) -> str:
        return ref.label(self.threshold)

    @property
    def families(self) -> int:
        return len({g.test_set for g in self.groups})

    @property
    def extra_columns(self) -> list[Column]:
        """Columns of compared metrics that the per-run table does not already have."""
        return [Column.of(r) for r in self.refs if r.name not in TABLE_METRICS]


def compare(runs: list[Run], *, threshold: float = 0.97, last: int = 1, all_keys: bool = False,
            pivot_rows: str | None = None, pivot_columns: str | None = None,
            metric: list[str] | None = None, baseline: str | None = None,
            unreadable: list[tuple[str, str]] | None = None) -> Comparison:
    """Build the whole report: each metric of `metric` (names, default final test accuracy)
    tested group against baseline group; the baseline is the first run's group (of its
    test set) unless `baseline` names grid values (`key=value,key=value`) or a run path."""
    refs = list({r.name: r for r in (metrics.parse(m) for m in (metric or [METRIC]))}.values())
    read_diagnostics(runs, refs)
    labels = path_labels([r.path for r in runs])
    rows = [Row(run, label, run_values(run, threshold, last, refs)) for run, label in zip(runs, labels)]
    groups = [make_group(label, [rows[i] for i in idx], refs, threshold, last) for label, idx in seed_groups(runs)]
    bases = baseline_groups(groups, baseline)
    comparisons = compare_to_baselines(groups, refs, bases)
    first = refs[0].name
    for g in comparisons:
        if g.metric == first:
            for row in g.group.rows:
                row.distinguishable = g.verdict == "distinguishable"
    for group in groups:
        for row in group.rows:
            row.group = group.label
    set_deltas(rows, bases, baseline)
    comp = Comparison(rows, config_diff(runs, all_keys), groups, comparisons, not_comparable(groups),
                      threshold, last, refs=refs, baselines=[b.label for b in bases.values()])
    comp.hardware_note = hardware_note(runs)
    comp.unreadable = list(unreadable or [])
    if pivot_rows is not None:
        comp.pivots = [pivot(groups, pivot_rows, pivot_columns, r.name) for r in refs]
        comp.pivot = comp.pivots[0]
    elif pivot_columns is not None:
        raise UsageError("--columns needs --pivot ROW_KEY")
    return comp