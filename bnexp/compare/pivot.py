"""The pivot: one metric over seeds in a table of grid values."""

from __future__ import annotations

from dataclasses import dataclass

from bnexp.compare.configs import _experiment, _needed, differing_keys, pivot_keys
from bnexp.compare.groups import METRIC, Group
from bnexp.errors import UsageError
from bnexp.formats import MISSING


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
