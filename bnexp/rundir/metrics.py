"""metrics.csv: one row per evaluation, one header, typed cells, read across format versions.

The columns are declared once, below. Each carries the format version that added it, so
a file written before a column existed still loads: its header is the column set of its
version, and the missing cells read as None. Adding a column is one line here (with
`since` one above the newest), plus the code that measures it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from bnexp.errors import RunFileError


@dataclass(frozen=True)
class Column:
    name: str
    type: type
    since: int = 1  # the metrics format version that added the column


COLUMNS = (
    Column("step", int),
    Column("epoch", float),
    Column("train_loss", float),  # running mean over the steps since the previous row, in training mode
    Column("train_accuracy", float),  # the same running mean, of batch accuracy
    # A fixed subset of the training set, evaluated in inference mode like the test set
    # (empty with train.eval_train_examples = 0).
    Column("train_set_loss", float, since=2),
    Column("train_set_accuracy", float, since=2),
    Column("test_loss", float),
    Column("test_accuracy", float),
    Column("learning_rate", float),
    Column("elapsed_s", float),
)
NAMES = tuple(c.name for c in COLUMNS)


def known_headers(columns: tuple[Column, ...]) -> dict[str, list[Column]]:
    """Every header a format version of `columns` has, mapped to its columns."""
    newest = max(c.since for c in columns)
    return {",".join(c.name for c in columns if c.since <= v): [c for c in columns if c.since <= v]
            for v in range(1, newest + 1)}


HEADERS = known_headers(COLUMNS)


def header() -> str:
    return ",".join(NAMES) + "\n"


def format_row(row: dict) -> str:
    """One line; floats in repr form, so reruns compare byte for byte; None as an empty cell."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(["" if row.get(c) is None else row[c] for c in NAMES])
    return buffer.getvalue()


def parse(text: str, path: Path) -> list[dict]:
    """The complete rows of a metrics file's text; a torn last line (a kill mid-write) is no row yet."""
    lines = text.split("\n")
    columns = HEADERS.get(lines[0])
    if columns is None:
        raise RunFileError(f"{path} is corrupt: its header is not one bnexp writes ({header().strip()})")
    return [_row(cells, columns, path, n) for n, cells in enumerate(csv.reader(lines[1:-1]), start=2)]


def _row(cells: list[str], columns: list[Column], path: Path, line: int) -> dict:
    if len(cells) != len(columns):
        raise RunFileError(f"{path} is corrupt: line {line} has {len(cells)} cells, expected {len(columns)}")
    row = dict.fromkeys(NAMES)
    # The first format's columns are in every row any bnexp wrote; a later column's cell is
    # empty in a row written before it existed (or, for the training subset, when it is off).
    empty = [c.name for c, cell in zip(columns, cells) if not cell and c.since == 1]
    if empty:
        raise RunFileError(f"{path} is corrupt: line {line} has no {empty[0]}")
    try:
        row.update({c.name: c.type(cell) if cell else None for c, cell in zip(columns, cells)})
    except ValueError:
        raise RunFileError(f"{path} is corrupt: non-numeric cell in line {line}: {','.join(cells)}") from None
    return row
