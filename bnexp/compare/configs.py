"""Config keys: the diff between runs, the seed groups they fall into, and the labels that name them."""

from __future__ import annotations

import os
from pathlib import Path

from bnexp.compare.runs import Run
from bnexp.compare.groups import Group
from bnexp.formats import MISSING


# Keys that tell seeds of one experiment apart without changing the experiment
# (diagnostics and the train-set evaluation only observe a run: they change none of
# its training numbers).
NOT_EXPERIMENT = ("seed", "name", "data.dir")
OBSERVERS = ("diagnostics.", "train.eval_train_examples")
TEST_SET = "test set"  # the pseudo-key that keeps runs of different test sets apart


def config_diff(runs: list[Run], all_keys: bool = False) -> list[tuple[str, list[str]]]:
    """(key, one value per run) for the keys that differ, or every key with `all_keys`."""
    table = [(key, [r.config.get(key, MISSING) for r in runs]) for key in _keys(runs)]
    return [(k, vs) for k, vs in table if all_keys or len(set(vs)) > 1]


def _keys(runs: list[Run]) -> list[str]:
    """All config keys in the order the configs list them (dict keeps first sight)."""
    return list(dict.fromkeys(k for r in runs for k in r.config))


def seed_groups(runs: list[Run]) -> list[tuple[str, list[int]]]:
    """(label, indices into runs) for runs on one test set whose configs are equal without
    seed, name, data dir and observers, in order of first sight.

    The label names the config keys that tell the groups apart, in order of first sight.
    """
    by_key: dict[frozenset, list[int]] = {}
    for i, run in enumerate(runs):
        by_key.setdefault(frozenset(_experiment(run).items()), []).append(i)
    configs = [_experiment(runs[idx[0]]) for idx in by_key.values()]
    differing = _needed(differing_keys(configs), configs)
    return [(_assignments(c, differing) or "all runs", idx)
            for c, idx in zip(configs, by_key.values())]


def differing_keys(configs: list[dict[str, str]]) -> list[str]:
    return [k for k in dict.fromkeys(k for c in configs for k in c)
            if len({c.get(k, MISSING) for c in configs}) > 1]


def _needed(keys: list[str], configs: list[dict[str, str]], fixed: list[str] = ()) -> list[str]:
    """`keys` without the test set when the other keys (and `fixed`) already tell every
    config apart: usually data.dataset says it, and the label need not say it twice."""
    rest = [k for k in keys if k != TEST_SET]
    if len({tuple(c.get(k, MISSING) for k in [*rest, *fixed]) for c in configs}) == len(configs):
        return rest
    return keys


def _experiment(run: Run) -> dict[str, str]:
    """The keys that make the experiment, and the test set it is measured on."""
    keys = {k: v for k, v in run.config.items() if k not in NOT_EXPERIMENT and not k.startswith(OBSERVERS)}
    return keys | {TEST_SET: run.test_set}


def _assignments(config: dict[str, str], keys: list[str]) -> str:
    return ", ".join(f"{k}={config.get(k, MISSING)}" for k in keys)


def run_labels(runs: list[Run]) -> list[str]:
    """Legend labels from the config keys that differ, e.g. `model.norm.kind=batch, seed=1`.

    The name and data dir are left out because they restate the run rather than
    the experiment; when nothing else differs the run's path label is used.
    """
    keys = [k for k, _ in config_diff(runs) if k not in ("name", "data.dir")]
    fallback = path_labels([r.path for r in runs])
    return [_assignments(r.config, keys) or f for r, f in zip(runs, fallback)]


def path_labels(paths: list[Path]) -> list[str]:
    """Paths relative to their common parent: short, and still unique."""
    root = Path(os.path.commonpath([p.absolute() for p in paths]))
    rel = [str(p.absolute().relative_to(root)) for p in paths]
    return rel if all(r != "." for r in rel) else [str(p) for p in paths]


def pivot_keys(groups: list[Group]) -> list[str]:
    """The config keys a pivot of `groups` may take: those whose values differ between groups."""
    return [k for k in differing_keys([_experiment(g.rows[0].run) for g in groups]) if k != TEST_SET]
