"""Compare run directories: config diff, metrics against a baseline, seed groups.

Everything here reads the plain files a run directory holds (config.yaml,
metrics.csv, summary.json) and returns data; nothing prints and nothing imports
TensorFlow, so `bnexp compare` answers at once. SciPy is imported only when two
seed groups are to be tested, because importing it costs more than the rest of
the command.

A run's *final* test accuracy (and loss) is the mean of its last `last`
evaluations in metrics.csv: one evaluation is a noisy estimate of where a
training run ended, and the BN study compares the mean of the last five.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from bnexp.errors import RunDirError, RunFileError

SUMMARY = "summary.json"
CONFIG = "config.yaml"
METRICS = "metrics.csv"
METRICS_HEADER = (
    "step", "epoch", "train_loss", "train_accuracy",
    "test_loss", "test_accuracy", "learning_rate", "elapsed_s",
)
SUMMARY_NUMBERS = (
    "test_accuracy", "test_loss", "best_test_accuracy", "best_step", "steps",
    "epochs", "wall_seconds", "train_seconds", "seconds_per_epoch", "examples_per_second",
)
# Keys that tell seeds of one experiment apart without changing the experiment
# (diagnostics only observe a run: they change none of its numbers).
NOT_EXPERIMENT = ("seed", "name", "data.dir")
OBSERVERS = ("diagnostics.",)
MISSING = "—"
ALPHA = 0.05
SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Run:
    """One run directory as read from disk; `config` is flattened to dotted keys."""

    path: Path
    config: dict[str, str]
    summary: dict
    metrics: list[dict[str, float]]

    @property
    def status(self) -> str:
        return str(self.summary.get("status") or "unknown")


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
    kind: str  # how to format: fraction, loss, count, seconds, rate


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
    curve: str


@dataclass(frozen=True)
class Group:
    """Runs whose configs differ only in seed (and name, data dir)."""

    label: str
    rows: list[Row]

    def numbers(self, key: str) -> list[float]:
        return [r.values[key] for r in self.rows if _finite(r.values[key])]

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
    def sentence(self) -> str:
        if math.isnan(self.p):
            return "cannot be tested: neither group varies across seeds"
        if self.p < ALPHA:
            return f"distinguishable from seed noise (p = {self.p:.2g} < {ALPHA:g})"
        return f"not distinguishable from seed noise (p = {self.p:.2g} ≥ {ALPHA:g})"


@dataclass(frozen=True)
class Comparison:
    """Everything `bnexp compare` reports; renderers only format this."""

    rows: list[Row]
    diff: list[tuple[str, list[str]]]
    groups: list[Group]
    ttest: TTest | None
    threshold: float
    last: int

    def label(self, column: Column) -> str:
        return column.label.format(threshold=self.threshold)


# --- finding and loading runs ---------------------------------------------------


def find_runs(paths: list[str]) -> list[Path]:
    """Run directories named by `paths`, each either a run or a directory of runs.

    A directory holding summary.json is a run and is not searched further (its
    checkpoints are not runs); any other directory is searched at any depth.
    """
    found: dict[Path, Path] = {}  # resolved -> as spelled, so one run named twice counts once
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise RunDirError(f"{path}: no such directory")
        if not path.is_dir():
            raise RunDirError(f"{path}: not a directory")
        runs = _runs_under(path)
        if not runs:
            raise RunDirError(f"{path}: not a run directory and holds none (no {SUMMARY} found)")
        for run in runs:
            found.setdefault(run.resolve(), run)
    runs = list(found.values())
    if len(runs) < 2:
        raise RunDirError(f"compare needs at least two runs, found one: {runs[0]}")
    return runs


def _runs_under(root: Path) -> list[Path]:
    runs = []
    for dirpath, dirnames, filenames in os.walk(root):
        if SUMMARY in filenames:
            runs.append(Path(dirpath))
            dirnames.clear()
    return sorted(runs, key=natural_key)


def natural_key(path: Path) -> list:
    """Sort batch_size=8 before batch_size=60: numbers in names compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", str(path))]


def load_run(path: Path) -> Run:
    """Read one run directory; a corrupt file raises RunFileError naming it."""
    return Run(path, flatten(_read_config(path / CONFIG)),
               _read_summary(path / SUMMARY), _read_metrics(path / METRICS))


def load_runs(paths: list[str]) -> list[Run]:
    return [load_run(p) for p in find_runs(paths)]


def _read_summary(path: Path) -> dict:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise RunFileError(f"{path}: cannot read ({e})") from e
    except json.JSONDecodeError as e:
        raise RunFileError(f"{path}: invalid JSON ({e.msg}, line {e.lineno})") from e
    if not isinstance(summary, dict):
        raise RunFileError(f"{path}: expected a JSON object")
    for key in SUMMARY_NUMBERS:
        value = summary.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise RunFileError(f"{path}: {key} is {value!r}, expected a number or null")
    return summary


def _read_config(path: Path) -> dict:
    if not path.is_file():
        raise RunFileError(f"{path}: missing")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise RunFileError(f"{path}: cannot read ({e})") from e
    except yaml.YAMLError as e:
        raise RunFileError(f"{path}: invalid YAML ({' '.join(str(e).split())})") from e
    if not isinstance(config, dict):
        raise RunFileError(f"{path}: expected a mapping of config keys")
    return config


def _read_metrics(path: Path) -> list[dict[str, float]]:
    """Evaluation rows; a run that has not evaluated yet has none, which is fine."""
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
        if "\n" in text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a killed run's torn last row is no row yet, as resume sees it
        lines = list(csv.reader(io.StringIO(text)))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RunFileError(f"{path}: cannot read ({e})") from e
    if not lines or tuple(lines[0]) != METRICS_HEADER:
        raise RunFileError(f"{path}: header is not {','.join(METRICS_HEADER)}")
    return [_metrics_row(path, n, cells) for n, cells in enumerate(lines[1:], start=2)]


def _metrics_row(path: Path, line: int, cells: list[str]) -> dict[str, float]:
    if len(cells) != len(METRICS_HEADER):
        raise RunFileError(
            f"{path}: line {line} has {len(cells)} cells, expected {len(METRICS_HEADER)}")
    try:
        return {key: float(cell) for key, cell in zip(METRICS_HEADER, cells)}
    except ValueError as e:
        raise RunFileError(f"{path}: line {line}: {e}") from e


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """Nested config to dotted keys with YAML-flow values, so configs diff key by key."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = yaml_flow(value)
    return flat


def yaml_flow(value) -> str:
    """A value as YAML flow style writes it: [100, 100], true, null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_flow(v)}" for k, v in value.items()) + "}"
    return str(value)


# --- the comparison ---------------------------------------------------------------


def compare(runs: list[Run], *, threshold: float = 0.97, last: int = 1,
            all_keys: bool = False) -> Comparison:
    """Build the whole report; the first run is the baseline."""
    labels = path_labels([r.path for r in runs])
    values = [run_values(r, threshold, last) for r in runs]
    curves = sparklines([[m["test_accuracy"] for m in r.metrics] for r in runs])
    rows = [Row(run, label, v, deltas(values[0], v) if i else {}, curve)
            for i, (run, label, v, curve) in enumerate(zip(runs, labels, values, curves))]
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
    """The metrics-table numbers for one run, from metrics.csv where it has them."""
    acc = [m["test_accuracy"] for m in run.metrics]
    loss = [m["test_loss"] for m in run.metrics]
    s = run.summary
    return {
        "final_test_accuracy": _tail_mean(acc, last, s.get("test_accuracy")),
        "best_test_accuracy": max(acc) if acc else s.get("best_test_accuracy"),
        "final_test_loss": _tail_mean(loss, last, s.get("test_loss")),
        "steps": s.get("steps") if s.get("steps") is not None else _last_step(run),
        "seconds_per_epoch": s.get("seconds_per_epoch"),
        "examples_per_second": s.get("examples_per_second"),
        "steps_to_threshold": steps_to_threshold(run.metrics, threshold),
    }


def _tail_mean(xs: list[float], last: int, fallback: float | None) -> float | None:
    return statistics.fmean(xs[-last:]) if xs else fallback


def _last_step(run: Run) -> float | None:
    return run.metrics[-1]["step"] if run.metrics else None


def steps_to_threshold(metrics: list[dict[str, float]], threshold: float) -> float | None:
    """Step of the first evaluation at or above `threshold` test accuracy; None if never."""
    return next((m["step"] for m in metrics if m["test_accuracy"] >= threshold), None)


def deltas(base: dict[str, float | None], values: dict[str, float | None]) -> dict[str, Delta]:
    return {c.key: delta(c, base[c.key], values[c.key]) for c in COLUMNS}


def delta(column: Column, base: float | None, value: float | None) -> Delta:
    """Difference or ratio against the baseline, and whether it is an improvement."""
    if not (_finite(base) and _finite(value)):
        return Delta(None, 0)
    if column.delta == "ratio":
        if base == 0:
            return Delta(None, 0)
        d, change = value / base, value / base - 1
    else:
        d = change = value - base
    verdict = 0 if change == 0 else column.better * (1 if change > 0 else -1)
    return Delta(d, verdict)


def _finite(x) -> bool:
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


def sparklines(series: list[list[float]], width: int = 24) -> list[str]:
    """One sparkline per series on a shared scale, so the heights compare across runs."""
    finite = [x for s in series for x in s if math.isfinite(x)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    return [sparkline(s, lo, hi, width) for s in series]


def sparkline(values: list[float], lo: float, hi: float, width: int = 24) -> str:
    """Values as ▁▂▃▄▅▆▇█ between lo and hi, resampled to ≤ `width` characters."""
    if len(values) > width:
        values = [values[round(i * (len(values) - 1) / (width - 1))] for i in range(width)]
    top = len(SPARK) - 1
    span = hi - lo
    return "".join(
        " " if not math.isfinite(v)
        else SPARK[round((v - lo) / span * top) if span else top // 2]
        for v in values
    )


# --- text formats --------------------------------------------------------------------


def format_value(column: Column, value: float | None) -> str:
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    if column.kind in ("fraction", "loss"):
        return f"{value:.4f}"
    if column.kind == "count":
        return f"{value:.0f}"
    if column.kind == "seconds":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def format_delta(column: Column, d: Delta | None) -> str:
    """'+0.0042', '-500' or '×0.83'; empty for the baseline or when undefined."""
    if d is None or d.value is None:
        return ""
    if column.delta == "ratio":
        return f"×{d.value:.2f}"
    if column.kind == "count":
        return f"{d.value:+.0f}"
    return f"{d.value:+.4f}"


def format_group_stat(group: Group, key: str, column: Column) -> str:
    """'0.9785 ± 0.0012', or the mean alone when one run cannot give a spread."""
    mean, std = group.mean(key), group.std(key)
    text = format_value(column, mean)
    return text if std is None else f"{text} ± {format_value(column, std)}"


def column(key: str) -> Column:
    return next(c for c in COLUMNS if c.key == key)


def to_json(comp: Comparison, plot: str | None = None) -> str:
    """One JSON object: runs, diff, groups, ttest; non-finite numbers become null."""
    doc = {
        "threshold": comp.threshold,
        "last": comp.last,
        "runs": [_run_json(r) for r in comp.rows],
        "diff": {key: dict(zip((r.label for r in comp.rows), vs)) for key, vs in comp.diff},
        "groups": [_group_json(g) for g in comp.groups],
        "ttest": _ttest_json(comp.ttest),
        "plot": plot,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _num(x):
    return x if _finite(x) else None


def _run_json(row: Row) -> dict:
    return {
        "label": row.label,
        "path": str(row.run.path),
        "status": row.run.status,
        "values": {k: _num(v) for k, v in row.values.items()},
        "deltas": {k: {"kind": column(k).delta, "value": _num(d.value), "verdict": d.verdict}
                   for k, d in row.deltas.items()},
        "config": row.run.config,
    }


def _group_json(g: Group) -> dict:
    stats = {k: {"mean": _num(g.mean(k)), "std": _num(g.std(k)), "n": len(g.numbers(k))}
             for k in ("final_test_accuracy", "best_test_accuracy", "steps_to_threshold")}
    return {"label": g.label, "n": len(g.rows), "runs": [r.label for r in g.rows], **stats}


def _ttest_json(t: TTest | None) -> dict | None:
    if t is None:
        return None
    return {"groups": [t.a, t.b], "metric": "final_test_accuracy", "t": _num(t.t),
            "p": _num(t.p), "alpha": ALPHA, "verdict": t.sentence}


def to_csv(comp: Comparison) -> str:
    """The metrics table, one row per run: raw values, then deltas (`_delta`/`_ratio`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "path", "status"] + [c.key for c in COLUMNS]
                    + [f"{c.key}_{c.delta if c.delta == 'ratio' else 'delta'}" for c in COLUMNS])
    for row in comp.rows:
        d = [row.deltas[c.key].value if row.deltas else None for c in COLUMNS]
        writer.writerow([row.label, row.run.path, row.run.status]
                        + [_cell(row.values[c.key]) for c in COLUMNS] + [_cell(x) for x in d])
    return out.getvalue()


def _cell(x) -> str:
    return "" if x is None else f"{x:.10g}"  # full precision, without float noise


def to_markdown(comp: Comparison, *, curves: bool = True, plot: str | None = None) -> str:
    """Pipe tables for the diff, the metrics and the groups, to paste into an issue."""
    labels = [r.label for r in comp.rows]
    parts = [f"### Config diff\n\n{_md_table(['key'] + labels, [[k] + vs for k, vs in comp.diff])}"
             if comp.diff else "### Config diff\n\nThe configs are identical."]
    parts.append("### Metrics (baseline: first run)\n\n" + _md_table(*metrics_table(comp, curves)))
    if comp.groups:
        parts.append("### Seed groups\n\n" + _md_table(*groups_table(comp)))
    if comp.ttest:
        parts.append(ttest_line(comp.ttest))
    if plot:
        parts.append(f"![learning curves]({plot})")
    return "\n\n".join(parts) + "\n"


def metrics_table(comp: Comparison, curves: bool) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the metrics table ('value (delta)'), shared by renderers."""
    header = ["run", "status"] + [comp.label(c) for c in COLUMNS] + (["test acc"] if curves else [])
    rows = []
    for row in comp.rows:
        cells = [_with_delta(c, row.values[c.key], row.deltas.get(c.key)) for c in COLUMNS]
        rows.append([row.label, row.run.status] + cells + ([row.curve] if curves else []))
    return header, rows


def _with_delta(column: Column, value: float | None, d: Delta | None) -> str:
    delta_text = format_delta(column, d)
    text = format_value(column, value)
    return f"{text} ({delta_text})" if delta_text else text


def groups_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the seed-group table: mean ± sample std per group."""
    header = ["group", "n", "final acc", "best acc", f"steps to {comp.threshold:g}"]
    rows = [[g.label, str(len(g.rows)),
             format_group_stat(g, "final_test_accuracy", column("final_test_accuracy")),
             format_group_stat(g, "best_test_accuracy", column("best_test_accuracy")),
             _reached(g)]
            for g in comp.groups]
    return header, rows


def _reached(g: Group) -> str:
    """Mean steps to threshold over the runs that reached it, and how many did."""
    reached = len(g.numbers("steps_to_threshold"))
    text = format_value(column("steps_to_threshold"), g.mean("steps_to_threshold"))
    return text if reached in (0, len(g.rows)) else f"{text} ({reached}/{len(g.rows)} reached)"


def ttest_line(t: TTest) -> str:
    return f"Final accuracy, {t.a} vs {t.b} (Welch t = {t.t:.3g}): {t.sentence}."


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header)] + [line(r) for r in rows])
