"""Claims' verdicts on screen and in Markdown: `bnexp sweep`, `bnexp compare` and the claims report.

Each result is a dict from bnexp.claims.judge_entries (name, verdict, difference, ci_low, ci_high,
p, p_adjusted, n_better, n_than, seeds_needed, direction, family, notes, ...). One table
per Holm family, so that an adjusted p is always read beside the claims it was adjusted
over; the verdict is coloured by the one status map (holds green, contradicted red,
inconclusive amber).
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from bnexp.formats import MISSING, p_value, signed, word
from bnexp.present import markdown_table, status

HEADER = ["claim", "verdict", "difference [CI]", "p", "adjusted p", "n better/than", "seeds needed", "notes"]


def difference_with_ci(result: dict) -> str:
    """`+0.0034 [95% CI +0.0021, +0.0047]`, at the level the verdict used (`ci_level`: under
    Holm 1 − α·p/p_adjusted, for TOST 1 − 2α·p/p_adjusted); Fisher's interval is the odds
    ratio's, and says so. An unbounded end (null in JSON) reads ∞."""
    text = signed(result["difference"])
    if result.get("ci_low") is None and result.get("ci_high") is None:
        return text
    level = result.get("ci_level") or (0.90 if result.get("direction") == "equivalent" else 0.95)
    label = f"{100 * level:.3g}% CI"
    if result.get("ci_of") == "odds_ratio":
        low, high = (MISSING if x is None else f"{x:.3g}" for x in (result["ci_low"], result["ci_high"]))
        return f"{text} [odds ratio {label} {low}, {'∞' if result['ci_high'] is None else high}]"
    return f"{text} [{label} {signed(result['ci_low'])}, {signed(result['ci_high'])}]"


def label(result: dict) -> str:
    """The claim's name with its standing (bnexp.claims.register): `bn-sooner (post hoc)`, `… (withdrawn)`."""
    tags = [t for t, on in (("withdrawn", result.get("status") == "withdrawn"),
                            ("post hoc", result.get("post_hoc"))) if on]
    return f"{result['name']} ({', '.join(tags)})" if tags else result["name"]


def cells(result: dict) -> list[str]:
    """The text of one row, in HEADER's order."""
    needed = result.get("seeds_needed")
    return [label(result), word(result["verdict"]), difference_with_ci(result), p_value(result["p"]),
            p_value(result["p_adjusted"]), f"{result['n_better']}/{result['n_than']}",
            seeds_needed(needed, result.get("advice_reason"), result["verdict"]), "; ".join(result.get("notes") or [])]


# Why the seed advisor gives no number (bnexp.stats.Advice), so "—" never means two things.
NO_ADVICE = {"decided": "not needed", "beyond_max": "> 1000", "no_difference": "none: no difference",
             "not_planned": "not planned for this test"}


def seeds_needed(needed: int | None, reason: str | None, verdict: str) -> str:
    """The advisor's number, or why there is none."""
    if needed is not None:
        return str(needed)
    if reason is None and verdict in ("holds", "contradicted"):
        reason = "decided"
    return NO_ADVICE.get(reason, MISSING)


def families(results: list[dict]) -> dict[str, list[dict]]:
    """The results by Holm family, in order of first sight."""
    grouped: dict[str, list[dict]] = {}
    for result in results:
        grouped.setdefault(result.get("family") or "claims", []).append(result)
    return grouped


def claims_tables(results: list[dict]) -> list[Table]:
    """One Rich table per Holm family, the verdict in its colour."""
    tables = []
    for family, members in families(results).items():
        table = Table(title=f"Claims (one Holm family: {family})", title_justify="left")
        for name in HEADER:
            table.add_column(name, overflow="fold", justify="right" if name in ("p", "adjusted p", "seeds needed") else "left")
        for result in members:
            row = [Text(c) for c in cells(result)]
            row[1] = status(result["verdict"])
            table.add_row(*row)
        tables.append(table)
    return tables


def claims_markdown(results: list[dict]) -> str:
    """The same tables as Markdown, each under its family's heading."""
    parts = []
    for family, members in families(results).items():
        parts.append(f"### Claims (one Holm family: {family})\n\n" + markdown_table(HEADER, [cells(r) for r in members]))
    return "\n\n".join(parts)

