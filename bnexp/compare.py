"""Compare runs: config diff, metrics against a baseline, seed groups, Welch's t-test.

This is analysis only: it reads run directories through bnexp.rundir and returns data;
bnexp.present formats it. Nothing here prints or imports TensorFlow, so `bnexp compare`
answers at once. SciPy is imported only when two seed groups are to be tested, because
importing it costs more than the rest of the command.

A run's *final* test accuracy (and loss) is the mean of its last `last` evaluations:
one evaluation is a noisy estimate of where a training run ended, and the BN study
compares the mean of the last five.
"""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from bnexp import rundir
from bnexp.config import flatten, yaml_flow
from bnexp.errors import RunDirError
from bnexp.rundir import Summary

# Keys that tell seeds of one experiment apart without changing the experiment
# (diagnostics only observe a run: they change none of its numbers).
NOT_EXPERIMENT = ("seed", "name", "data.dir")
OBSERVERS = ("diagnostics.",)
MISSING = "—"  # a config key one run's version of bnexp did not have
ALPHA = 0.05


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


@dataclass(frozen=True)
class Column:
    """A metrics-table column: how its delta is taken and which direction is better.

    `delta` is "diff" (value − baseline) or "ratio" (value / baseline: times and
    throughput scale, so a ratio reads better than a difference). `better` is +1
    when higher is better, −1 when lower is better, 0 when neither (a setting).
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
    Column("steps", "steps", "diff", 0, "count"),
    Column("seconds_per_epoch", "s/epoch", "ratio", -1, "seconds"),
    Column("examples_per_second", "examples/s", "ratio", +1, "rate"),
    Column("steps_to_threshold", "steps to {threshold:g}", "diff", -1, "count"),
)


@dataclass(frozen=True)
class Delta:
    """A value against the baseline; `verdict` is +1 better, −1 worse, 0 neither."""

    value: float | None
    verdict: int


@dataclass(frozen=True)
class Row:
    """One run's line in the metrics table; the baseline row has no deltas."""

    run: Run
    label: str
    values: dict[str, float | None]
    deltas: dict[str, Delta]


@dataclass(frozen=True)
class Group:
    """Runs whose configs differ only in seed (and name, data dir)."""

    label: str
    rows: list[Row]

    def numbers(self, key: str) -> list[float]:
        return [r.values[key] for r in self.rows if finite(r.values[key])]

    def mean(self, key: str) -> float | None:
        xs = self.numbers(key)
        return statistics.fmean(xs) if xs else None

    def std(self, key: str) -> float | None:
        """Sample standard deviation (ddof=1): the spread a new seed would show."""
        xs = self.numbers(key)
        return statistics.stdev(xs) if len(xs) > 1 else None


@dataclass(frozen=True)
class TTest:
    """Welch's t-test of final accuracy between two seed groups."""

    a: str
    b: str
    t: float
    p: float

    @property
    def distinguishable(self) -> bool | None:
        """Whether the difference is beyond seed noise at ALPHA; None when it cannot be tested."""
        return None if math.isnan(self.p) else self.p < ALPHA


@dataclass(frozen=True)
class Comparison:
    """Everything `bnexp compare` reports; bnexp.present only formats it."""

    rows: list[Row]
    diff: list[tuple[str, list[str]]]
    groups: list[Group]
    ttest: TTest | None
    threshold: float
    last: int

    def label(self, column: Column) -> str:
        return column.label.format(threshold=self.threshold)


# --- finding and loading runs ---------------------------------------------------


def load_run(path: Path) -> Run:
    """Read one run directory; a corrupt file raises RunFileError naming it."""
    run = rundir.RunDir(path)
    config = {key: yaml_flow(value) for key, value in flatten(run.read_config().model_dump(mode="json")).items()}
    return Run(Path(path), config, run.read_summary(), run.read_metrics())


def load_runs(paths: list[str]) -> list[Run]:
    """The runs under `paths` (runs, or directories holding runs at any depth): at least two."""
    found = rundir.find_runs(paths)
    if len(found) < 2:
        raise RunDirError(f"compare needs at least two runs, found one: {found[0]}")
    return [load_run(p) for p in found]


# --- the comparison ---------------------------------------------------------------


def compare(runs: list[Run], *, threshold: float = 0.97, last: int = 1,
            all_keys: bool = False) -> Comparison:
    """Build the whole report; the first run is the baseline."""
    labels = path_labels([r.path for r in runs])
    values = [run_values(r, threshold, last) for r in runs]
    rows = [Row(run, label, v, deltas(values[0], v) if i else {})
            for i, (run, label, v) in enumerate(zip(runs, labels, values))]
    groups = [Group(label, [rows[i] for i in idx]) for label, idx in seed_groups(runs)]
    if all(len(g.rows) == 1 for g in groups):
        groups = []
    return Comparison(rows, config_diff(runs, all_keys), groups, welch_ttest(groups),
                      threshold, last)


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
    s = run.summary
    return {
        "final_test_accuracy": _tail_mean(acc, last, s.test_accuracy),
        "best_test_accuracy": max(acc) if acc else s.best_test_accuracy,
        "final_test_loss": _tail_mean(loss, last, s.test_loss),
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
    """(label, indices into runs) for runs whose configs are equal without seed, name, data dir.

    The label names the config keys that tell the groups apart, in order of first sight.
    """
    by_key: dict[frozenset, list[int]] = {}
    for i, run in enumerate(runs):
        by_key.setdefault(frozenset(_experiment(run).items()), []).append(i)
    configs = [_experiment(runs[idx[0]]) for idx in by_key.values()]
    differing = [k for k in dict.fromkeys(k for c in configs for k in c)
                 if len({c.get(k, MISSING) for c in configs}) > 1]
    return [(_assignments(c, differing) or "all runs", idx)
            for c, idx in zip(configs, by_key.values())]


def _experiment(run: Run) -> dict[str, str]:
    return {k: v for k, v in run.config.items() if k not in NOT_EXPERIMENT and not k.startswith(OBSERVERS)}


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


def welch_ttest(groups: list[Group]) -> TTest | None:
    """Welch's t-test on final accuracy, only for exactly two groups of ≥ 2 runs each.

    Welch's form does not assume the two arms vary equally across seeds, which
    BN and no-BN runs do not.
    """
    if len(groups) != 2:
        return None
    a, b = (g.numbers("final_test_accuracy") for g in groups)
    if len(a) < 2 or len(b) < 2:
        return None
    from scipy import stats  # deferred: importing SciPy takes longer than the rest of compare

    result = stats.ttest_ind(a, b, equal_var=False)
    return TTest(groups[0].label, groups[1].label, float(result.statistic), float(result.pvalue))


def column(key: str) -> Column:
    return next(c for c in COLUMNS if c.key == key)
