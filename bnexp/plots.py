"""Matplotlib figures drawn from run directories.

matplotlib is imported inside the functions: `bnexp compare` without `--plot`
should not pay for it. Figures are built on `matplotlib.figure.Figure` directly,
which renders through Agg without touching pyplot's global state or needing a
display.
"""

from __future__ import annotations

from pathlib import Path

from bnexp.compare import Run, run_labels, seed_groups

CURVES = (("test_accuracy", "test accuracy"), ("test_loss", "test loss"))


def plot_learning_curves(runs: list[Run], path: str | Path) -> Path:
    """Test accuracy and test loss against step for every run, side by side.

    A seed group of more than one run is drawn as its mean with a min–max band
    (its runs faint behind it), because single seeds of the same config would
    otherwise hide the difference between configs behind their own noise.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    labels = run_labels(runs)
    groups = seed_groups(runs)
    for colour, (label, idx) in zip(_colours(len(groups)), groups):
        members = [runs[i] for i in idx]
        for ax, (key, _) in zip(axes, CURVES):
            if len(members) == 1:
                _draw_run(ax, members[0], key, colour, labels[idx[0]])
            else:
                _draw_group(ax, members, key, colour, f"{label} (n={len(members)})")
    for ax, (_, name) in zip(axes, CURVES):
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.set_title(f"{name} vs step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def _curve(run: Run, key: str) -> tuple[list[float], list[float]]:
    return [m["step"] for m in run.metrics], [m[key] for m in run.metrics]


def _draw_run(ax, run: Run, key: str, colour, label: str) -> None:
    ax.plot(*_curve(run, key), color=colour, label=label, linewidth=1.5)


def _draw_group(ax, runs: list[Run], key: str, colour, label: str) -> None:
    """Each seed faint, then the mean and the min–max band at each evaluated step.

    A step counts the runs that reached it, so a seed still running narrows the
    band at the end instead of ending the group's curve.
    """
    by_step: dict[float, list[float]] = {}
    for run in runs:
        ax.plot(*_curve(run, key), color=colour, alpha=0.25, linewidth=0.8)
        for step, value in zip(*_curve(run, key)):
            by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    mean = [sum(by_step[s]) / len(by_step[s]) for s in steps]
    ax.fill_between(steps, [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps],
                    color=colour, alpha=0.2, linewidth=0)
    ax.plot(steps, mean, color=colour, linewidth=2, label=f"{label}, mean, min–max")
