"""Seed groups and their metrics: per-run values and deltas, one value per distinct seed."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

from bnexp import metrics
from bnexp.compare.runs import Run
from bnexp.rundir import provenance
from bnexp.status import RESULTS, Status


METRIC = metrics.DEFAULT  # what the seed groups are tested on unless --metric says otherwise


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


def column(key: str) -> Column:
    return next((c for c in COLUMNS if c.key == key), None) or Column.of(metrics.parse(key))
