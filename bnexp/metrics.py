"""Every metric bnexp can compare: the one place that says what a metric is.

A metric has a name, the file it is read from (the metrics file, the summary, a
diagnostics table column for one layer, unit or variable, or an eval result), how
`last N` aggregates it, which direction is better and its kind:

- continuous: a number per run (accuracy, loss, a diagnostics column);
- binary: 0 or 1 per run (`diverged`, `failed`);
- time_to_event: the step at which something first happened (`steps_to_threshold`); a
  run in which it never happened is *censored* at its last step.

Claims (bnexp.claims), `compare` and its `--pivot`, its CSV and JSON, and `bnexp report`
take every metric from here and define none of their own; docs/metrics.md lists them.
Nothing here reads files or imports TensorFlow or SciPy: callers hand over what a run
holds as a `RunData`.

`last N` means one thing for every metric that uses it: the mean over the run's last N
evaluations (metrics rows, or diagnostics steps). A run with fewer than N is not
counted, with the reason; it is never averaged over fewer. A run without a metrics file
stands for its last evaluation only through its summary, so only at N = 1.

Failures are outcomes. A diverged run (training stopped at a loss above
train.divergence_loss, or NaN) has no final value of a continuous or time-to-event
metric: it is counted as diverged wherever the metric is shown, and is 1 in `diverged`
and `failed`. A completed run that ends no better than always predicting the most
frequent test class, plus a margin (`failed_to_learn`), keeps its values and is counted
as failed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bnexp.errors import UsageError
from bnexp.rundir import EVAL as EVAL_FILE, METRICS as METRICS_FILE, SUMMARY as SUMMARY_FILE, table_file
from bnexp.rundir.tables import TABLES
from bnexp.status import RESULTS, Status

KINDS = ("continuous", "binary", "time_to_event")
FAILED_TO_LEARN = "failed_to_learn"  # the outcome of a completed run no better than chance

# The diagnostics tables (bnexp.rundir.tables declares them) and the columns that pick rows.
DIAGNOSTICS_COLUMNS: dict[str, tuple[str, ...]] = {table: tuple(name for name, _ in columns)
                                           for table, columns in TABLES.items()}
ROW_KEYS = ("layer", "unit", "variable")
EVAL_SOURCES = ("moving", "batch", "precise")  # bnexp eval --stats, on the test split


@dataclass(frozen=True)
class Metric:
    """What one metric is.

    `aggregation`: "last" (mean of the last N evaluations), "best" (maximum over all
    evaluations), "first" (first evaluation at or above the threshold), "status" (from
    the run's end), "summary" (a number of the summary), "eval" (a `bnexp eval` result).
    `better`: +1 higher is better, −1 lower is better, 0 neither (a measurement that is
    no goal in itself). `unit` is how bnexp.present formats it (fraction, loss, count,
    seconds, rate, number); `delta` how a run is set against the baseline run ("diff" or
    "ratio"). `aliases` are older names (claims in sweep files) that mean this metric.
    """

    name: str
    label: str
    source: str
    aggregation: str
    better: int
    kind: str
    unit: str
    delta: str = "diff"
    aliases: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()  # row keys (layer, unit, variable) or batch_size (eval)

    @property
    def uses_last(self) -> bool:
        return self.aggregation == "last"


def _run_metrics() -> list[Metric]:
    M = Metric
    return [
        M("final_test_accuracy", "final acc", f"{METRICS_FILE} test_accuracy", "last", +1, "continuous", "fraction",
          aliases=("final_accuracy",)),
        M("best_test_accuracy", "best acc", f"{METRICS_FILE} test_accuracy", "best", +1, "continuous", "fraction",
          aliases=("best_accuracy",)),
        M("final_test_loss", "final loss", f"{METRICS_FILE} test_loss", "last", -1, "continuous", "loss",
          aliases=("final_loss",)),
        # A fixed training subset in inference mode, like the test set; not the metrics file's
        # train_accuracy, a running mean over training batches in training mode.
        M("final_train_set_accuracy", "train-set acc", f"{METRICS_FILE} train_set_accuracy", "last", 0, "continuous",
          "fraction"),
        M("final_train_set_loss", "train-set loss", f"{METRICS_FILE} train_set_loss", "last", 0, "continuous", "loss"),
        M("generalization_gap", "train−test gap", f"{METRICS_FILE} train_set_accuracy − test_accuracy", "last", 0,
          "continuous", "fraction"),
        M("steps", "steps", f"{SUMMARY_FILE} steps", "summary", 0, "continuous", "count"),
        M("seconds_per_epoch", "s/epoch", f"{SUMMARY_FILE} seconds_per_epoch", "summary", -1, "continuous", "seconds",
          delta="ratio"),
        M("examples_per_second", "examples/s", f"{SUMMARY_FILE} examples_per_second", "summary", +1, "continuous",
          "rate", delta="ratio"),
        M("steps_to_threshold", "steps to {threshold:g}", f"{METRICS_FILE} test_accuracy", "first", -1,
          "time_to_event", "count"),
        M("diverged", "diverged", f"{SUMMARY_FILE} status", "status", -1, "binary", "number"),
        M("failed", "failed", f"{SUMMARY_FILE} status and test accuracy", "status", -1, "binary", "number"),
    ]


def _diagnostics_metrics() -> list[Metric]:
    return [Metric(f"{table}.{column}", f"{table}.{column}", f"{table_file(table)} {column}", "last", 0, "continuous",
                   "number", selectors=tuple(k for k in ROW_KEYS if k in columns))
            for table, columns in DIAGNOSTICS_COLUMNS.items() for column in columns
            if column != "step" and column not in ROW_KEYS]


def _eval_metrics() -> list[Metric]:
    return [Metric(f"eval.{source}_{what}", f"eval {source} {what}", f"{EVAL_FILE} {source}/test {what}", "eval",
                   +1 if what == "accuracy" else -1, "continuous", "fraction" if what == "accuracy" else "loss",
                   selectors=("batch_size",) if source != "moving" else ())
            for source in EVAL_SOURCES for what in ("accuracy", "loss")]


METRICS: dict[str, Metric] = {m.name: m for m in _run_metrics() + _diagnostics_metrics() + _eval_metrics()}
ALIASES: dict[str, str] = {a: m.name for m in METRICS.values() for a in m.aliases}
DEFAULT = "final_test_accuracy"


def get(name: str) -> Metric:
    """The metric called `name` (or by an alias); KeyError if none."""
    return METRICS[ALIASES.get(name, name)]


def known(name: str) -> bool:
    return name in METRICS or name in ALIASES


# --- a metric with its row selector: what one table column, comparison or claim reads -----


@dataclass(frozen=True)
class Ref:
    """A metric and its selector (`ics.ics_l2:layer=0`, `eval.batch_accuracy:batch_size=8`)."""

    metric: Metric
    selector: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.metric.name + "".join(f":{k}={v}" for k, v in self.selector)

    def label(self, threshold: float = 0.97) -> str:
        return self.metric.label.format(threshold=threshold) + "".join(f" {k} {v}" for k, v in self.selector)


SPEC = re.compile(r"^([A-Za-z0-9_.]+)((?::[a-z_]+=[^:]+)*)$")


def parse(text: str, option: str = "--metric") -> Ref:
    """`NAME` or `NAME:key=value[:key=value]` as a Ref; UsageError naming `option` if not one."""
    match = SPEC.match(text.strip())
    name = match.group(1) if match else text
    if not known(name):
        raise UsageError(f"{option} {text}: not a metric (allowed: {', '.join(METRICS)};"
                         f" a diagnostics column takes its row as NAME:layer=N, see docs/metrics.md)")
    pairs = dict(p.split("=", 1) for p in match.group(2).split(":")[1:]) if match.group(2) else {}
    return ref(get(name), pairs, option, text)


def ref(metric: Metric, selector: Mapping[str, Any], option: str = "--metric", text: str | None = None) -> Ref:
    """`metric` with `selector`, checked: every row key of its table named, nothing else."""
    text = text or metric.name
    for key in selector:
        if key not in metric.selectors:
            allowed = ", ".join(metric.selectors) or "none"
            raise UsageError(f"{option} {text}: {key} is not a selector of {metric.name} (allowed: {allowed})")
    required = [k for k in metric.selectors if k in ROW_KEYS]
    missing = [k for k in required if k not in selector]
    if missing:
        raise UsageError(f"{option} {text}: {metric.name} has one row per {missing[0]}: name it as"
                         f" {metric.name}:{':'.join(f'{k}=N' for k in required)}")
    if "batch_size" in selector and not str(selector["batch_size"]).isdigit():
        raise UsageError(f"{option} {text}: batch_size is a whole number, not {selector['batch_size']}")
    return Ref(metric, tuple((k, str(selector[k])) for k in metric.selectors if k in selector))


# --- one run's value ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunData:
    """What a metric reads of one run: its status, its summary (as a dict), its metrics
    rows in step order, its diagnostics tables by name (only those asked for need be
    there) and its eval record (`bnexp eval` results by "stats/split")."""

    status: str
    summary: Mapping[str, Any] = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    diagnostics: Mapping[str, list[dict]] = field(default_factory=dict)
    evals: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Value:
    """One run's value of a metric, or None with the reason it is not counted.

    `censored`: a time-to-event value that is the run's last step because the event
    never happened (`note` says so). `note` may also hold something notable about a value.
    """

    value: float | None
    note: str | None = None
    censored: bool = False


def value(r: Ref, run: RunData, *, last: int = 1, threshold: float = 0.97) -> Value:
    """The metric `r` of one run, over its last `last` evaluations where the metric uses them."""
    m = r.metric
    if m.kind == "binary":
        return _binary(m.name, run)
    if run.status not in RESULTS:
        return Value(None, run.status + _at_step(run.summary.get("steps")))
    if run.status == Status.DIVERGED:
        return Value(None, Status.DIVERGED)
    if m.aggregation == "summary":
        return _finite(m.name, run.summary.get(m.name))
    if m.aggregation == "eval":
        return _eval(r, run)
    if m.name == "steps_to_threshold":
        return _steps_to_threshold(run, threshold)
    if m.name in DIAGNOSTICS_NAMES:
        return _diagnostic(r, run, last)
    if m.name == "best_test_accuracy":
        values = [row["test_accuracy"] for row in run.metrics]
        return _finite(m.name, max(values) if values else run.summary.get("best_test_accuracy"))
    return _last_mean(m.name, run, last)


DIAGNOSTICS_NAMES = frozenset(m.name for m in _diagnostics_metrics())
# metrics columns (a − b for the gap) and the summary field that is the last evaluation's.
_LAST = {
    "final_test_accuracy": (("test_accuracy",), "test_accuracy"),
    "final_test_loss": (("test_loss",), "test_loss"),
    "final_train_set_accuracy": (("train_set_accuracy",), "train_set_accuracy"),
    "final_train_set_loss": (("train_set_loss",), "train_set_loss"),
    "generalization_gap": (("train_set_accuracy", "test_accuracy"), "generalization_gap"),
}


def _last_mean(name: str, run: RunData, last: int) -> Value:
    """The mean over the last `last` evaluations; the summary's value stands for the last one
    when there is no metrics file (only at last = 1)."""
    columns, summary_key = _LAST[name]
    rows = run.metrics
    if not rows:
        if last == 1 and run.summary.get(summary_key) is not None:
            return _finite(name, run.summary[summary_key])
        return Value(None, f"no {METRICS_FILE} rows" + (f" (--last {last} needs {last} evaluations)" if last > 1 else ""))
    if len(rows) < last:
        return Value(None, f"{len(rows)} evaluation{'s' * (len(rows) != 1)}, fewer than last {last}")
    tail = rows[-last:]
    if any(row.get(c) is None for row in tail for c in columns):
        return Value(None, f"no {columns[0]} in its last {last} evaluation{'s' * (last != 1)}"
                           " (train.eval_train_examples 0, or an older run)")
    per_row = [float(row[columns[0]]) - (float(row[columns[1]]) if len(columns) > 1 else 0.0) for row in tail]
    return _finite(name, math.fsum(per_row) / len(per_row))


def _steps_to_threshold(run: RunData, threshold: float) -> Value:
    """The first evaluated step at or above the threshold; a run that never gets there is
    censored at its last step (its total steps when it completed)."""
    for row in run.metrics:
        if float(row["test_accuracy"]) >= threshold:
            return Value(float(row["step"]))
    steps = run.summary.get("total_steps") or run.summary.get("steps")
    if not run.metrics or not steps:
        return Value(None, f"no {METRICS_FILE} rows")
    return Value(float(steps), f"never reached {threshold:g}: censored at its {steps} steps", censored=True)


def _diagnostic(r: Ref, run: RunData, last: int) -> Value:
    """The column's mean over the last `last` recorded steps of the selected row."""
    table, column = r.metric.name.split(".")
    wanted = dict(r.selector)
    rows = [row for row in run.diagnostics.get(table, []) if all(str(row[k]) == v for k, v in wanted.items())]
    if not rows:
        chosen = "".join(f" for {k} {v}" for k, v in wanted.items())
        return Value(None, f"no {table_file(table)} rows{chosen}")
    steps = sorted({int(row["step"]) for row in rows})
    if len(steps) < last:
        return Value(None, f"{len(steps)} {table_file(table)} step{'s' * (len(steps) != 1)}, fewer than last {last}")
    kept = set(steps[-last:])
    values = [float(row[column]) for row in rows if int(row["step"]) in kept and row[column] is not None]
    if not values:
        return Value(None, f"no {column} in {table_file(table)}")
    return _finite(r.metric.name, math.fsum(values) / len(values))


def _eval(r: Ref, run: RunData) -> Value:
    """A `bnexp eval` result on the test split, of the run's final weights."""
    source, what = r.metric.name[len("eval."):].split("_")
    record = run.evals.get(f"{source}/test")
    if not isinstance(record, dict) or record.get(what) is None:
        return Value(None, f"no {EVAL_FILE} result for --stats {source} on the test split (run bnexp eval)")
    wanted = dict(r.selector).get("batch_size")
    if wanted is not None and str(record.get("batch_size")) != wanted:
        return Value(None, f"{EVAL_FILE}'s {source} result is at batch size {record.get('batch_size')}, not {wanted}")
    steps = run.summary.get("steps")
    if steps is not None and record.get("step") is not None and record["step"] != steps:
        return Value(None, f"{EVAL_FILE}'s {source} result is of step {record['step']}, the run ended at {steps}")
    return _finite(r.metric.name, record[what])


def _binary(name: str, run: RunData) -> Value:
    """`diverged`: 1 for a diverged run. `failed`: 1 for a diverged run or one that failed to learn."""
    if run.status not in RESULTS:
        return Value(None, run.status + _at_step(run.summary.get("steps")))
    if run.status == Status.DIVERGED:
        return Value(1.0)
    if name == "diverged":
        return Value(0.0)
    failed = failed_to_learn_of(run.summary)
    if failed is None:
        return Value(None, f"no test accuracy or test class counts in its {SUMMARY_FILE} (an older run)")
    return Value(1.0 if failed else 0.0)


def _finite(name: str, x) -> Value:
    if x is None:
        return Value(None, f"no {name}")
    if not math.isfinite(float(x)):
        return Value(None, f"its {name} is {float(x)}")
    return Value(float(x))


def _at_step(steps) -> str:
    return f" at step {steps:,}" if isinstance(steps, int) else ""


# --- failed to learn -------------------------------------------------------------------------


def learning_threshold(class_counts: list[int]) -> float:
    """The test accuracy a run must exceed to count as having learned: the majority class's
    share (what always predicting it scores) plus the smallest class's share.

    A classifier that gets one more class right than "always the majority class" scores at
    least that; docs/metrics.md gives the reasoning. For MNIST's test set (1,135 ones,
    892 fives of 10,000) it is 0.2027.
    """
    total = sum(class_counts)
    return (max(class_counts) + min(c for c in class_counts if c > 0)) / total


def failed_to_learn(test_accuracy: float, class_counts: list[int]) -> bool:
    """Whether a completed run ended no better than the learning threshold."""
    return not test_accuracy > learning_threshold(class_counts)


def failed_to_learn_of(summary: Mapping[str, Any]) -> bool | None:
    """A completed run's failed-to-learn mark: its summary's, else computed from its test
    accuracy and test class counts; None for an older run that recorded neither."""
    if summary.get("failed_to_learn") is not None:
        return bool(summary["failed_to_learn"])
    counts = (summary.get("data") or {}).get("test_class_counts")
    accuracy = summary.get("test_accuracy")
    if not counts or accuracy is None:
        return None
    return failed_to_learn(float(accuracy), counts)


def outcome(run: RunData) -> str:
    """How a run ended, as counts show it: completed, failed_to_learn, diverged, or the status
    of a run without a result (running, interrupted, failed: stopped by an error)."""
    if run.status == Status.COMPLETED and failed_to_learn_of(run.summary):
        return FAILED_TO_LEARN
    return run.status
