"""Presentation: every table, progress bar, sparkline, colour and number format of bnexp.

The work (train, eval, compare, sweep) never prints: it returns data or calls a
Reporter, and this package draws. Here are the pieces every screen shares: the console,
the one status → style map and the one number formatter. Output that is not a terminal
gets plain lines and a wide console, so no table cell is cut.
"""

from __future__ import annotations

import math
import re
import sys

from rich.console import Console
from rich.segment import Segment
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text
from bnexp.formats import MISSING, number, word  # noqa: F401 (the terminal's formats are the formats module's)
from bnexp.status import Status

WIDE = 240  # a pipe or file has no width: wide enough that no table cell needs cutting
# A run's or point's status, and a claim's verdict (bnexp.claims): one map, one look.
STATUS_STYLE = {Status.COMPLETED: "green", Status.RUNNING: "cyan", Status.INTERRUPTED: "yellow", Status.PENDING: "dim",
                Status.DIVERGED: "magenta", Status.FAILED: "red",
                "holds": "green", "contradicted": "red", "inconclusive": "yellow", "untestable": "yellow"}
SPARK = "▁▂▃▄▅▆▇█"


# C0 and C1 control characters but tab and newline: ESC[2J, a carriage return or a CSI
# from a file would act on the terminal instead of showing.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class TextConsole(Console):
    """A Rich console that shows text as text: control characters in anything printed (a
    run's summary, a claim, a path) are dropped before they reach the terminal. Rich's own
    control segments (cursor moves of a live display, colours) pass as they are."""

    def _render_buffer(self, buffer) -> str:
        return super()._render_buffer(
            segment if segment.control else Segment(CONTROL.sub("", segment.text), segment.style, segment.control)
            for segment in buffer)


def console(stderr: bool = False, **options) -> Console:
    """A console that folds nothing away when its output is not a terminal, and shows no
    control character of the text it prints (TextConsole)."""
    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    return TextConsole(file=stream, **({"width": None if terminal else WIDE, "soft_wrap": not terminal} | options))


def progress_bar(out: Console, what: str, fields: str, refresh_per_second: float) -> Progress:
    """A live bar: `what`, the bar, done/total, `fields` (a template of the task's fields), elapsed and ETA."""
    return Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(fields),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=out,
        refresh_per_second=refresh_per_second,
    )


def status(name: str | None, width: int = 0) -> Text:
    """A run's or point's status, or a claim's verdict, in its colour (an unknown one in red), padded to `width`."""
    return Text(word(name).ljust(width), style=STATUS_STYLE.get(name or "unknown", "red"))


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


def markdown_text(text: str) -> str:
    """Text from a file as Markdown that shows it as written, on one line: control
    characters dropped, line breaks as spaces, `|` escaped (a table cell stays one), HTML
    as entities (no tag or comment can open), `$` escaped (no TeX is set). Emphasis marks
    and links are left: they cannot leave the cell."""
    text = CONTROL.sub(" ", str(text)).replace("\n", " ").replace("\t", " ")
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("$", "\\$")):
        text = text.replace(raw, safe)
    return text


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A pipe table whose every cell is markdown_text: one line, one cell, no HTML or TeX."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(markdown_text(c) for c in cells) + " |"

    return "\n".join([line(header), "|" + "---|" * len(header)] + [line(r) for r in rows])
