"""The diagnostics tables (diag_<kind>.csv): their columns, appended rows, and typed reading.

Each table is declared once in TABLES; bnexp.diagnostics fills its rows (dicts keyed by
column). A new table is one entry here, plus the code that measures it. Reading is
tolerant: a column a file lacks (written before it existed) reads as None.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from bnexp.errors import RunFileError

TABLES: dict[str, tuple[tuple[str, type], ...]] = {
    # Ioffe & Szegedy (2015), Figure 1(b, c): percentiles of an activation's input.
    "activations": (("step", int), ("layer", int), ("unit", int), ("p15", float), ("p50", float), ("p85", float)),
    # BN's batch statistics against its moving statistics.
    "bn": (("step", int), ("layer", int), ("mean_gap", float), ("variance_gap", float)),
    "gradients": (("step", int), ("variable", str), ("grad_norm", float)),
    # Santurkar et al. (2018), Definition 2.1, per Dense layer (0 the first hidden one, the last the logits).
    "ics": (("step", int), ("layer", int), ("ics_l2", float), ("ics_cosine", float)),
    # Santurkar et al. (2018), Figure 4: along the update direction from the current point.
    "landscape": (("step", int), ("loss_min", float), ("loss_max", float), ("grad_change_max", float), ("beta_smoothness", float)),
}


def header(kind: str) -> str:
    return ",".join(name for name, _ in TABLES[kind]) + "\n"


def format_rows(kind: str, rows: list[dict]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([[row[name] for name, _ in TABLES[kind]] for row in rows])
    return buffer.getvalue()


def rows_up_to(text: str, step: int, path: Path) -> str:
    """The complete data lines of a table's text whose step is at most `step`."""
    lines = text.splitlines(keepends=True)[1:]
    try:
        return "".join(line for line in lines if line.endswith("\n") and int(line.split(",")[0]) <= step)
    except ValueError:
        raise RunFileError(f"{path} is corrupt: a line whose first cell is no step") from None


def read(text: str, kind: str, path: Path) -> list[dict]:
    """The rows of a table's text, typed; RunFileError naming `path` when a cell is not of its type."""
    types = dict(TABLES[kind])
    try:
        rows = [{name: (types[name](row[name]) if row.get(name) not in (None, "") else None) for name in types}
                for row in csv.DictReader(io.StringIO(text, newline=""))]
        if any(row["step"] is None for row in rows):  # every reader places a row by its step
            raise RunFileError(f"{path} is corrupt: a row has no step (or the header no step column)")
        return rows
    except (ValueError, TypeError, csv.Error) as e:
        raise RunFileError(f"{path} is corrupt: {' '.join(str(e).split())[:120]}") from None
