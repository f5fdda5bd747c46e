"""Judging claims from runs: one run's value of a claim's metric (`run_metric`), each
claim's verdict over the seeds with the claims of one file as one Holm family
(`judge_entries`), the warnings before anything trains (`design_warnings`) and the exit
code of `bnexp sweep --check`.

It reads no files: the caller turns each run directory into a `RunRecord` and says which
runs belong to a grid point. SciPy (bnexp.stats) only once claims are judged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bnexp import metrics as metric_defs
from bnexp.claims.schema import MIN_SEEDS, ROW_KEYS, Expect
from bnexp.rundir.provenance import different_hardware_line
from bnexp.status import RESULTS, Status


@dataclass(frozen=True)
class RunRecord:
    """What a claim reads of one run; the caller builds it from the run directory."""

    status: str  # the run summary's: completed, diverged, running, interrupted, failed
    total_steps: int
    metrics: list[dict]  # the run's metrics rows in step order: step, test_accuracy, test_loss, ...
    generalization_gap: float | None = None  # the run summary's, when the run recorded one
    diagnostics: dict[str, list[dict]] = field(default_factory=dict)  # diagnostics table (bnexp.metrics.DIAGNOSTICS_COLUMNS name) → rows
    hardware: tuple | None = None  # rundir.provenance.same_hardware_key of its summary; None: not recorded
    summary: dict[str, Any] = field(default_factory=dict)  # the run's summary, for the metrics read from it
    evals: dict[str, Any] = field(default_factory=dict)  # the run's eval record (bnexp eval's results)

    def data(self) -> metric_defs.RunData:
        """What bnexp.metrics reads of this run."""
        summary = {**self.summary, "total_steps": self.summary.get("total_steps") or self.total_steps}
        if self.generalization_gap is not None:
            summary["generalization_gap"] = self.generalization_gap
        return metric_defs.RunData(self.status, summary, self.metrics, self.diagnostics, self.evals)
    test_set: str | None = None  # dataset and number of test examples, as compare names it; None: not recorded


@dataclass(frozen=True)
class MetricValue:
    """One run's value of a claim's metric (None: the run cannot take part) and why, if notable."""

    value: float | None
    note: str | None = None
    censored: bool = False  # time to event: the run never got there; value is its last step


# --- one run's value -------------------------------------------------------------------


def run_metric(entry: Expect, run: RunRecord) -> MetricValue:
    """The claim's metric for one run: bnexp.metrics' value with the claim's `last`,
    threshold and row (layer, unit, variable).

    A diverged run has no final value of a continuous or time-to-event metric: it is not
    counted, and `judge_entries` says how many diverged. A value that is missing or not finite
    leaves the run out, with the reason.
    """
    ref = metric_ref(entry)
    v = metric_defs.value(ref, run.data(), last=entry.last if ref.metric.uses_last else 1,
                          threshold=entry.threshold or 0.97)
    if v.value is None and v.note and v.note.startswith("its "):
        return MetricValue(None, v.note.replace(ref.metric.name, entry.metric, 1))
    return MetricValue(v.value, v.note, censored=v.censored)


def metric_ref(entry: Expect) -> metric_defs.Ref:
    """The bnexp.metrics metric an entry names, with its row."""
    metric = metric_defs.get(entry.metric)
    return metric_defs.ref(metric, {k: getattr(entry, k) for k in ROW_KEYS if getattr(entry, k) is not None},
                           option=f"metric {entry.metric}")


def _mean(values) -> float:
    values = list(values)
    return math.fsum(values) / len(values)


# --- verdicts --------------------------------------------------------------------------


@dataclass
class _Side:
    """One side of a claim: each seed's value, what is notable, and whether every run is in."""

    values: dict[int, float]
    notes: list[str]
    complete: bool
    hardware: set = field(default_factory=set)  # the recorded hardware of the runs with a value
    never: set = field(default_factory=set)  # seeds censored: they never reached the threshold
    test_sets: set = field(default_factory=set)  # the test sets of the runs with a value
    failed: set = field(default_factory=set)  # seeds that diverged or failed to learn: the worst outcome


def judge_entries(entries: Sequence[Expect], runs_for: Callable[[dict[str, Any]], Mapping[int, RunRecord]],
          seeds: Sequence[int], where: str) -> list[dict]:
    """Each claim's verdict over `seeds`; the claims of one file are one Holm family.

    `runs_for(point)` gives the runs of one grid point (an entry's `better` or `than`,
    every grid key with its grid value) by seed; runs of other seeds are ignored. A
    claim one of whose runs has no result yet (missing, running, interrupted, failed)
    stays `inconclusive`, with a note: a verdict must not pass `--check` on part of
    its seeds. Once each side has 3 values it takes its place in the Holm family all
    the same, so a claim waiting for its last runs still counts against the others.
    """
    from bnexp import stats  # SciPy: only once claims are judged

    family = f"claims in {where}"
    sides = [(_side(e, e.better, "better", runs_for, seeds), _side(e, e.than, "than", runs_for, seeds))
             for e in entries]
    testable = [i for i, (b, t) in enumerate(sides) if min(len(b.values), len(t.values)) >= MIN_SEEDS
                and len(b.test_sets | t.test_sets) < 2]
    tested = dict(zip(testable, stats.judge_claim_family(
        [claim_of(entries[i], *sides[i]) for i in testable])))
    return [_result(e, b, t, tested.get(i), family) for i, (e, (b, t)) in enumerate(zip(entries, sides))]


def _side(entry: Expect, point: dict[str, Any], label: str,
          runs_for: Callable[[dict[str, Any]], Mapping[int, RunRecord]], seeds: Sequence[int]) -> _Side:
    runs = runs_for(point)
    values: dict[int, float] = {}
    by_note: dict[str, list[int]] = {}
    hardware: set = set()
    never: set = set()
    failed: set = set()
    test_sets: set = set()
    complete = True
    for seed in seeds:
        run = runs.get(seed)
        if run is None or run.status not in RESULTS:
            complete = False
            by_note.setdefault(f"no result yet ({run.status if run else 'not run'})", []).append(seed)
            continue
        failure = str(Status.DIVERGED) if run.status == Status.DIVERGED else (
            "failed to learn" if metric_defs.outcome(run.data()) == metric_defs.FAILED_TO_LEARN else None)
        if failure:
            by_note.setdefault(failure, []).append(seed)
        measured = run_metric(entry, run)
        if failure and metric_defs.get(entry.metric).kind != "binary":
            # A failure is an outcome, the worst one, not missing data: the rank test ranks it last.
            values[seed] = measured.value if measured.value is not None else math.nan
            failed.add(seed)
            by_note.setdefault("counted as the worst outcome", []).append(seed)
        elif measured.value is None:
            by_note.setdefault(f"left out: {measured.note}", []).append(seed)
        else:
            values[seed] = measured.value
            if measured.censored:
                never.add(seed)
            if run.test_set is not None:
                test_sets.add(run.test_set)
            if run.hardware is not None:
                hardware.add(run.hardware)
            if measured.note:
                by_note.setdefault(measured.note, []).append(seed)
    notes = [f"{label} {_seed_list(s, len(seeds))}: {note}" for note, s in by_note.items()]
    return _Side(values, notes, complete, hardware, never, test_sets, failed)


def claim_of(entry: Expect, better: _Side, than: _Side):
    """The claim as bnexp.stats tests it: its metric's kind picks the test (Fisher for binary,
    rank tests for time to event and for sides holding failed runs)."""
    from bnexp import stats

    metric = metric_defs.get(entry.metric)
    return stats.Claim(better.values, than.values, entry.direction, entry.margin,
                       binary=metric.kind == "binary", time_to_event=metric.kind == "time_to_event",
                       never_better=frozenset(better.never), never_than=frozenset(than.never),
                       failed_better=frozenset(better.failed), failed_than=frozenset(than.failed),
                       higher_is_better=metric.better >= 0)


def _result(entry: Expect, better: _Side, than: _Side, tested, family: str) -> dict:
    """The claim's output entry; `tested` is its bnexp.stats.ClaimResult, or None (too few values)."""
    notes = better.notes + than.notes + hardware_notes(better.hardware | than.hardware)
    numbers = dict.fromkeys(("difference", "ci_low", "ci_high", "ci_level", "p", "p_adjusted", "seeds_needed",
                             "test", "advice_reason", "ci_of"))
    verdict = "inconclusive"
    mixed = better.test_sets | than.test_sets
    if len(mixed) > 1:
        verdict = "untestable"
        notes.append(f"not judged: its runs were tested on different test sets ({'; '.join(sorted(mixed))});"
                     " no test across test sets, as in compare")
    elif tested is None:
        n = min(len(better.values), len(than.values))
        notes.append(f"too few values (n = {n}) for a test: at least {MIN_SEEDS} per side")
        if better.values and than.values:
            numbers["difference"] = _mean(better.values.values()) - _mean(than.values.values())
    else:
        verdict = tested.verdict
        numbers = {k: getattr(tested, k) for k in numbers}
        if tested.notes:
            from bnexp.wording import note_text  # a ClaimResult's notes are enums: the words are wording's

            notes.append(note_text(tested.notes))
        if verdict == "inconclusive" and tested.advice_reason == "not_planned":
            notes.append(f"no seed estimate: the seed advisor plans t-tests, not the {tested.test} test")
        if tested.against_claim and verdict == "inconclusive":
            notes.append("the observed difference goes against the claim")
        if entry.direction == "equivalent" and tested.ci_low is not None:
            notes.append(f"the CI is {100 * tested.ci_level:.3g}%: the interval a 5% TOST"
                         f" with margin {entry.margin:g} corresponds to")
    if not (better.complete and than.complete):
        notes.append(f"inconclusive until every run has a result (the data so far say {verdict})")
        verdict = "inconclusive"
    return dict(name=entry.name, claim=entry.claim, source=entry.source, metric=entry.metric,
                direction=entry.direction, verdict=verdict, difference=numbers["difference"],
                ci_low=numbers["ci_low"], ci_high=numbers["ci_high"], ci_level=numbers["ci_level"],
                ci_of=numbers["ci_of"], test=numbers["test"], advice_reason=numbers["advice_reason"], p=numbers["p"],
                p_adjusted=numbers["p_adjusted"], n_better=len(better.values), n_than=len(than.values),
                seeds_needed=numbers["seeds_needed"], family=family, notes=notes)


def metric_kind(metric: str) -> str:
    """The kind of a claim's metric, which picks its test (bnexp.stats.Kind's values)."""
    return {"diverged": "binary", "steps_to_threshold": "time_to_event"}.get(metric, "continuous")


TEST_NAMES = {"fisher": "Fisher's exact test", "mann_whitney": "the exact rank test (Mann–Whitney)",
              "wilcoxon": "the exact signed-rank test"}


def design_warnings(entries: Sequence[Expect], seeds: Sequence[int]) -> list[str]:
    """Before anything trains: one line per claim whose test cannot reach p < 0.05 with
    these seeds, however the runs turn out (bnexp.stats.can_decide: Fisher with 3 per
    side bottoms out at p = 0.1), with the number of seeds per side that could; and one per
    continuous claim that could not reach it should a run diverge or fail to learn (the
    exact signed-rank test over 5 pairs bottoms out at p = 0.0625)."""
    from bnexp import stats  # SciPy (a rank test's floor): only for a sweep with claims

    lines = []
    n = len(seeds)
    for entry in entries:
        kind = metric_kind(entry.metric)
        reachable, floor = stats.can_decide(kind, n, n, paired=True)
        if not reachable:
            test = TEST_NAMES[stats.design_test(kind, paired=True)]
            lines.append(f"claim '{entry.name}': with {n} seeds per side the smallest p {test} can give is"
                         f" {floor:.2g}: this claim cannot hold" + _enough(n, lambda m: stats.can_decide(kind, m, m, True)[0]))
        elif kind == "continuous" and (floor := stats.smallest_p("wilcoxon", n, n)) >= stats.ALPHA:
            # A diverged or failed-to-learn run ranks worst: the claim's test becomes the exact signed-rank test.
            lines.append(f"claim '{entry.name}': should any run diverge or fail to learn, the claim is judged by"
                         f" {TEST_NAMES['wilcoxon']}, whose smallest p with {n} seeds per side is {floor:.2g}:"
                         " it could then not hold" + _enough(n, lambda m: stats.smallest_p("wilcoxon", m, m) < stats.ALPHA))
    return lines


def _enough(n: int, decides) -> str:
    """` (at least m seeds per side can)` for the smallest m > n up to 30 that `decides`, else nothing."""
    enough = next((m for m in range(n + 1, 31) if decides(m)), None)
    return f" (at least {enough} seeds per side can)" if enough else ""


def hardware_notes(keys: set) -> list[str]:
    """One note when the runs being compared were made on different CPUs, else none."""
    if len(keys) < 2:
        return []
    return [different_hardware_line(sorted(keys))]


def _seed_list(chosen: list[int], total: int) -> str:
    """`seed 3`, or `seeds 1, 2 (2 of 5)`."""
    if len(chosen) == 1:
        return f"seed {chosen[0]}"
    return f"seeds {', '.join(map(str, chosen))} ({len(chosen)} of {total})"


def check_exit_code(results: Sequence[Mapping[str, Any]]) -> int:
    """`bnexp sweep --check`: 1 when a claim does not pass, else 0 (also with no claims).

    An active claim passes when it holds; a post-hoc one (bnexp.claims.register) only when it
    holds on fresh seeds too; a withdrawn one unless it is, or was when withdrawn,
    contradicted.
    """
    def passes(r: Mapping[str, Any]) -> bool:
        if r.get("status") == "withdrawn":
            return "contradicted" not in (r["verdict"], r.get("withdrawn_verdict"))
        if r.get("post_hoc"):
            return r["verdict"] == "holds" and r.get("fresh_verdict") == "holds"
        return r["verdict"] == "holds"

    return 0 if all(passes(r) for r in results) else 1
