"""Matplotlib figures drawn from run directories (read through bnexp.rundir).

matplotlib is imported inside the functions: `bnexp compare` without `--plot`
should not pay for it. Figures are built on `matplotlib.figure.Figure` directly,
which renders through Agg without touching pyplot's global state or needing a
display.
"""

from __future__ import annotations

from pathlib import Path

from bnexp.bands import BAND, group_style, seed_band
from bnexp.compare import Run, run_labels, seed_groups
from bnexp.rundir import RunDir, write_atomic

CURVES = (("test_accuracy", "test accuracy"), ("test_loss", "test loss"))


def plot_learning_curves(runs: list[Run], path: str | Path) -> Path:
    """Write `learning_curves_figure(runs)` to `path` (.png, .pdf or .svg)."""
    return save(learning_curves_figure(runs), path, dpi=120)


def save(fig, path: str | Path, dpi: int) -> Path:
    """Write `fig` to `path` whole or not at all (rundir.write_atomic): a full disk leaves
    no empty or torn image behind."""
    import io

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=out.suffix.lstrip(".").lower() or "png")
    write_atomic(out, buffer.getvalue())
    return out


def learning_curves_figure(runs: list[Run]):
    """Test accuracy and test loss against step for every run, side by side; below them the
    BN diagnostics and Santurkar et al.'s measurements, where runs recorded them.

    A seed group of more than one run is drawn as its mean with the band of
    bnexp.bands.seed_band, min–max over its seeds (its runs faint behind it), because
    single seeds of the same config would otherwise hide the difference between configs
    behind their own noise.
    """
    from matplotlib.figure import Figure

    diagnosed = any(RunDir(run.path).has_diagnostics("activations") for run in runs)
    measured = any(RunDir(run.path).has_diagnostics(kind) for run in runs for kind in ("ics", "landscape"))
    rows = 1 + diagnosed + measured
    fig = Figure(figsize=(12, 4.5 * rows), layout="constrained")
    grid = fig.subplots(rows, 2, squeeze=False)
    axes = grid[0]
    labels = [_wrap(label) for label in run_labels(runs)]
    groups = [(_wrap(label), idx) for label, idx in seed_groups(runs)]
    colours = _colours(len(groups))
    for colour, (label, idx) in zip(colours, groups):
        members = [runs[i] for i in idx]
        for ax, (key, _) in zip(axes, CURVES):
            if len(members) == 1:
                _draw_run(ax, members[0], key, colour, labels[idx[0]])
            else:
                seeds = len({run.seed for run in members})  # a repeated seed is one seed
                _draw_group(ax, members, key, colour, f"{label} (n={seeds})")
    for ax, (_, name) in zip(axes, CURVES):
        _label(ax, name, f"{name} vs step")
    axes[0].legend(fontsize="small")
    if diagnosed:
        _draw_diagnostics(grid[1], runs, groups, colours, labels)
    if measured:
        _draw_santurkar(grid[rows - 1], runs, groups, colours, labels)
    return fig


def _colours(n: int) -> list[str]:
    """The report's palette (bnexp.bands), so a group has one colour in both."""
    return [group_style(i)[0] for i in range(n)]


def _curve(run: Run, key: str) -> tuple[list[float], list[float]]:
    return [m["step"] for m in run.metrics], [m[key] for m in run.metrics]


def _draw_run(ax, run: Run, key: str, colour, label: str) -> None:
    ax.plot(*_curve(run, key), color=colour, label=label, linewidth=1.5)


def _draw_group(ax, runs: list[Run], key: str, colour, label: str) -> None:
    """Each seed faint, then the mean and the band (bnexp.bands.seed_band) at each evaluated step."""
    import numpy as np

    for run in runs:
        ax.plot(*_curve(run, key), color=colour, alpha=0.25, linewidth=0.8)
    steps, mean, low, high = seed_band([_curve(run, key) for run in runs])
    edges = [np.array([np.nan if v is None else v for v in edge], dtype=float) for edge in (low, high)]
    ax.fill_between(steps, *edges, color=colour, alpha=0.2, linewidth=0)
    ax.plot(steps, mean, color=colour, linewidth=2, label=f"{label}, mean, {BAND}")


def _wrap(label: str, width: int = 48) -> str:
    """Legend entries and titles from long config diffs and claims, folded at the commas so
    the axes keep their room; shown as written (a `$` is a dollar: no TeX from a file is set)."""
    import textwrap

    label = label.replace("$", r"\$")
    return "\n".join(textwrap.wrap(label, width, break_long_words=False)) or label


def _label(ax, ylabel: str, title: str) -> None:
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)


def _draw_diagnostics(axes, runs: list[Run], groups, colours, labels) -> None:
    """Ioffe & Szegedy's Figure 1(b, c) and the BN gap, for the first run of each group.

    (b, c): the 15th, 50th and 85th percentiles of the input to one activation unit
    (the last hidden layer's first recorded unit) over training. A seed group shows its
    first seed: percentiles of different seeds' units are not comparable units anyway.
    """
    for colour, (label, idx) in zip(colours, groups):
        run = RunDir(runs[idx[0]].path)
        rows = run.read_diagnostics("activations")
        if not rows:
            continue
        layer = max(r["layer"] for r in rows)
        unit = min(r["unit"] for r in rows if r["layer"] == layer)
        chosen = [r for r in rows if r["layer"] == layer and r["unit"] == unit]
        steps = [r["step"] for r in chosen]
        name = labels[idx[0]] if len(idx) == 1 else label
        axes[0].fill_between(steps, [r["p15"] for r in chosen], [r["p85"] for r in chosen],
                             color=colour, alpha=0.2, linewidth=0)
        axes[0].plot(steps, [r["p50"] for r in chosen], color=colour, label=f"{name}: layer {layer} unit {unit}")
        by_step: dict[int, list[float]] = {}
        for r in run.read_diagnostics("bn"):
            by_step.setdefault(r["step"], []).append(r["mean_gap"])
        if by_step:  # a run without BN has no rows
            axes[1].plot(sorted(by_step), [sum(v) / len(v) for _, v in sorted(by_step.items())], color=colour, label=name)
    _label(axes[0], "activation input", "activation input: 15th, 50th (line), 85th percentiles")
    _label(axes[1], "mean |batch mean − moving mean|", "BN: batch vs moving statistics (mean over layers)")
    axes[0].legend(fontsize="small")
    if axes[1].lines:
        axes[1].legend(fontsize="small")


def _draw_santurkar(axes, runs: list[Run], groups, colours, labels) -> None:
    """Santurkar et al. (2018), for the first run of each group: internal covariate shift
    (Definition 2.1; the ℓ2 change of each layer's gradient, averaged over the layers after
    the first, whose shift is 0 by definition) and the landscape's effective β-smoothness
    (solid) and gradient predictiveness (dashed, the largest gradient change), Figure 4(b, c)."""
    for colour, (label, idx) in zip(colours, groups):
        run = RunDir(runs[idx[0]].path)
        name = labels[idx[0]] if len(idx) == 1 else label
        by_step: dict[int, list[float]] = {}
        for r in run.read_diagnostics("ics"):
            if r["layer"] > 0:
                by_step.setdefault(r["step"], []).append(r["ics_l2"])
        if by_step:
            axes[0].plot(sorted(by_step), [sum(v) / len(v) for _, v in sorted(by_step.items())], color=colour, label=name)
        rows = run.read_diagnostics("landscape")
        if rows:
            steps = [r["step"] for r in rows]
            axes[1].plot(steps, [r["beta_smoothness"] for r in rows], color=colour, label=f"{name}: β-smoothness")
            axes[1].plot(steps, [r["grad_change_max"] for r in rows], color=colour, linestyle="--", label=f"{name}: max gradient change")
    _label(axes[0], "‖G − G′‖₂, mean over layers", "internal covariate shift (Santurkar et al., Def. 2.1)")
    _label(axes[1], "gradient change", "loss landscape: effective β-smoothness, gradient predictiveness")
    for ax in axes:
        if ax.lines:
            ax.set_yscale("log")
            ax.legend(fontsize="small")


def plot_claim(sides: list[tuple[str, list[Run]]], key: str, title: str, path: str | Path,
               threshold: float | None = None) -> Path:
    """One claim's two sides, `key` (test accuracy or loss) against step: each side's mean
    and min–max band over its seeds, and the threshold a steps-to-threshold claim names."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for colour, (label, runs) in zip(_colours(len(sides)), sides):
        _draw_group(ax, runs, key, colour, f"{_wrap(label)} (n={len(runs)})")
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    _label(ax, dict(CURVES)[key], _wrap(title, 80))
    ax.legend(fontsize="small")
    return save(fig, path, dpi=110)
