"""How a seed group is drawn, in `compare --plot`'s matplotlib figures and the HTML report alike.

One palette and one band. The palette: Okabe & Ito's six colour-blind-safe colours, then
four darker hues; beyond ten groups colours repeat, each round with its own dash pattern.
The band around a seed group's mean curve is the min–max over its seeds at each step
(docs/comparing.md): it shows where every seed went, with no assumption about their
distribution. The statistics tables, not the band, say whether two groups differ.
"""

from __future__ import annotations

import math

PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
           "#7F3C8D", "#8C564B", "#3B3B3B", "#B8860B")
DASHES = (None, "6 3", "2 2.5", "9 3 2 3")
GREY = "#999999"  # a run in no seed group
BAND = "min–max over seeds"  # what the band is, for legends and notes


def group_style(index: int) -> tuple[str, str | None]:
    """The colour and dash pattern (SVG's stroke-dasharray, None for solid) of seed group `index`."""
    return PALETTE[index % len(PALETTE)], DASHES[index // len(PALETTE) % len(DASHES)]


def seed_band(curves: list[tuple[list, list]]) -> tuple[list[float], list[float], list[float | None], list[float | None]]:
    """The steps any seed reached, the mean over the seeds at each, and the band's low and high
    (min and max over those seeds), from each seed's (steps, values).

    A step counts the seeds that reached it with a finite value, so a seed still running
    narrows the band instead of ending the curve; a step of one seed has no band (None).
    """
    by_step: dict[float, list[float]] = {}
    for steps, values in curves:
        for step, value in zip(steps, values):
            if value is not None and math.isfinite(value):
                by_step.setdefault(float(step), []).append(float(value))
    steps = sorted(by_step)
    mean = [math.fsum(by_step[s]) / len(by_step[s]) for s in steps]
    low = [min(by_step[s]) if len(by_step[s]) > 1 else None for s in steps]
    high = [max(by_step[s]) if len(by_step[s]) > 1 else None for s in steps]
    return steps, mean, low, high
