"""How bnexp writes a number, a p-value and a missing value: one voice for the terminal
(bnexp.present), Markdown (docs/claims.md, `--format markdown`) and the HTML report.

Plain functions from numbers to text, with no Rich and no SciPy, so every output imports
them at no cost. Each rule is here once: a change of digits shows everywhere alike.
"""

from __future__ import annotations

import math

MISSING = "—"  # no value: a run without a result, a key one version did not have
FORMATS = {  # kind of number -> format
    "fraction": "{:.4f}", "loss": "{:.4f}", "count": "{:.0f}", "seconds": "{:.2f}", "rate": "{:,.0f}",
    "epochs": "{:.2f}", "class": "{:.3f}", "number": "{:.4g}",
}
SMALLEST_P = 1e-4  # below it a p-value reads `< 0.0001`: printed as 0 it would claim certainty


def number(value, kind: str = "fraction") -> str:
    """A number as bnexp shows it: `kind` (fraction, loss, count, seconds, rate, epochs,
    class, number) sets the digits; None is a dash, and NaN or infinity is spelled out."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    return FORMATS[kind].format(value)


def measured(value, signed: bool = False) -> str:
    """A number by its size, for the report's cells and chart hover text, where one column
    holds a measure whatever its size: four decimals below 1 (accuracies and their
    differences read as `number`'s fractions), four significant digits up to 1,000, grouped
    thousands above (as `number`'s rates); a dash for None."""
    if value is None or isinstance(value, bool):
        return MISSING
    if not math.isfinite(value):
        return str(value)
    sign = "+" if signed else ""
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:{sign},.0f}"
    if magnitude >= 1:
        return f"{value:{sign}#.4g}"
    return f"{value:{sign}.4f}"


def signed(x: float | None, digits: int = 4) -> str:
    """A difference in the metric's own units, to 4 significant digits: +0.003456, -2100
    (a verdict sentence's difference: 3)."""
    return MISSING if x is None else f"{x:+.{digits}g}"


def p_value(p: float | None) -> str:
    """`0.0031`, or `< 0.0001`, to 2 significant digits; a dash where no test ran."""
    if p is None or not math.isfinite(p):
        return MISSING
    return f"< {SMALLEST_P:g}" if p < SMALLEST_P else f"{p:.2g}"


def p_relation(p: float) -> str:
    """`= 0.0031` or `< 0.0001`: the p-value as the end of a sentence's `p …`."""
    text = p_value(p)
    return text if text.startswith("<") else f"= {text}"


def level(fraction: float) -> str:
    """A confidence level as a percentage: `95%`, or `97.50%` when it is not a whole percent."""
    return f"{fraction:.0%}" if abs(fraction * 100 - round(fraction * 100)) < 1e-9 else f"{fraction:.2%}"


VERDICT_WORDS = {  # a verdict's value (bnexp.stats.Verdict, a claim's verdict) -> its words in a sentence
    "distinguishable": "distinguishable from seed noise", "not_distinguishable": "not distinguishable from seed noise",
    "too_few_seeds": "too few seeds", "untestable": "untestable",
    "holds": "holds", "contradicted": "contradicted", "inconclusive": "inconclusive",
}


def word(value: str | None) -> str:
    """A status or verdict as a table shows it: `too_few_seeds` reads `too few seeds`."""
    return str(value or "unknown").replace("_", " ")


def verdict(value: str) -> str:
    """A verdict in words: `not_distinguishable` reads `not distinguishable from seed noise`."""
    return VERDICT_WORDS.get(str(value), str(value).replace("_", " "))
