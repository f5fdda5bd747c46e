"""The statistics of a comparison: which groups are tested against which baseline, by which test.

bnexp.stats (and with it SciPy) is imported only here, and only when two seed groups are to be
compared; `GroupComparison.sentence` is bnexp.wording's verdict line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bnexp import metrics
from bnexp.compare.configs import _experiment, pivot_keys
from bnexp.compare.groups import METRIC, Exclusion, Group, Row, deltas
from bnexp.errors import UsageError
from bnexp.formats import MISSING
from bnexp.status import Status

if TYPE_CHECKING:  # imported at run time only when groups are compared: it imports SciPy
    from bnexp import stats


@dataclass(frozen=True)
class GroupComparison:
    """One group against its family's baseline group, on one metric.

    `result` is bnexp.stats' SeedComparison, or None when a side has no usable run.
    `family` names the Holm family: the metric, on one test set.
    """

    baseline: Group
    group: Group
    result: stats.SeedComparison | None
    ref: metrics.Ref = metrics.Ref(metrics.get(METRIC))
    family: str = ""

    @property
    def metric(self) -> str:
        return self.ref.name

    @property
    def verdict(self) -> str:
        return self.result.verdict if self.result else "too_few_seeds"

    @property
    def excluded(self) -> list[Exclusion]:
        return self.baseline.sample(self.metric).excluded + self.group.sample(self.metric).excluded

    def counts(self) -> str:
        """How many runs each side counts, and how many diverged or failed: said in every sentence."""
        def side(g: Group) -> str:
            s = g.sample(self.metric)
            text = f"{g.label}: {s.n} of {g.n_seeds}"
            extra = [g.failures()] if g.failures() else []
            if s.censored:
                extra.append(f"{s.censored} censored")
            return text + (f", {', '.join(extra)}" if extra else "")

        return f"runs counted: {side(self.group)}; {side(self.baseline)}"

    def everyone_counted(self) -> bool:
        """Whether every run of both sides is in the test: then the sentence need not count them."""
        return all(g.sample(self.metric).n == g.n_seeds and not g.failures() and not g.sample(self.metric).censored
                   for g in (self.baseline, self.group))

    def sentence(self) -> str:
        """bnexp.wording's verdict line for the result, with the runs each side counts whenever one is left
        out, diverged, failed to learn or censored."""
        if self.result is None:
            core = "no run with a value on one side: nothing to compare"
        else:
            from bnexp.wording import comparison_sentence  # deferred: it imports bnexp.stats

            core = comparison_sentence(self.result)
        return core if self.everyone_counted() else f"{core} ({self.counts()})"

    def to_dict(self) -> dict:
        """A `comparisons` entry of `compare --format json`; nulls where there is no p-value."""
        from bnexp.wording import note_text  # deferred, as in sentence()

        numbers = {**self.result.to_dict(), "note": note_text(self.result.notes)} if self.result else {
            "test": "none", "p": None, "p_adjusted": None, "difference": None, "ci_low": None, "ci_high": None,
            "ci_level": None, "ci_of": None, "effect_size": None, "n_a": self.baseline.sample(self.metric).n,
            "n_b": self.group.sample(self.metric).n, "verdict": "too_few_seeds", "seeds_needed": None,
            "advice_reason": None, "note": self.sentence()}
        sides = {}
        for key, g in (("a", self.baseline), ("b", self.group)):
            sides.update({f"n_runs_{key}": g.n_runs, f"n_diverged_{key}": g.n_diverged,
                          f"n_failed_{key}": g.n_failed, f"n_censored_{key}": g.sample(self.metric).censored})
        return {"a": self.baseline.label, "b": self.group.label, "metric": self.metric, "family": self.family,
                **numbers, "n_diverged": self.baseline.n_diverged + self.group.n_diverged,
                "n_failed": self.baseline.n_failed + self.group.n_failed, **sides,
                "sentence": self.sentence(),
                "excluded": [{"path": str(e.row.run.path), "why": e.why} for e in self.excluded]}


def baseline_groups(groups: list[Group], baseline: str | None) -> dict[str, Group]:
    """Test set → its baseline group: the first group of each test set, or the one `baseline` picks.

    `baseline` is a run's path (its group), or grid values `key=value[,key=value]` that
    must pick exactly one group; UsageError names the allowed keys or values otherwise.
    """
    firsts = {}
    for g in groups:
        firsts.setdefault(g.test_set, g)
    if baseline is None:
        return firsts
    chosen = _groups_of_path(groups, baseline) if Path(baseline).exists() else _groups_of_values(groups, baseline)
    return firsts | {g.test_set: g for g in chosen}


def _groups_of_path(groups: list[Group], path: str) -> list[Group]:
    wanted = Path(path).resolve()
    found = [g for g in groups if any(r.run.path.resolve() == wanted for r in g.rows)]
    if not found:
        raise UsageError(f"--baseline {path}: not one of the runs compared")
    return found


ASSIGNMENT = re.compile(r",(?=\s*[A-Za-z_][\w.]*=)")


def _groups_of_values(groups: list[Group], text: str) -> list[Group]:
    """The groups whose configs hold every `key=value` of `text` (values compared as YAML)."""
    import yaml

    allowed = pivot_keys(groups)
    wanted = {}
    for part in ASSIGNMENT.split(text):
        key, sep, value = part.strip().partition("=")
        if not sep or key not in allowed:
            choices = ", ".join(allowed) or "none: the runs differ only in seed"
            raise UsageError(f"--baseline {text}: name a run directory, or grid values KEY=VALUE of the keys that"
                             f" differ between groups ({choices})")
        wanted[key] = _yaml_value(yaml, value)
    found = [g for g in groups if all(_yaml_value(yaml, _experiment(g.rows[0].run).get(k, MISSING)) == v
                                      for k, v in wanted.items())]
    if not found:
        values = {k: sorted({_experiment(g.rows[0].run).get(k, MISSING) for g in groups}) for k in wanted}
        raise UsageError(f"--baseline {text}: matches no group ("
                         + "; ".join(f"{k} has {', '.join(vs)}" for k, vs in values.items()) + ")")
    per_set: dict[str, list[Group]] = {}
    for g in found:
        per_set.setdefault(g.test_set, []).append(g)
    for matches in per_set.values():
        if len(matches) > 1:
            raise UsageError(f"--baseline {text}: matches {len(matches)} groups ("
                             + "; ".join(g.label for g in matches) + "): also name the keys that tell them apart")
    return found


def _yaml_value(yaml, text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def compare_to_baselines(groups: list[Group], refs: list[metrics.Ref] | None = None,
                   bases: dict[str, Group] | None = None) -> list[GroupComparison]:
    """Each group against its test set's baseline group, per metric: one Holm family per
    metric and test set. A binary metric is tested by Fisher's exact test."""
    refs = refs or [metrics.Ref(metrics.get(METRIC))]
    bases = bases or baseline_groups(groups, None)
    out = []
    for ref in refs:
        for test_set in dict.fromkeys(g.test_set for g in groups):
            baseline = bases[test_set]
            others = [g for g in groups if g.test_set == test_set and g is not baseline]
            if not others:
                continue
            from bnexp import stats  # deferred: it imports SciPy

            key = ref.name
            testable = [g for g in others if counted(g, ref) and counted(baseline, ref)]
            ranked = [ranked_call(baseline, g, ref) for g in testable]
            results = dict(zip(map(id, testable),
                               stats.compare_family(baseline.by_seed(key), [g.by_seed(key) for g in testable],
                                                    binary=ref.metric.kind == "binary", ranked=ranked)
                               if testable else []))
            family = f"{ref.name} on {test_set}"
            out += [GroupComparison(baseline, g, results.get(id(g)), ref, family) for g in others]
    return out


FAILURES = (Status.DIVERGED, metrics.FAILED_TO_LEARN)  # a run's outcome that ranks worst in a test


def failed_seeds(g: Group) -> set[int]:
    """Seeds whose run diverged or failed to learn: outcomes, the worst ones, not missing data."""
    return {int(seed) for seed, outcome in g.outcomes.items() if outcome in FAILURES}


def counted(g: Group, ref: metrics.Ref) -> bool:
    """Whether a group has anything to test on `ref`: a value, or (not binary) a failure."""
    return bool(g.sample(ref.name).n or (ref.metric.kind != "binary" and failed_seeds(g)))


def ranked_call(base: Group, group: Group, ref: metrics.Ref) -> dict | None:
    """bnexp.stats.compare_outcomes' arguments when a t-test cannot take the data: a side
    holds failed runs (ranked worst) or the metric is a time to an event (censored at a
    run's last step); None otherwise. Paired on matched seeds, except times to an event."""
    kind = ref.metric.kind
    if kind == "binary" or (kind != "time_to_event" and not (failed_seeds(base) or failed_seeds(group))):
        return None

    def side(g: Group) -> tuple[list[int], list[float], list[bool], list[bool]]:
        sample, failed = g.sample(ref.name), failed_seeds(g)
        seeds = sorted(set(sample.values) | failed)
        return (seeds, [math.nan if s in failed else sample.values[s] for s in seeds], [s in failed for s in seeds],
                [s in sample.censored_seeds and s not in failed for s in seeds])

    seeds_a, a, failed_a, censored_a = side(base)
    seeds_b, b, failed_b, censored_b = side(group)
    return dict(a=a, b=b, kind=kind, failed_a=failed_a, failed_b=failed_b, censored_a=censored_a,
                censored_b=censored_b, paired=seeds_a == seeds_b and kind != "time_to_event",
                higher_is_better=ref.metric.better >= 0)


def not_comparable(groups: list[Group]) -> list[str]:
    """One line per test set after the first: its runs are set only against each other."""
    sets = list(dict.fromkeys(g.test_set for g in groups))
    lines = []
    for test_set in sets[1:]:
        labels = [r.label for g in groups if g.test_set == test_set for r in g.rows]
        lines.append(f"{', '.join(labels)}: tested on {test_set}, not the baseline's {sets[0]}; "
                     "no delta or test against runs of another test set")
    return lines


def set_deltas(rows: list[Row], bases: dict[str, Group] | None = None, baseline: str | None = None) -> None:
    """Each row against its test set's baseline row: the run `baseline` names, else the first
    row of the baseline group (rows of other test sets are no baseline)."""
    named = Path(baseline).resolve() if baseline is not None and Path(baseline).exists() else None
    base_rows: dict[str, Row] = {}
    for test_set, group in (bases or {}).items():
        base_rows[test_set] = next((r for r in group.rows if named is not None and r.run.path.resolve() == named),
                                   group.rows[0])
    for row in rows:
        base = base_rows.setdefault(row.run.test_set, row)
        if base is not row:
            row.deltas = deltas(base.values, row.values)
