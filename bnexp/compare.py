"""Compare runs: config diff, metrics against a baseline, seed groups and their statistics.

This is analysis only: it reads run directories through bnexp.rundir and returns data;
bnexp.present formats it. Nothing here prints or imports TensorFlow, so `bnexp compare`
answers at once. bnexp.stats (and with it SciPy) is imported only when two seed groups
are to be compared, because importing it costs more than the rest of the command.

How compare decides (the README's "How compare decides" says the same for users):

- The baseline is the first run named on the command line; within a folder, the first
  run in natural order, within a sweep the first point in grid order (bnexp.rundir).
- Runs whose test sets differ (dataset, or number of test examples) are never set
  against each other: each test set is a *family* with its own baseline (the family's
  first run) and its own deltas and tests, and one line says which runs are apart.
- A seed group holds the runs whose configs differ only in seed (and in keys that do
  not change the experiment: NOT_EXPERIMENT, OBSERVERS). Within it every seed counts
  once: a second run of a seed is a duplicate, shown, never counted. Only completed
  runs with a final test accuracy enter the statistics; the others are shown as
  excluded, with why.
- Each group is tested against its family's baseline group by bnexp.stats
  (`compare_family`: paired on matched seeds, else Welch; Holm-adjusted when a family
  holds more than one comparison; no p-value below 3 seeds or at zero variance).
- A delta is coloured better or worse only where its group is distinguishable from
  the baseline's group: a colour is a claim, and only the test can back one.

A run's *final* test accuracy (and loss) is the mean of its last `last` evaluations:
one evaluation is a noisy estimate of where a training run ended, and the BN study
compares the mean of the last five.
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bnexp import rundir
from bnexp.config import flatten, yaml_flow
from bnexp.errors import RunDirError, UsageError
from bnexp.rundir import Summary, provenance

if TYPE_CHECKING:  # imported at run time only when groups are compared: it imports SciPy
    from bnexp import stats

# Keys that tell seeds of one experiment apart without changing the experiment
# (diagnostics and the train-set evaluation only observe a run: they change none of
# its training numbers).
NOT_EXPERIMENT = ("seed", "name", "data.dir")
OBSERVERS = ("diagnostics.", "train.eval_train_examples")
MISSING = "—"  # a config key one run's version of bnexp did not have
TEST_SET = "test set"  # the pseudo-key that keeps runs of different test sets apart
METRIC = "final_test_accuracy"  # what the seed groups are tested on


@dataclass(frozen=True)
class Run:
    """One run directory as read from disk; `config` is flattened to dotted keys with flow-style values."""

    path: Path
    config: dict[str, str]
    summary: Summary
    metrics: list[dict]

    @property
    def status(self) -> str:
        return self.summary.status or "unknown"

    @property
    def test_set(self) -> str:
        """The data a run's test accuracy is measured on: dataset and number of test examples."""
        data = self.summary.data or {}
        dataset = data.get("dataset") or self.config.get("data.dataset", MISSING)
        n = data.get("test_examples")
        return f"{dataset} ({'?' if n is None else f'{n:,}'} test examples)"

    @property
    def seed(self) -> str:
        return self.config.get("seed", MISSING)


@dataclass(frozen=True)
class Column:
    """A metrics-table column: how its delta is taken and which direction is better.

    `delta` is "diff" (value − baseline) or "ratio" (value / baseline: times and
    throughput scale, so a ratio reads better than a difference). `better` is +1
    when higher is better, −1 when lower is better, 0 when neither (a setting, or a
    measurement such as the train-test gap that is no goal in itself).
    """

    key: str
    label: str
    delta: str
    better: int
    kind: str  # what the number is (fraction, loss, count, seconds, rate): bnexp.present formats by it


COLUMNS = (
    Column("final_test_accuracy", "final acc", "diff", +1, "fraction"),
    Column("best_test_accuracy", "best acc", "diff", +1, "fraction"),
    Column("final_test_loss", "final loss", "diff", -1, "loss"),
    # On a fixed training subset in inference mode, like the test set; not the metrics file's
    # train_accuracy, which is a running mean over training batches in training mode.
    Column("final_train_set_accuracy", "train-set acc", "diff", 0, "fraction"),
    Column("generalization_gap", "train−test gap", "diff", 0, "fraction"),
    Column("steps", "steps", "diff", 0, "count"),
    Column("seconds_per_epoch", "s/epoch", "ratio", -1, "seconds"),
    Column("examples_per_second", "examples/s", "ratio", +1, "rate"),
    Column("steps_to_threshold", "steps to {threshold:g}", "diff", -1, "count"),
)


@dataclass(frozen=True)
class Delta:
    """A value against the baseline; `verdict` is the direction: +1 better, −1 worse, 0 neither."""

    value: float | None
    verdict: int


@dataclass
class Row:
    """One run's line in the metrics table; a baseline row has no deltas.

    `distinguishable`: whether the run's seed group differs from its baseline's beyond
    seed noise (the colour of its deltas depends on it).
    """

    run: Run
    label: str
    values: dict[str, float | None]
    deltas: dict[str, Delta] = field(default_factory=dict)
    group: str = ""
    distinguishable: bool = False


@dataclass(frozen=True)
class Exclusion:
    """A run of a group left out of its statistics, and why."""

    row: Row
    why: str
    duplicate: bool = False


@dataclass(frozen=True)
class Group:
    """Runs whose configs differ only in seed (and name, data dir, observers), on one test set.

    `used` holds one completed run per distinct seed: what the statistics see.
    """

    label: str
    rows: list[Row]
    used: list[Row]
    excluded: list[Exclusion]
    test_set: str

    @property
    def n(self) -> int:
        return len(self.used)

    @property
    def duplicates(self) -> list[Exclusion]:
        return [e for e in self.excluded if e.duplicate]

    def by_seed(self, key: str = METRIC) -> dict[int, float]:
        return {int(r.run.seed): r.values[key] for r in self.used}

    def numbers(self, key: str) -> list[float]:
        return [r.values[key] for r in self.used if finite(r.values[key])]

    def mean(self, key: str) -> float | None:
        xs = self.numbers(key)
        return statistics.fmean(xs) if xs else None

    def std(self, key: str) -> float | None:
        """Sample standard deviation (ddof=1): the spread a new seed would show."""
        xs = self.numbers(key)
        return statistics.stdev(xs) if len(xs) > 1 else None


@dataclass(frozen=True)
class GroupComparison:
    """One group against its family's baseline group, on final test accuracy.

    `result` is bnexp.stats' Comparison, or None when a side has no usable run.
    """

    baseline: Group
    group: Group
    result: stats.Comparison | None

    @property
    def verdict(self) -> str:
        return self.result.verdict if self.result else "too_few_seeds"

    @property
    def excluded(self) -> list[Exclusion]:
        return self.baseline.excluded + self.group.excluded

    def sentence(self) -> str:
        if self.result is None:
            return "no completed run with a test accuracy on one side: nothing to compare"
        return self.result.sentence()

    def to_dict(self) -> dict:
        """A `comparisons` entry of `compare --format json`; nulls where there is no p-value."""
        numbers = self.result.to_dict() if self.result else {
            "test": "none", "p": None, "p_adjusted": None, "difference": None, "ci_low": None, "ci_high": None,
            "ci_level": None, "ci_of": None, "effect_size": None, "n_a": self.baseline.n, "n_b": self.group.n,
            "verdict": "too_few_seeds", "seeds_needed": None, "advice_reason": None, "note": self.sentence()}
        return {"a": self.baseline.label, "b": self.group.label, "metric": METRIC, **numbers,
                "sentence": self.sentence(),
                "excluded": [{"path": str(e.row.run.path), "why": e.why} for e in self.excluded]}


@dataclass(frozen=True)
class Pivot:
    """Final accuracy over seeds in a table of grid values: rows by `row_keys`, columns by `column_key`.

    `cells[i][j]` is the group at row i, column j, or None where the grid has no run.
    """

    row_keys: list[str]
    column_key: str | None
    row_values: list[tuple[str, ...]]
    column_values: list[str]
    cells: list[list[Group | None]]


@dataclass
class Comparison:
    """Everything `bnexp compare` reports; bnexp.present only formats it."""

    rows: list[Row]
    diff: list[tuple[str, list[str]]]
    groups: list[Group]
    comparisons: list[GroupComparison]
    not_comparable: list[str]
    threshold: float
    last: int
    pivot: Pivot | None = None
    hardware_note: str | None = None  # set when the runs come from more than one CPU

    def label(self, column: Column) -> str:
        return column.label.format(threshold=self.threshold)

    @property
    def families(self) -> int:
        return len({g.test_set for g in self.groups})


# --- finding and loading runs ---------------------------------------------------


def load_run(path: Path) -> Run:
    """Read one run directory; a corrupt file raises RunFileError naming it."""
    run = rundir.RunDir(path)
    config = {key: yaml_flow(value) for key, value in flatten(run.read_config().model_dump(mode="json")).items()}
    return Run(Path(path), config, run.read_summary(), run.read_metrics())


def load_runs(paths: list[str]) -> list[Run]:
    """The runs under `paths` (runs, or directories holding runs at any depth), in the
    order named (a sweep's in grid order): at least two."""
    found = rundir.find_runs(paths)
    if len(found) < 2:
        raise RunDirError(f"compare needs at least two runs, found one: {found[0]}")
    return [load_run(p) for p in found]


# --- the comparison ---------------------------------------------------------------


def compare(runs: list[Run], *, threshold: float = 0.97, last: int = 1, all_keys: bool = False,
            pivot_rows: str | None = None, pivot_columns: str | None = None) -> Comparison:
    """Build the whole report; the first run is the baseline (of its test set)."""
    labels = path_labels([r.path for r in runs])
    rows = [Row(run, label, run_values(run, threshold, last)) for run, label in zip(runs, labels)]
    groups = [make_group(label, [rows[i] for i in idx]) for label, idx in seed_groups(runs)]
    comparisons = compare_groups(groups)
    for g in comparisons:
        for row in g.group.rows:
            row.distinguishable = g.verdict == "distinguishable"
    for group in groups:
        for row in group.rows:
            row.group = group.label
    set_deltas(rows)
    comp = Comparison(rows, config_diff(runs, all_keys), groups, comparisons, not_comparable(groups),
                      threshold, last)
    comp.hardware_note = hardware_note(runs)
    if pivot_rows is not None:
        comp.pivot = pivot(groups, pivot_rows, pivot_columns)
    elif pivot_columns is not None:
        raise UsageError("--columns needs --pivot ROW_KEY")
    return comp


def make_group(label: str, rows: list[Row]) -> Group:
    """A seed group: one completed run per seed enters its statistics, the rest are excluded with why."""
    used, excluded, by_seed = [], [], {}
    for row in rows:
        why = _unusable(row)
        if why:
            excluded.append(Exclusion(row, why))
        elif row.run.seed in by_seed:
            first = by_seed[row.run.seed]
            excluded.append(Exclusion(row, f"duplicate of seed {row.run.seed} ({first.label}): counted once",
                                      duplicate=True))
        else:
            by_seed[row.run.seed] = row
            used.append(row)
    return Group(label, rows, used, excluded, rows[0].run.test_set)


def _unusable(row: Row) -> str | None:
    """Why a run cannot stand for its seed: it did not complete, or has no test accuracy.

    Where a run stopped is said for a run that may go on; a diverged run's summary
    message says at which step it diverged (its `steps` is where the check ran).
    """
    s = row.run.summary
    if row.run.status == "diverged":
        return "diverged"
    if row.run.status != "completed":
        return row.run.status + (f" at step {s.steps:,}" if s.steps is not None else "")
    if not finite(row.values[METRIC]):
        return "no final test accuracy"
    return None


def compare_groups(groups: list[Group]) -> list[GroupComparison]:
    """Each group against its test set's first group: one Holm family per test set."""
    out = []
    for test_set in dict.fromkeys(g.test_set for g in groups):
        baseline, *others = [g for g in groups if g.test_set == test_set]
        if not others:
            continue
        from bnexp import stats  # deferred: it imports SciPy

        testable = [g for g in others if g.n and baseline.n]
        results = dict(zip(map(id, testable),
                           stats.compare_family(baseline.by_seed(), [g.by_seed() for g in testable])
                           if testable else []))
        out += [GroupComparison(baseline, g, results.get(id(g))) for g in others]
    return out


def hardware_note(runs: list[Run]) -> str | None:
    """One line when the runs were made on more than one CPU, as their summaries record;
    runs of a bnexp that did not record it are left out of the question."""
    keys = {provenance.same_hardware_key(r.summary.hardware) for r in runs} - {None}
    return provenance.different_hardware_line(sorted(keys)) if len(keys) > 1 else None


def not_comparable(groups: list[Group]) -> list[str]:
    """One line per test set after the first: its runs are set only against each other."""
    sets = list(dict.fromkeys(g.test_set for g in groups))
    lines = []
    for test_set in sets[1:]:
        labels = [r.label for g in groups if g.test_set == test_set for r in g.rows]
        lines.append(f"{', '.join(labels)}: tested on {test_set}, not the baseline's {sets[0]}; "
                     "no delta or test against runs of another test set")
    return lines


def set_deltas(rows: list[Row]) -> None:
    """Each row against the first row of its test set (rows of other test sets are no baseline)."""
    baselines: dict[str, Row] = {}
    for row in rows:
        base = baselines.setdefault(row.run.test_set, row)
        if base is not row:
            row.deltas = deltas(base.values, row.values)


def config_diff(runs: list[Run], all_keys: bool = False) -> list[tuple[str, list[str]]]:
    """(key, one value per run) for the keys that differ, or every key with `all_keys`."""
    table = [(key, [r.config.get(key, MISSING) for r in runs]) for key in _keys(runs)]
    return [(k, vs) for k, vs in table if all_keys or len(set(vs)) > 1]


def _keys(runs: list[Run]) -> list[str]:
    """All config keys in the order the configs list them (dict keeps first sight)."""
    return list(dict.fromkeys(k for r in runs for k in r.config))


def run_values(run: Run, threshold: float, last: int) -> dict[str, float | None]:
    """The metrics-table numbers for one run, from its metrics rows where it has them, else its summary."""
    acc = [m["test_accuracy"] for m in run.metrics]
    loss = [m["test_loss"] for m in run.metrics]
    train_set = [m["train_set_accuracy"] for m in run.metrics if m.get("train_set_accuracy") is not None]
    s = run.summary
    final = _tail_mean(acc, last, s.test_accuracy)
    on_train = _tail_mean(train_set, last, s.train_set_accuracy)
    return {
        "final_test_accuracy": final,
        "best_test_accuracy": max(acc) if acc else s.best_test_accuracy,
        "final_test_loss": _tail_mean(loss, last, s.test_loss),
        "final_train_set_accuracy": on_train,
        "generalization_gap": on_train - final if finite(on_train) and finite(final) else None,
        "steps": s.steps if s.steps is not None else _last_step(run),
        "seconds_per_epoch": s.seconds_per_epoch,
        "examples_per_second": s.examples_per_second,
        "steps_to_threshold": steps_to_threshold(run.metrics, threshold),
    }


def _tail_mean(xs: list[float], last: int, fallback: float | None) -> float | None:
    return statistics.fmean(xs[-last:]) if xs else fallback


def _last_step(run: Run) -> int | None:
    return run.metrics[-1]["step"] if run.metrics else None


def steps_to_threshold(metrics: list[dict], threshold: float) -> int | None:
    """Step of the first evaluation at or above `threshold` test accuracy; None if never."""
    return next((m["step"] for m in metrics if m["test_accuracy"] >= threshold), None)


def deltas(base: dict[str, float | None], values: dict[str, float | None]) -> dict[str, Delta]:
    return {c.key: delta(c, base[c.key], values[c.key]) for c in COLUMNS}


def delta(column: Column, base: float | None, value: float | None) -> Delta:
    """Difference or ratio against the baseline, and whether it is an improvement."""
    if not (finite(base) and finite(value)):
        return Delta(None, 0)
    if column.delta == "ratio":
        if base == 0:
            return Delta(None, 0)
        d, change = value / base, value / base - 1
    else:
        d = change = value - base
    verdict = 0 if change == 0 else column.better * (1 if change > 0 else -1)
    return Delta(d, verdict)


def finite(x) -> bool:
    return x is not None and math.isfinite(x)


def seed_groups(runs: list[Run]) -> list[tuple[str, list[int]]]:
    """(label, indices into runs) for runs on one test set whose configs are equal without
    seed, name, data dir and observers, in order of first sight.

    The label names the config keys that tell the groups apart, in order of first sight.
    """
    by_key: dict[frozenset, list[int]] = {}
    for i, run in enumerate(runs):
        by_key.setdefault(frozenset(_experiment(run).items()), []).append(i)
    configs = [_experiment(runs[idx[0]]) for idx in by_key.values()]
    differing = _needed(differing_keys(configs), configs)
    return [(_assignments(c, differing) or "all runs", idx)
            for c, idx in zip(configs, by_key.values())]


def differing_keys(configs: list[dict[str, str]]) -> list[str]:
    return [k for k in dict.fromkeys(k for c in configs for k in c)
            if len({c.get(k, MISSING) for c in configs}) > 1]


def _needed(keys: list[str], configs: list[dict[str, str]], fixed: list[str] = ()) -> list[str]:
    """`keys` without the test set when the other keys (and `fixed`) already tell every
    config apart: usually data.dataset says it, and the label need not say it twice."""
    rest = [k for k in keys if k != TEST_SET]
    if len({tuple(c.get(k, MISSING) for k in [*rest, *fixed]) for c in configs}) == len(configs):
        return rest
    return keys


def _experiment(run: Run) -> dict[str, str]:
    """The keys that make the experiment, and the test set it is measured on."""
    keys = {k: v for k, v in run.config.items() if k not in NOT_EXPERIMENT and not k.startswith(OBSERVERS)}
    return keys | {TEST_SET: run.test_set}


def _assignments(config: dict[str, str], keys: list[str]) -> str:
    return ", ".join(f"{k}={config.get(k, MISSING)}" for k in keys)


def run_labels(runs: list[Run]) -> list[str]:
    """Legend labels from the config keys that differ, e.g. `model.norm.kind=batch, seed=1`.

    The name and data dir are left out because they restate the run rather than
    the experiment; when nothing else differs the run's path label is used.
    """
    keys = [k for k, _ in config_diff(runs) if k not in ("name", "data.dir")]
    fallback = path_labels([r.path for r in runs])
    return [_assignments(r.config, keys) or f for r, f in zip(runs, fallback)]


def path_labels(paths: list[Path]) -> list[str]:
    """Paths relative to their common parent: short, and still unique."""
    root = Path(os.path.commonpath([p.absolute() for p in paths]))
    rel = [str(p.absolute().relative_to(root)) for p in paths]
    return rel if all(r != "." for r in rel) else [str(p) for p in paths]


# --- the pivot ----------------------------------------------------------------------------


def pivot(groups: list[Group], row_key: str, column_key: str | None) -> Pivot:
    """Groups laid out by the values of `row_key` (down) and `column_key` (across).

    Keys that differ between groups but are in neither place join the row key, so a
    cell never mixes configs. UsageError names the allowed keys for any other key.
    """
    configs = [_experiment(g.rows[0].run) for g in groups]
    allowed = pivot_keys(groups)
    for option, key in (("--pivot", row_key), ("--columns", column_key)):
        if key is not None and key not in allowed:
            choices = ", ".join(allowed) if allowed else "none: the runs differ only in seed"
            raise UsageError(f"{option} {key}: not a config key that differs between these runs' groups "
                             f"(allowed: {choices})")
    if column_key == row_key:
        raise UsageError(f"--pivot and --columns name the same key {row_key}: choose two different keys")
    row_keys = _needed([row_key] + [k for k in differing_keys(configs) if k not in (row_key, column_key)],
                       configs, [column_key] if column_key else [])
    row_values = list(dict.fromkeys(tuple(c.get(k, MISSING) for k in row_keys) for c in configs))
    column_values = list(dict.fromkeys(c.get(column_key, MISSING) for c in configs)) if column_key else [""]
    cells = [[None] * len(column_values) for _ in row_values]
    for group, c in zip(groups, configs):
        i = row_values.index(tuple(c.get(k, MISSING) for k in row_keys))
        j = column_values.index(c.get(column_key, MISSING)) if column_key else 0
        cells[i][j] = group
    return Pivot(row_keys, column_key, row_values, column_values, cells)


def pivot_keys(groups: list[Group]) -> list[str]:
    """The config keys a pivot of `groups` may take: those whose values differ between groups."""
    return [k for k in differing_keys([_experiment(g.rows[0].run) for g in groups]) if k != TEST_SET]


def column(key: str) -> Column:
    return next(c for c in COLUMNS if c.key == key)
