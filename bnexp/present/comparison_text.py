"""`bnexp compare`'s text cells, shared by every format: values and deltas, the metrics, group and
pivot tables as header and rows of strings, the folded config diff, and the comparison lines.
"""

from __future__ import annotations

from bnexp.compare import COLUMNS, METRIC, Column, Comparison, Delta, Group, GroupComparison, Pivot, Row, column
from bnexp.metrics import FAILED_TO_LEARN
from bnexp.present import number, sparklines
from bnexp.status import Status


DIFF_COLUMNS = 8  # runs beyond which the config diff folds to key → values
DIFF_VALUES = 12  # values of one key shown when folded
GROUP_KEYS = ("final_test_accuracy", "best_test_accuracy", "final_train_set_accuracy", "generalization_gap",
              "steps_to_threshold")


def format_value(col: Column, value: float | None) -> str:
    return number(value, col.kind)


def format_delta(col: Column, d: Delta | None) -> str:
    """'+0.0042', '-500' or '×0.83'; empty for the baseline or when undefined."""
    if d is None or d.value is None:
        return ""
    if col.delta == "ratio":
        return f"×{d.value:.2f}"
    if col.kind == "count":
        return f"{d.value:+.0f}"
    return f"{d.value:+.4f}"


def format_group_stat(group: Group, key: str) -> str:
    """'0.9785 ± 0.0012', or the mean alone when one run cannot give a spread."""
    mean, std = group.mean(key), group.std(key)
    text = format_value(column(key), mean)
    return text if std is None else f"{text} ± {format_value(column(key), std)}"


def metric_title(name: str, last: int = 1) -> str:
    """'Final accuracy' for the default metric, else the metric's name and its `last`."""
    if name == METRIC:
        return "Final accuracy" + (f" (last {last})" if last > 1 else "")
    uses_last = column(name).ref.metric.uses_last
    return name + (f" (last {last})" if uses_last and last > 1 else "")


def comparison_line(c: GroupComparison, last: int = 1) -> str:
    """`Final accuracy, B vs A: difference …, Holm-adjusted p = …: distinguishable from seed noise (runs counted …).`"""
    return f"{metric_title(c.metric, last)}, {c.group.label} vs {c.baseline.label}: {c.sentence()}."


def comparison_lines(comp: Comparison) -> list[str]:
    lines = [comparison_line(c, comp.last) for c in comp.comparisons]
    if len(comp.refs) > 1 and lines:
        lines.insert(0, "Each metric's comparisons on one test set are one Holm family, adjusted apart from"
                        " the other metrics': " + ", ".join(r.name for r in comp.refs) + ".")
    return lines


def warning_lines(comp: Comparison) -> list[str]:
    """The warnings: runs that could not be read, test sets that can't be compared, and
    runs from different hardware."""
    hardware = [f"Hardware: {comp.hardware_note}."] if comp.hardware_note else []
    unread = [f"Not counted: {why}." for _, why in comp.unreadable]
    return unread + [f"Not comparable: {line}." for line in comp.not_comparable] + hardware


def curves(comp: Comparison) -> list[str]:
    """A test-accuracy sparkline per run, on one scale."""
    return sparklines([[m["test_accuracy"] for m in r.run.metrics] for r in comp.rows])


def metrics_title(comp: Comparison) -> str:
    return "Metrics (baseline: first run" + (" of each test set)" if comp.families > 1 else ")")


def metrics_table(comp: Comparison, with_curves: bool) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the metrics table ('value (delta)')."""
    columns = [*COLUMNS, *comp.extra_columns]
    header = ["run", "status"] + [comp.label(c) for c in columns] + (["test acc"] if with_curves else [])
    lines = curves(comp) if with_curves else [None] * len(comp.rows)
    rows = []
    for row, curve in zip(comp.rows, lines):
        cells = [_with_delta(c, row.values.get(c.key), row.deltas.get(c.key)) for c in columns]
        rows.append([row.label, run_status(row)] + cells + ([curve] if with_curves else []))
    return header, rows


def run_status(row: Row) -> str:
    """The run's status, and 'failed to learn' for a completed run that did."""
    return f"{Status.COMPLETED}, failed to learn" if row.run.outcome == FAILED_TO_LEARN else row.run.status


def _with_delta(col: Column, value: float | None, d: Delta | None) -> str:
    delta_text = format_delta(col, d)
    text = format_value(col, value)
    return f"{text} ({delta_text})" if delta_text else text


def show_groups(comp: Comparison) -> bool:
    """The group table says something only when some group holds more than one run."""
    return any(len(g.rows) > 1 for g in comp.groups)


def groups_table(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the seed-group table: n distinct seeds, mean ± sample std, what was left out."""
    extra = [r.name for r in comp.refs if r.name not in GROUP_KEYS]
    header = ["group", "n", "final acc", "best acc", "train-set acc", "train−test gap",
              f"steps to {comp.threshold:g}", *extra, "diverged", "failed to learn", "not counted"]
    rows = [[g.label, str(g.n), *(format_group_stat(g, k) for k in GROUP_KEYS[:4]), _reached(g),
             *(format_group_stat(g, k) for k in extra), str(g.n_diverged), str(g.n_failed),
             "; ".join(dict.fromkeys(f"{e.row.label} ({e.why})" for s in g.samples.values() for e in s.excluded))]
            for g in comp.groups]
    return header, rows


def _reached(g: Group) -> str:
    """Mean steps to threshold over the runs that reached it, and how many did."""
    reached = len(g.numbers("steps_to_threshold"))
    text = format_value(column("steps_to_threshold"), g.mean("steps_to_threshold"))
    return text if reached in (0, g.n) else f"{text} ({reached}/{g.n} reached)"


def pivot_table(p: Pivot) -> tuple[list[str], list[list[str]]]:
    """Header and cells: 'mean ± std (n)' of the metric per grid cell, '—' where none ran;
    'mean ± std: k of n, d diverged' where not every run is counted."""
    name = "final acc" if p.metric == METRIC else p.metric
    header = [*p.row_keys, *([f"{p.column_key}={v}" for v in p.column_values] if p.column_key else [name])]
    rows = [[*values, *(pivot_cell(g, p.metric) for g in cells)] for values, cells in zip(p.row_values, p.cells)]
    return header, rows


def pivot_cell(g: Group | None, metric: str = METRIC) -> str:
    """'0.9785 ± 0.0012 (3)', or '0.0940: 1 of 3, 2 diverged' when runs are not counted."""
    if g is None or not g.rows:
        return "—"
    s = g.sample(metric)
    value = format_group_stat(g, metric) if s.n else "—"
    if s.n == g.n_seeds and not g.failures():
        return f"{value} ({s.n})"
    details = [f"{s.n} of {g.n_seeds}", g.failures()]
    return f"{value}: " + ", ".join(d for d in details if d)


def pivot_title(p: Pivot, last: int = 1) -> str:
    return f"{'Final test accuracy' if p.metric == METRIC else metric_title(p.metric, last)}, mean ± std (n seeds)"


PIVOT_TITLE = "Final test accuracy, mean ± std (n seeds)"


def diff_columns(comp: Comparison) -> tuple[list[str], list[list[str]]]:
    """The config diff as a table: a column per run, or, for more than DIFF_COLUMNS runs (a
    60-run sweep made lines of 9,753 characters), key → its values, each with its number of
    runs, in the order the runs first show them."""
    if len(comp.rows) <= DIFF_COLUMNS:
        return ["key"] + [r.label for r in comp.rows], [[key, *values] for key, values in comp.diff]
    folded = []
    for key, values in comp.diff:
        counts = {v: values.count(v) for v in dict.fromkeys(values)}
        shown = [f"{v} ({n} run{'s' if n > 1 else ''})" for v, n in list(counts.items())[:DIFF_VALUES]]
        more = len(counts) - DIFF_VALUES
        folded.append([key, ", ".join(shown) + (f", and {more} more (--format json lists each run's)" if more > 0 else "")])
    return ["key", f"values over {len(comp.rows)} runs"], folded
