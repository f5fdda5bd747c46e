"""`bnexp compare --format json, csv, markdown`: the Comparison as a file's text.

The JSON is what `bnexp report` reads back (`json_doc`); docs/comparing.md describes it.
"""

from __future__ import annotations

import csv
import io
import json

from bnexp.compare import COLUMNS, Comparison, Group, Pivot, Row, column, finite
from bnexp.metrics import FAILED_TO_LEARN
from bnexp.present import markdown_table
from bnexp.present.comparison_text import (GROUP_KEYS, comparison_lines, diff_columns, groups_table, metrics_table,
                                           metrics_title, pivot_cell, pivot_table, pivot_title, show_groups,
                                           warning_lines)


def to_json(comp: Comparison, plot: str | None = None, claims: list[dict] | None = None) -> str:
    """One JSON object (docs/comparing.md: "Comparing runs"); non-finite numbers become null."""
    doc = {
        "threshold": comp.threshold,
        "last": comp.last,
        "metrics": [r.name for r in comp.refs],
        "baseline": comp.rows[0].label,
        "baseline_groups": comp.baselines,
        "runs": [_run_json(i, r, comp) for i, r in enumerate(comp.rows)],
        "diff": {key: dict(zip((r.label for r in comp.rows), vs)) for key, vs in comp.diff},
        "groups": [_group_json(g) for g in comp.groups],
        "comparisons": [_clean(c.to_dict()) for c in comp.comparisons],
        "not_comparable": comp.not_comparable,
        "hardware_note": comp.hardware_note,
        "not_counted": [{"path": path, "why": why} for path, why in comp.unreadable],
        "pivot": _pivot_json(comp.pivot) if comp.pivot else None,
        "pivots": [_pivot_json(p) for p in comp.pivots or ([comp.pivot] if comp.pivot else [])],
        "plot": plot,
        "claims": claims,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def json_doc(comp: Comparison, plot: str | None = None, claims: list[dict] | None = None) -> dict:
    """What `compare --format json` prints, read back from its text: a caller holds exactly
    what a reader of that output gets (`bnexp report` shows it)."""
    return json.loads(to_json(comp, plot, claims))


def _num(x):
    return x if finite(x) else None


def _clean(entry: dict) -> dict:
    return {k: _num(v) if isinstance(v, float) else v for k, v in entry.items()}


def _run_json(index: int, row: Row, comp: Comparison) -> dict:
    return {
        "label": row.label,
        "path": str(row.run.path),
        "status": row.run.status,
        "failed_to_learn": row.run.outcome == FAILED_TO_LEARN,
        "group": row.group,
        "test_set": row.run.test_set,
        "settings": {key: values[index] for key, values in comp.diff},  # the differing config keys
        "values": {k: _num(v) for k, v in row.values.items()},
        "deltas": {k: {"kind": column(k).delta, "value": _num(d.value), "verdict": d.verdict}
                   for k, d in row.deltas.items()},
        "config": row.run.config,
    }


def _group_json(g: Group) -> dict:
    stats = {k: {"mean": _num(g.mean(k)), "std": _num(g.std(k)), "n": len(g.numbers(k))} for k in GROUP_KEYS}
    samples = {k: {"mean": _num(g.mean(k)), "std": _num(g.std(k)), "n": s.n, "censored": s.censored,
                   "not_counted": [{"run": e.row.label, "path": str(e.row.run.path), "why": e.why} for e in s.excluded]}
               for k, s in g.samples.items()}
    first = g.primary.ref.name
    return {"label": g.label, "test_set": g.test_set, "runs": [r.label for r in g.used], "n": g.n,
            "n_runs": g.n_runs, "n_diverged": g.n_diverged, "n_failed": g.n_failed,
            "metric": first, "mean": _num(g.mean(first)), "std": _num(g.std(first)), "metrics": samples,
            "duplicates": [{"run": e.row.label, "why": e.why} for e in g.duplicates],
            "excluded": [{"run": e.row.label, "path": str(e.row.run.path), "why": e.why} for e in g.excluded],
            **stats}


def _pivot_json(p: Pivot) -> dict:
    def cell(g: Group | None) -> dict | None:
        return None if g is None else {"group": g.label, "mean": _num(g.mean(p.metric)), "std": _num(g.std(p.metric)),
                                       "n": g.sample(p.metric).n, "n_runs": g.n_runs, "n_diverged": g.n_diverged,
                                       "n_failed": g.n_failed, "text": pivot_cell(g, p.metric)}

    return {"metric": p.metric, "row_keys": p.row_keys, "column_key": p.column_key,
            "columns": p.column_values if p.column_key else [],
            "rows": [{"values": dict(zip(p.row_keys, values)), "cells": [cell(g) for g in cells]}
                     for values, cells in zip(p.row_values, p.cells)]}


def to_csv(comp: Comparison) -> str:
    """One row per run: its group, the differing config keys, raw values, then deltas (`_delta`/`_ratio`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = [key for key, _ in comp.diff]
    columns = [*COLUMNS, *comp.extra_columns]
    writer.writerow(["run", "path", "status", "failed_to_learn", "group"] + keys + [c.key for c in columns]
                    + [f"{c.key}_{c.delta if c.delta == 'ratio' else 'delta'}" for c in columns])
    for i, row in enumerate(comp.rows):
        d = [row.deltas[c.key].value if row.deltas else None for c in columns]
        writer.writerow([row.label, row.run.path, row.run.status, int(row.run.outcome == FAILED_TO_LEARN), row.group]
                        + [vs[i] for _, vs in comp.diff]
                        + [_cell(row.values.get(c.key)) for c in columns] + [_cell(x) for x in d])
    return out.getvalue()


def pivot_csv(p: Pivot) -> str:
    """The pivot, one line per row of grid values: mean, std, n (counted), n_runs,
    n_diverged and n_failed per column value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [f"{p.column_key}={v}" if p.column_key else p.metric for v in p.column_values]
    stat_names = ("mean", "std", "n", "n_runs", "n_diverged", "n_failed")
    writer.writerow(p.row_keys + [f"{name} {stat}" for name in names for stat in stat_names])
    for values, cells in zip(p.row_values, p.cells):
        stats = [x for g in cells for x in ((_cell(g.mean(p.metric)), _cell(g.std(p.metric)), g.sample(p.metric).n,
                                             g.n_runs, g.n_diverged, g.n_failed) if g else ("", "", 0, 0, 0, 0))]
        writer.writerow([*values, *stats])
    return out.getvalue()


def _cell(x) -> str:
    return "" if x is None else f"{x:.10g}"  # full precision, without float noise


def to_markdown(comp: Comparison, *, with_curves: bool = True, plot: str | None = None) -> str:
    """Pipe tables for the diff, the metrics and the groups (or the pivot), to paste into an issue."""
    if comp.pivot:
        parts = [f"### {pivot_title(p, comp.last)}\n\n" + markdown_table(*pivot_table(p))
                 for p in comp.pivots or [comp.pivot]]
    else:
        parts = [f"### Config diff\n\n{markdown_table(*diff_columns(comp))}"
                 if comp.diff else "### Config diff\n\nThe configs are identical."]
        parts.append(f"### {metrics_title(comp)}\n\n" + markdown_table(*metrics_table(comp, with_curves)))
        if show_groups(comp):
            parts.append("### Seed groups\n\n" + markdown_table(*groups_table(comp)))
    lines = warning_lines(comp) + comparison_lines(comp)
    if lines:
        parts.append("\n".join(f"- {line}" for line in lines))
    if plot:
        parts.append(f"![learning curves]({plot})")
    return "\n\n".join(parts) + "\n"
