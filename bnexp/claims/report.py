"""The claims report (`bnexp claims-report`, run by `make claims`): one Markdown file with
every claim of a claims pack, its source, setup, verdict and numbers, and a figure per
claim where a curve says more than a number.

It reads sweep directories only: each claim is judged again from the sweep.json and run
directories (bnexp.sweep.claims_for's way), so it reports whatever exists. A sweep still
missing runs gives `inconclusive` claims whose notes say which; a sweep directory not
written at all is simply absent. No TensorFlow; matplotlib only for the figures.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

from bnexp import rundir, sweep as sweep_module
from bnexp.compare import Run, load_run
from bnexp.errors import RunDirError
from bnexp.present import MISSING, markdown_table, markdown_text
from bnexp.formats import p_value, word
from bnexp.present.claims import difference_with_ci, label
from bnexp.rundir import RunDir, write_atomic

HEADER = ["claim", "source", "setup", "verdict", "difference [CI]", "p", "adjusted p", "figure"]
# The curve that shows each metric better than its number does; other metrics get no figure.
CURVE = {"final_accuracy": "test_accuracy", "best_accuracy": "test_accuracy",
         "steps_to_threshold": "test_accuracy", "final_loss": "test_loss"}
# The setup column: label, the config keys it shows, and how it spells them from a run.
SETUP = (
    ("network", ("model.kind", "model.conv", "model.sequence", "model.permute", "model.lstm.units", "model.hidden", "model.activation"),
     lambda r: network(r.config)),
    ("norm", ("model.norm.kind",), lambda r: r.config["model.norm.kind"]),
    ("optimizer", ("train.optimizer", "train.learning_rate"),
     lambda r: f"{r.config['train.optimizer']} lr {r.config['train.learning_rate']}"),
    ("batch", ("train.batch_size",), lambda r: r.config["train.batch_size"]),
    ("steps", ("train.steps", "train.epochs"),
     lambda r: f"{r.summary.total_steps:,}" if r.summary.total_steps else MISSING),
)


def network(config: dict) -> str:
    """The network in a few words, from a run's flattened config: 784-100-100-10 relu; a cnn's
    conv blocks (filters, kernel, stride, pool) or an rnn's LSTM (units, sequence) in front."""
    widths = "-".join(config["model.hidden"].strip("[]").split(", "))
    kind = config.get("model.kind", "mlp")
    if kind == "cnn":
        blocks = re.findall(r"filters: (\d+), kernel: (\d+), stride: (\d+), pool: (\d+)", config["model.conv"])
        front = "28x28-" + "-".join(f"conv{k}x{k}/{s}:{f}" + (f"-pool{p}" if p != "1" else "") for f, k, s, p in blocks)
    elif kind == "rnn":
        permuted = "permuted " if config.get("model.permute") == "true" else ""
        front = f"{permuted}{config['model.sequence']}-lstm{config['model.lstm.units']}"
    else:
        front = "784"
    return f"{front}-{widths}-10 {config['model.activation']}"


def sweep_dirs(paths: list[Path]) -> list[Path]:
    """Each path that is a sweep directory, else the sweep directories directly inside it."""
    found = []
    for path in map(Path, paths):
        if (path / sweep_module.MANIFEST).is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir() if (p / sweep_module.MANIFEST).is_file())
    if not found:
        raise RunDirError(f"{', '.join(map(str, paths))}: no sweep directory (no {sweep_module.MANIFEST}) found")
    return found


def write_report(paths: list[Path], out: Path) -> Path:
    """Write `out` (Markdown) and its figures, in a folder beside it named after it."""
    out = Path(out)
    figures = out.with_suffix("")
    sections = [f"# Claims\n\nWritten by `bnexp claims-report` on {datetime.now(timezone.utc):%Y-%m-%d} from the"
                " sweep directories below, each claim judged again from its runs. A claim's p is"
                " adjusted (Holm) over the claims of its sweep file."]
    for directory in sweep_dirs(paths):
        sections.append(sweep_section(directory, out.parent, figures))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, "\n\n".join(sections) + "\n")
    return out


def sweep_section(directory: Path, base: Path, figures: Path) -> str:
    """One sweep's heading, its claims table and the claims' notes."""
    recorded = sweep_module.read_recorded(directory)
    results = sweep_module.judge_sweep_dir(recorded.name, recorded.claims, recorded.seeds, directory, recorded.points,
                                           recorded.registry)
    rows, notes = [], []
    for entry, result in zip(recorded.claims, results):
        sides = [(side, runs_of(recorded, getattr(entry, side))) for side in ("better", "than")]
        figure = claim_figure(recorded, entry, sides, figures)
        link = f"[figure]({os.path.relpath(figure, base)})" if figure else ""
        rows.append([f"**{label(result)}**: {entry.claim}", entry.source, setup(entry, sides, recorded.seeds),
                     word(result["verdict"]), difference_with_ci(result), p_value(result["p"]),
                     p_value(result["p_adjusted"]), link])
        notes += [f"- {entry.name}: {markdown_text(note)}" for note in result["notes"]]
    heading = f"## {recorded.name} (`{directory}`)"
    if not rows:
        return f"{heading}\n\nThis sweep has no claims."
    return "\n\n".join([heading, markdown_table(HEADER, rows)] + (["Notes:\n\n" + "\n".join(notes)] if notes else []))


def runs_of(recorded: sweep_module.Recorded, grid_point: dict) -> list[Run]:
    """The runs of one side that exist, in seed order."""
    by_seed = sweep_module.run_dirs_at(recorded.points, grid_point)
    paths = [rundir.inside(recorded.out, by_seed[s]) for s in recorded.seeds if s in by_seed]
    return [load_run(p) for p in paths if RunDir(p).has_summary()]


def setup(entry, sides: list[tuple[str, list[Run]]], seeds: list[int]) -> str:
    """Network, norm, optimizer and rate, batch, steps and seeds; `better vs than` where the sides differ."""
    (_, better), (_, than) = sides
    if not (better or than):
        return "not run yet"
    shown = set()
    parts = []
    for label, keys, spell in SETUP:
        shown.update(keys)
        values = [spell(runs[0]) for runs in (better, than) if runs]
        parts.append(f"{label} {values[0]}" if len(set(values)) == 1 else f"{label} {values[0]} vs {values[1]}")
    parts += [f"{key} {entry.better[key]} vs {entry.than[key]}" for key in entry.better
              if key not in shown and entry.better[key] != entry.than[key]]
    parts.append(f"seeds {', '.join(map(str, seeds))}")
    return "; ".join(parts)


def claim_figure(recorded, entry, sides: list[tuple[str, list[Run]]], figures: Path) -> Path | None:
    """The claim's learning curves, both sides, when its metric has a curve and both sides have runs."""
    key = CURVE.get(entry.metric)
    if key is None or not all(runs for _, runs in sides):
        return None
    from bnexp.plots import plot_claim  # matplotlib: only once there is a figure to draw

    labels = [", ".join(f"{k}={v}" for k, v in getattr(entry, side).items()
                        if entry.better[k] != entry.than[k]) or side for side, _ in sides]
    return plot_claim([(f"{side}: {label}", runs) for (side, runs), label in zip(sides, labels)], key,
                      f"{entry.name}: {entry.claim}", figures / f"{recorded.name}-{entry.name}.png", entry.threshold)
