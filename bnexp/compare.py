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
  (`compare_family`: paired on matched seeds, else Welch, Fisher's exact test for a 0/1
  metric; Holm-adjusted when a family holds more than one comparison; no p-value below
  3 seeds or at zero variance).
- A delta is coloured better or worse only where its group is distinguishable from
  the baseline's group on the first metric: a colour is a claim, and only the test can back one.

`--last N` is bnexp.metrics': the mean of a run's last N evaluations, for every metric
that uses evaluations; a run with fewer is not counted.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bnexp import metrics, rundir
from bnexp.config import flatten, yaml_flow
from bnexp.formats import MISSING  # also a config key one run's version of bnexp did not have
from bnexp.errors import RunDirError, RunFileError, UsageError
from bnexp.rundir import Summary, provenance
from bnexp.status import RESULTS, Status
from bnexp.wording import comparison_sentence

if TYPE_CHECKING:  # imported at run time only when groups are compared: it imports SciPy
    from bnexp import stats

# Keys that tell seeds of one experiment apart without changing the experiment
# (diagnostics and the train-set evaluation only observe a run: they change none of
# its training numbers).
NOT_EXPERIMENT = ("seed", "name", "data.dir")
OBSERVERS = ("diagnostics.", "train.eval_train_examples")
TEST_SET = "test set"  # the pseudo-key that keeps runs of different test sets apart
METRIC = metrics.DEFAULT  # what the seed groups are tested on unless --metric says otherwise


@dataclass
class Run:
    """One run directory as read from disk; `config` is flattened to dotted keys with flow-style values.

    `diagnostics` holds the tables read so far (compare reads those its metrics need).
    """

    path: Path
    config: dict[str, str]
    summary: Summary
    metrics: list[dict]
    evals: dict = field(default_factory=dict)
    diagnostics: dict[str, list[dict]] = field(default_factory=dict)

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

    def data(self) -> metrics.RunData:
        """What bnexp.metrics reads of this run."""
        return metrics.RunData(self.status, self.summary.to_json(), self.metrics, self.diagnostics, self.evals)

    @property
    def outcome(self) -> str:
        """completed, failed (to learn), diverged, or the status of a run without a result."""
        return metrics.outcome(self.data())


@dataclass(frozen=True)
class Column:
    """A metrics-table column: a metric (bnexp.metrics) with its selector, and how it is shown.

    `delta` is "diff" (value − baseline) or "ratio" (value / baseline: times and
    throughput scale, so a ratio reads better than a difference). `better` is +1
    when higher is better, −1 when lower is better, 0 when neither. `kind` is the
    unit bnexp.present formats by (fraction, loss, count, seconds, rate, number).
    """

    key: str
    label: str
    delta: str
    better: int
    kind: str
    ref: metrics.Ref | None = None

    @classmethod
    def of(cls, ref: metrics.Ref) -> "Column":
        m = ref.metric
        label = m.label + "".join(f" {k} {v}" for k, v in ref.selector)
        return cls(ref.name, label, m.delta, m.better, m.unit, ref)


# The per-run table's columns: every metric a run's own files give.
TABLE_METRICS = ("final_test_accuracy", "best_test_accuracy", "final_test_loss", "final_train_set_accuracy",
                 "generalization_gap", "steps", "seconds_per_epoch", "examples_per_second", "steps_to_threshold")
COLUMNS = tuple(Column.of(metrics.Ref(metrics.get(name))) for name in TABLE_METRICS)


@dataclass(frozen=True)
class Delta:
    """A value against the baseline; `verdict` is the direction: +1 better, −1 worse, 0 neither."""

    value: float | None
    verdict: int


@dataclass
class Row:
    """One run's line in the metrics table; a baseline row has no deltas.

    `values` are the run's metrics as it recorded them, whatever its status (a group's
    statistics apply bnexp.metrics' rules on top). `distinguishable`: whether the run's
    seed group differs from its baseline's beyond seed noise on the first metric compared
    (the colour of its deltas depends on it).
    """

    run: Run
    label: str
    values: dict[str, float | None]
    deltas: dict[str, Delta] = field(default_factory=dict)
    group: str = ""
    distinguishable: bool = False


@dataclass(frozen=True)
class Exclusion:
    """A run of a group left out of one metric's statistics, and why."""

    row: Row
    why: str
    duplicate: bool = False


@dataclass(frozen=True)
class Sample:
    """One group's values of one metric: one per distinct seed, and the runs not counted.

    `censored`: time-to-event values that are a run's last step (the event never came).
    """

    ref: metrics.Ref
    used: list[Row]
    values: dict[int, float]
    excluded: list[Exclusion]
    censored_seeds: frozenset = frozenset()

    @property
    def n(self) -> int:
        return len(self.used)

    @property
    def censored(self) -> int:
        return len(self.censored_seeds)

    def numbers(self) -> list[float]:
        return list(self.values.values())


@dataclass(frozen=True)
class Group:
    """Runs whose configs differ only in seed (and name, data dir, observers), on one test set.

    `samples` holds, for each metric compared, one value per distinct seed: what the
    statistics see. `outcomes` maps each distinct seed with a result to how its first run
    ended (completed, failed, diverged): diverged and failed runs are counted, never dropped.
    The properties without a metric (`used`, `excluded`, `n`) are those of the first metric.
    """

    label: str
    rows: list[Row]
    test_set: str
    samples: dict[str, Sample]
    outcomes: dict[str, str]

    @property
    def primary(self) -> Sample:
        return next(iter(self.samples.values()))

    def sample(self, key: str | None = None) -> Sample:
        return self.primary if key is None else self.samples[key]

    @property
    def used(self) -> list[Row]:
        return self.primary.used

    @property
    def excluded(self) -> list[Exclusion]:
        return self.primary.excluded

    @property
    def n(self) -> int:
        return self.primary.n

    @property
    def n_seeds(self) -> int:
        """Distinct seeds among the group's runs, whatever their status."""
        return len({r.run.seed for r in self.rows})

    @property
    def n_runs(self) -> int:
        """Distinct seeds with a result (completed or diverged)."""
        return len(self.outcomes)

    @property
    def n_diverged(self) -> int:
        return sum(o == Status.DIVERGED for o in self.outcomes.values())

    @property
    def n_failed(self) -> int:
        """Completed runs that failed to learn (bnexp.metrics.failed_to_learn)."""
        return sum(o == metrics.FAILED_TO_LEARN for o in self.outcomes.values())

    @property
    def duplicates(self) -> list[Exclusion]:
        return [e for e in self.excluded if e.duplicate]

    def by_seed(self, key: str | None = None) -> dict[int, float]:
        return dict(self.sample(key).values)

    def numbers(self, key: str) -> list[float]:
        """The values of `key`: a compared metric's sample, else the runs' table values."""
        if key in self.samples:
            return self.samples[key].numbers()
        return [r.values[key] for r in self.used if finite(r.values.get(key))]

    def mean(self, key: str) -> float | None:
        xs = self.numbers(key)
        return statistics.fmean(xs) if xs else None

    def std(self, key: str) -> float | None:
        """Sample standard deviation (ddof=1): the spread a new seed would show."""
        xs = self.numbers(key)
        return statistics.stdev(xs) if len(xs) > 1 else None

    def failures(self) -> str:
        """'2 diverged, 1 failed to learn', or '' when every run learned."""
        parts = [f"{self.n_diverged} diverged"] * bool(self.n_diverged)
        parts += [f"{self.n_failed} failed to learn"] * bool(self.n_failed)
        return ", ".join(parts)


@dataclass(frozen=True)
class GroupComparison:
    """One group against its family's baseline group, on one metric.

    `result` is bnexp.stats' SeedComparison, or None when a side has no usable run.
    `family` names the Holm family: the metric, on one test set.
    """

    baseline: Group
    group: Group
    result: stats.SeedComparison | None
    ref: metrics.Ref = metrics.Ref(metrics.get(METRIC))
    family: str = ""

    @property
    def metric(self) -> str:
        return self.ref.name

    @property
    def verdict(self) -> str:
        return self.result.verdict if self.result else "too_few_seeds"

    @property
    def excluded(self) -> list[Exclusion]:
        return self.baseline.sample(self.metric).excluded + self.group.sample(self.metric).excluded

    def counts(self) -> str:
        """How many runs each side counts, and how many diverged or failed: said in every sentence."""
        def side(g: Group) -> str:
            s = g.sample(self.metric)
            text = f"{g.label}: {s.n} of {g.n_seeds}"
            extra = [g.failures()] if g.failures() else []
            if s.censored:
                extra.append(f"{s.censored} censored")
            return text + (f", {', '.join(extra)}" if extra else "")

        return f"runs counted: {side(self.group)}; {side(self.baseline)}"

    def everyone_counted(self) -> bool:
        """Whether every run of both sides is in the test: then the sentence need not count them."""
        return all(g.sample(self.metric).n == g.n_seeds and not g.failures() and not g.sample(self.metric).censored
                   for g in (self.baseline, self.group))

    def sentence(self) -> str:
        """bnexp.wording's verdict line for the result, with the runs each side counts whenever one is left
        out, diverged, failed to learn or censored."""
        if self.result is None:
            core = "no run with a value on one side: nothing to compare"
        else:
            core = comparison_sentence(self.result)
        return core if self.everyone_counted() else f"{core} ({self.counts()})"

    def to_dict(self) -> dict:
        """A `comparisons` entry of `compare --format json`; nulls where there is no p-value."""
        numbers = self.result.to_dict() if self.result else {
            "test": "none", "p": None, "p_adjusted": None, "difference": None, "ci_low": None, "ci_high": None,
            "ci_level": None, "ci_of": None, "effect_size": None, "n_a": self.baseline.sample(self.metric).n,
            "n_b": self.group.sample(self.metric).n, "verdict": "too_few_seeds", "seeds_needed": None,
            "advice_reason": None, "note": self.sentence()}
        sides = {}
        for key, g in (("a", self.baseline), ("b", self.group)):
            sides.update({f"n_runs_{key}": g.n_runs, f"n_diverged_{key}": g.n_diverged,
                          f"n_failed_{key}": g.n_failed, f"n_censored_{key}": g.sample(self.metric).censored})
        return {"a": self.baseline.label, "b": self.group.label, "metric": self.metric, "family": self.family,
                **numbers, "n_diverged": self.baseline.n_diverged + self.group.n_diverged,
                "n_failed": self.baseline.n_failed + self.group.n_failed, **sides,
                "sentence": self.sentence(),
                "excluded": [{"path": str(e.row.run.path), "why": e.why} for e in self.excluded]}


@dataclass(frozen=True)
class Pivot:
    """One metric over seeds in a table of grid values: rows by `row_keys`, columns by `column_key`.

    `cells[i][j]` is the group at row i, column j, or None where the grid has no run.
    """

    row_keys: list[str]
    column_key: str | None
    row_values: list[tuple[str, ...]]
    column_values: list[str]
    cells: list[list[Group | None]]
    metric: str = METRIC


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


# --- finding and loading runs ---------------------------------------------------


def load_run(path: Path) -> Run:
    """Read one run directory; a corrupt file raises RunFileError naming it."""
    run = rundir.RunDir(path)
    config = {key: yaml_flow(value) for key, value in flatten(run.read_config().model_dump(mode="json")).items()}
    return Run(Path(path), config, run.read_summary(), run.read_metrics(), run.read_evals())


def load_runs(paths: list[str], unreadable: list[tuple[str, str]] | None = None) -> list[Run]:
    """The runs under `paths` (runs, or directories holding runs at any depth), in the
    order named (a sweep's in grid order): at least two.

    With `unreadable`, a run whose files cannot be read (a missing summary, an empty
    cell, a corrupt file) is appended to it as (path, why) instead of stopping the
    comparison: it is listed as not counted, and the other runs are compared."""
    found = rundir.find_runs(paths)
    if len(found) < 2:
        raise RunDirError(f"compare needs at least two runs, found one: {found[0]}")
    runs, errors = [], []
    for path in found:
        try:
            runs.append(load_run(path))
        except RunFileError as e:
            if unreadable is None:
                raise
            unreadable.append((str(path), str(e)))
            errors.append(e)
    if len(runs) < 2 and errors:  # nothing left to compare: the first unreadable file is the error
        raise errors[0]
    return runs


def read_diagnostics(runs: list[Run], refs: list[metrics.Ref]) -> None:
    """Read the diagnostics tables `refs` need into each run (once)."""
    tables = {r.metric.name.partition(".")[0] for r in refs if r.metric.name in metrics.DIAGNOSTICS_NAMES}
    for run in runs:
        holder = rundir.RunDir(run.path)
        for table in tables - run.diagnostics.keys():
            run.diagnostics[table] = holder.read_diagnostics(table)


# --- the comparison ---------------------------------------------------------------


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
    comparisons = compare_groups(groups, refs, bases)
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


def make_group(label: str, rows: list[Row], refs: list[metrics.Ref], threshold: float = 0.97,
               last: int = 1) -> Group:
    """A seed group: for each metric one value per distinct seed; the other runs are excluded with why."""
    outcomes: dict[str, str] = {}
    for row in rows:
        if row.run.status in RESULTS:
            outcomes.setdefault(row.run.seed, row.run.outcome)
    samples = {r.name: make_sample(r, rows, threshold, last) for r in refs}
    return Group(label, rows, rows[0].run.test_set, samples, outcomes)


def make_sample(ref: metrics.Ref, rows: list[Row], threshold: float, last: int) -> Sample:
    """One value per seed of `ref` (bnexp.metrics.value): the first run of a seed with a value
    stands for it; a later one is a duplicate, shown, never counted."""
    used, values, excluded, by_seed, censored = [], {}, [], {}, set()
    for row in rows:
        v = metrics.value(ref, row.run.data(), last=last, threshold=threshold)
        if v.value is None:
            excluded.append(Exclusion(row, v.note or "no value"))
        elif row.run.seed in by_seed:
            first = by_seed[row.run.seed]
            why = twin_note(first, row, values.get(int(row.run.seed)), v.value)
            if why.startswith("conflicting"):  # neither can stand for the seed
                values.pop(int(row.run.seed), None)
                censored.discard(int(row.run.seed))
                if first in used:
                    used.remove(first)
                    excluded.append(Exclusion(first, why))
            excluded.append(Exclusion(row, why, duplicate=not why.startswith("conflicting")))
        else:
            by_seed[row.run.seed] = row
            used.append(row)
            values[int(row.run.seed)] = v.value
            if v.censored:
                censored.add(int(row.run.seed))
    return Sample(ref, used, values, excluded, frozenset(censored))


def twin_note(first: Row, twin: Row, first_value: float | None, value: float) -> str:
    """Why a second run of a seed is not counted. Runs of one config and seed are
    bit-identical on the same hardware, so twins there that differ beyond float tolerance
    contradict each other: both are left out. Twins from different CPUs may differ in the
    last bits (docs/reference.md, What is reproducible where): the first counts, once."""
    seed = twin.run.seed
    same = first_value is not None and math.isclose(first_value, value, rel_tol=1e-6, abs_tol=1e-9)
    keys = [provenance.same_hardware_key(r.run.summary.hardware) for r in (first, twin)]
    if first_value is None:  # the seed's twins already conflict
        return f"conflicting duplicates of seed {seed}: left out with {first.label}"
    if same:
        return f"duplicate of seed {seed} ({first.label}): counted once"
    if None in keys or keys[0] != keys[1]:
        where = "hardware not recorded" if None in keys else "from other hardware"
        return (f"duplicate of seed {seed} ({first.label}), {where}, {_num_text(value)} against "
                f"{_num_text(first_value)}: counted once")
    return (f"conflicting duplicates of seed {seed}: {first.label} {_num_text(first_value)}, {twin.label} "
            f"{_num_text(value)} on the same hardware; neither is counted")


def _num_text(x: float) -> str:
    return f"{x:.6g}"


def baseline_groups(groups: list[Group], baseline: str | None) -> dict[str, Group]:
    """Test set → its baseline group: the first group of each test set, or the one `baseline` picks.

    `baseline` is a run's path (its group), or grid values `key=value[,key=value]` that
    must pick exactly one group; UsageError names the allowed keys or values otherwise.
    """
    firsts = {}
    for g in groups:
        firsts.setdefault(g.test_set, g)
    if baseline is None:
        return firsts
    chosen = _groups_of_path(groups, baseline) if Path(baseline).exists() else _groups_of_values(groups, baseline)
    return firsts | {g.test_set: g for g in chosen}


def _groups_of_path(groups: list[Group], path: str) -> list[Group]:
    wanted = Path(path).resolve()
    found = [g for g in groups if any(r.run.path.resolve() == wanted for r in g.rows)]
    if not found:
        raise UsageError(f"--baseline {path}: not one of the runs compared")
    return found


ASSIGNMENT = re.compile(r",(?=\s*[A-Za-z_][\w.]*=)")


def _groups_of_values(groups: list[Group], text: str) -> list[Group]:
    """The groups whose configs hold every `key=value` of `text` (values compared as YAML)."""
    import yaml

    allowed = pivot_keys(groups)
    wanted = {}
    for part in ASSIGNMENT.split(text):
        key, sep, value = part.strip().partition("=")
        if not sep or key not in allowed:
            choices = ", ".join(allowed) or "none: the runs differ only in seed"
            raise UsageError(f"--baseline {text}: name a run directory, or grid values KEY=VALUE of the keys that"
                             f" differ between groups ({choices})")
        wanted[key] = _yaml_value(yaml, value)
    found = [g for g in groups if all(_yaml_value(yaml, _experiment(g.rows[0].run).get(k, MISSING)) == v
                                      for k, v in wanted.items())]
    if not found:
        values = {k: sorted({_experiment(g.rows[0].run).get(k, MISSING) for g in groups}) for k in wanted}
        raise UsageError(f"--baseline {text}: matches no group ("
                         + "; ".join(f"{k} has {', '.join(vs)}" for k, vs in values.items()) + ")")
    per_set: dict[str, list[Group]] = {}
    for g in found:
        per_set.setdefault(g.test_set, []).append(g)
    for matches in per_set.values():
        if len(matches) > 1:
            raise UsageError(f"--baseline {text}: matches {len(matches)} groups ("
                             + "; ".join(g.label for g in matches) + "): also name the keys that tell them apart")
    return found


def _yaml_value(yaml, text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def compare_groups(groups: list[Group], refs: list[metrics.Ref] | None = None,
                   bases: dict[str, Group] | None = None) -> list[GroupComparison]:
    """Each group against its test set's baseline group, per metric: one Holm family per
    metric and test set. A binary metric is tested by Fisher's exact test."""
    refs = refs or [metrics.Ref(metrics.get(METRIC))]
    bases = bases or baseline_groups(groups, None)
    out = []
    for ref in refs:
        for test_set in dict.fromkeys(g.test_set for g in groups):
            baseline = bases[test_set]
            others = [g for g in groups if g.test_set == test_set and g is not baseline]
            if not others:
                continue
            from bnexp import stats  # deferred: it imports SciPy

            key = ref.name
            testable = [g for g in others if counted(g, ref) and counted(baseline, ref)]
            ranked = [ranked_call(baseline, g, ref) for g in testable]
            results = dict(zip(map(id, testable),
                               stats.compare_family(baseline.by_seed(key), [g.by_seed(key) for g in testable],
                                                    binary=ref.metric.kind == "binary", ranked=ranked)
                               if testable else []))
            family = f"{ref.name} on {test_set}"
            out += [GroupComparison(baseline, g, results.get(id(g)), ref, family) for g in others]
    return out


FAILURES = (Status.DIVERGED, metrics.FAILED_TO_LEARN)  # a run's outcome that ranks worst in a test


def failed_seeds(g: Group) -> set[int]:
    """Seeds whose run diverged or failed to learn: outcomes, the worst ones, not missing data."""
    return {int(seed) for seed, outcome in g.outcomes.items() if outcome in FAILURES}


def counted(g: Group, ref: metrics.Ref) -> bool:
    """Whether a group has anything to test on `ref`: a value, or (not binary) a failure."""
    return bool(g.sample(ref.name).n or (ref.metric.kind != "binary" and failed_seeds(g)))


def ranked_call(base: Group, group: Group, ref: metrics.Ref) -> dict | None:
    """bnexp.stats.compare_outcomes' arguments when a t-test cannot take the data: a side
    holds failed runs (ranked worst) or the metric is a time to an event (censored at a
    run's last step); None otherwise. Paired on matched seeds, except times to an event."""
    kind = ref.metric.kind
    if kind == "binary" or (kind != "time_to_event" and not (failed_seeds(base) or failed_seeds(group))):
        return None

    def side(g: Group) -> tuple[list[int], list[float], list[bool], list[bool]]:
        sample, failed = g.sample(ref.name), failed_seeds(g)
        seeds = sorted(set(sample.values) | failed)
        return (seeds, [math.nan if s in failed else sample.values[s] for s in seeds], [s in failed for s in seeds],
                [s in sample.censored_seeds and s not in failed for s in seeds])

    seeds_a, a, failed_a, censored_a = side(base)
    seeds_b, b, failed_b, censored_b = side(group)
    return dict(a=a, b=b, kind=kind, failed_a=failed_a, failed_b=failed_b, censored_a=censored_a,
                censored_b=censored_b, paired=seeds_a == seeds_b and kind != "time_to_event",
                higher_is_better=ref.metric.better >= 0)


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


def set_deltas(rows: list[Row], bases: dict[str, Group] | None = None, baseline: str | None = None) -> None:
    """Each row against its test set's baseline row: the run `baseline` names, else the first
    row of the baseline group (rows of other test sets are no baseline)."""
    named = Path(baseline).resolve() if baseline is not None and Path(baseline).exists() else None
    base_rows: dict[str, Row] = {}
    for test_set, group in (bases or {}).items():
        base_rows[test_set] = next((r for r in group.rows if named is not None and r.run.path.resolve() == named),
                                   group.rows[0])
    for row in rows:
        base = base_rows.setdefault(row.run.test_set, row)
        if base is not row:
            row.deltas = deltas(base.values, row.values)


def config_diff(runs: list[Run], all_keys: bool = False) -> list[tuple[str, list[str]]]:
    """(key, one value per run) for the keys that differ, or every key with `all_keys`."""
    table = [(key, [r.config.get(key, MISSING) for r in runs]) for key in _keys(runs)]
    return [(k, vs) for k, vs in table if all_keys or len(set(vs)) > 1]


def _keys(runs: list[Run]) -> list[str]:
    """All config keys in the order the configs list them (dict keeps first sight)."""
    return list(dict.fromkeys(k for r in runs for k in r.config))


def run_values(run: Run, threshold: float, last: int, refs: list[metrics.Ref] = ()) -> dict[str, float | None]:
    """The metrics-table numbers for one run as it recorded them, whatever its status
    (bnexp.metrics.value; a time to threshold never reached is None here)."""
    recorded = metrics.RunData(RESULTS[0], run.summary.to_json(), run.metrics, run.diagnostics, run.evals)
    out = {}
    for column in [*COLUMNS, *(Column.of(r) for r in refs if r.name not in TABLE_METRICS)]:
        binary = column.ref.metric.kind == "binary"  # a run's status is what a 0/1 metric records
        v = metrics.value(column.ref, run.data() if binary else recorded, last=last, threshold=threshold)
        out[column.key] = None if v.censored else v.value
    return out


def deltas(base: dict[str, float | None], values: dict[str, float | None]) -> dict[str, Delta]:
    columns = {c.key: c for c in COLUMNS}
    return {k: delta(columns.get(k) or Column.of(metrics.parse(k)), base.get(k), v) for k, v in values.items()}


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


def pivot(groups: list[Group], row_key: str, column_key: str | None, metric: str = METRIC) -> Pivot:
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
    return Pivot(row_keys, column_key, row_values, column_values, cells, metric)


def pivot_keys(groups: list[Group]) -> list[str]:
    """The config keys a pivot of `groups` may take: those whose values differ between groups."""
    return [k for k in differing_keys([_experiment(g.rows[0].run) for g in groups]) if k != TEST_SET]


def column(key: str) -> Column:
    return next((c for c in COLUMNS if c.key == key), None) or Column.of(metrics.parse(key))
