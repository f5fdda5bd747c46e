"""Claims: a published result written next to its experiment, judged over seeds.

A sweep file's `expect:` list holds claims such as "BN reaches 95% test accuracy in
fewer steps" (Ioffe & Szegedy 2015, Figure 1). Each names a metric, the grid point of
each side (`better`, `than`) and a direction; its verdict is `holds`, `contradicted` or
`inconclusive`, from bnexp.stats' tests over the seeds (t-tests; Fisher's exact test for
the 0/1 metrics `diverged` and `failed`), with the claims of one file as one Holm family.
What a metric is, and how `last` aggregates it, is bnexp.metrics' alone.

This module is the core only: the schema and its checks (`validate_claims`, run before
anything trains), the per-run metric (`run_metric`), the verdicts (`judge`), the exit
code of `bnexp sweep --check` and the `--seeds` syntax. It reads no files: the caller
turns each run directory into a `RunRecord` and says which runs belong to a grid point.
No TensorFlow here, and SciPy only once claims are judged.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from bnexp import config as config_module
from bnexp import metrics as metric_defs
from bnexp.config import Schema
from bnexp.errors import ConfigError, UsageError
from bnexp.rundir import table_file
from bnexp.rundir.provenance import different_hardware_line
from bnexp.status import RESULTS, Status

# The diagnostics tables a claim can read (name → columns): bnexp.metrics' (a test checks
# them against bnexp.rundir.tables).
DIAGNOSTICS: dict[str, tuple[str, ...]] = metric_defs.DIAGNOSTICS
# The config switch that makes a run record each table: the one place that says so.
RECORDED_BY = {"activations": "diagnostics.enabled", "bn": "diagnostics.enabled",
               "gradients": "diagnostics.enabled", "ics": "diagnostics.ics",
               "landscape": "diagnostics.landscape"}
# Diagnostics columns that pick rows rather than hold values: an entry names the one its file has.
ROW_KEYS = metric_defs.ROW_KEYS
# Every metric is bnexp.metrics'; a claim may name it or an older alias (final_accuracy, ...).
DIAGNOSTIC_METRICS = tuple(sorted(metric_defs.DIAGNOSTICS_NAMES, key=list(metric_defs.METRICS).index))
RUN_METRICS = ("final_accuracy", "best_accuracy", "final_loss", "steps_to_threshold", "generalization_gap",
               "diverged", "failed") + tuple(n for n in metric_defs.METRICS
                                             if n not in DIAGNOSTIC_METRICS and n not in metric_defs.ALIASES.values()
                                             and n not in ("steps_to_threshold", "generalization_gap", "diverged",
                                                           "failed"))
METRICS = RUN_METRICS + DIAGNOSTIC_METRICS
AVERAGED = tuple(n for n in METRICS if metric_defs.get(n).uses_last)  # the metrics `last` applies to
BINARY = tuple(n for n in METRICS if metric_defs.get(n).kind == "binary")  # judged by Fisher's exact test
MIN_SEEDS = 3  # as bnexp.stats.MIN_SEEDS, which is not imported here so validation needs no SciPy
MAX_SEEDS = 1000  # for --seeds: as many as the seed advisor ever asks for
MAX_SEED = 2**31 - 1  # as Config.seed
NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class Expect(Schema):
    """One `expect:` entry: `better` is `direction` than `than` on `metric`, over the seeds.

    After `validate_claims`, `better` and `than` are whole grid points (every grid key
    with the grid's own value), whatever subset of keys the file named.
    """

    name: Annotated[str, Field(pattern=NAME)]
    claim: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(min_length=1)]
    metric: str
    better: dict[str, Any]
    than: dict[str, Any]
    direction: Literal["higher", "lower", "equivalent"]
    threshold: Annotated[float, Field(gt=0, le=1)] | None = None
    margin: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    last: Annotated[int, Field(ge=1, le=1_000_000)] = 5
    layer: int | str | None = None
    unit: Annotated[int, Field(ge=0)] | None = None
    variable: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _settings_fit_the_metric(self) -> "Expect":
        if self.metric not in METRICS:
            raise ValueError(f"metric '{self.metric}' is not known{_did_you_mean(self.metric, METRICS)}"
                             f" (allowed: {', '.join(RUN_METRICS)}, or a diagnostics column:"
                             f" {', '.join(DIAGNOSTIC_METRICS)})")
        thresholded = self.metric == "steps_to_threshold"
        if thresholded and self.threshold is None:
            raise ValueError("threshold is required for metric steps_to_threshold: the test accuracy"
                             " to reach, a fraction in (0, 1] such as 0.95")
        if not thresholded and self.threshold is not None:
            raise ValueError(f"threshold is only for metric steps_to_threshold, not {self.metric}")
        if self.direction == "equivalent" and self.margin is None:
            raise ValueError("margin is required for direction equivalent: the largest difference"
                             " that still counts as equal, > 0, in the metric's units")
        if self.metric in BINARY and self.direction == "equivalent":
            raise ValueError(f"direction equivalent is not available for metric {self.metric}, which is"
                             " judged by Fisher's exact test: use higher or lower")
        if self.direction != "equivalent" and self.margin is not None:
            raise ValueError(f"margin is only for direction equivalent, not {self.direction}")
        if "last" in self.model_fields_set and self.metric not in AVERAGED:
            raise ValueError(f"last is not used by metric {self.metric}"
                             f" (only by the metrics read from evaluations: {', '.join(AVERAGED[:6])},"
                             f" and diagnostics columns)")
        wanted = set(_row_keys(self.metric))
        for key in ROW_KEYS:
            given = getattr(self, key) is not None
            if key in wanted and not given:
                raise ValueError(f"{key} is required for metric {self.metric}:"
                                 f" {diagnostics_file(self.metric)} has one row per {key}")
            if given and key not in wanted:
                raise ValueError(f"{key} is not used by metric {self.metric}"
                                 f" (allowed for {diagnostics_file(self.metric) or 'run metrics'}:"
                                 f" {', '.join(wanted) or 'none'})")
        return self


@dataclass(frozen=True)
class RunRecord:
    """What a claim reads of one run; the caller builds it from the run directory."""

    status: str  # the run summary's: completed, diverged, running, interrupted, failed
    total_steps: int
    metrics: list[dict]  # the run's metrics rows in step order: step, test_accuracy, test_loss, ...
    generalization_gap: float | None = None  # the run summary's, when the run recorded one
    diagnostics: dict[str, list[dict]] = field(default_factory=dict)  # DIAGNOSTICS name → rows
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


# --- checking the file before anything trains ------------------------------------------


def validate_claims(raw_entries: Any, grid: Mapping[str, Sequence[Any]], seeds: Sequence[int],
                    where: str, *, canonical: Callable[[Any], str]) -> list[Expect]:
    """Every `expect` entry checked, and its sides resolved to whole grid points.

    `grid` and `seeds` are the sweep's (after --seeds); `canonical` spells a value as the
    grid compares values (pass bnexp.sweep.flow), so `1` and `1.0` differ here exactly
    when they are two grid values there. Raises ConfigError, one line naming `where`,
    the entry and its key.
    """
    if not isinstance(raw_entries, list):
        raise ConfigError(f"{where}: expect must be a list of claims, one mapping each,"
                          f" not {type(raw_entries).__name__}")
    if raw_entries and len(seeds) < MIN_SEEDS:
        raise ConfigError(f"{where}: seeds: claims need at least {MIN_SEEDS} seeds per side,"
                          f" the sweep has {len(seeds)} ({', '.join(map(str, seeds))}):"
                          f" list at least {MIN_SEEDS} under seeds, or pass --seeds")
    entries, first = [], {}
    for index, raw in enumerate(raw_entries):
        entry = _validate_entry(raw, index, where)
        label = _label(index, entry.name)
        if entry.name in first:
            raise ConfigError(f"{where}: {label}: name '{entry.name}' is already used by"
                              f" {_label(first[entry.name], entry.name)}; names are unique in a file")
        first[entry.name] = index
        better = _grid_point(entry.better, "better", grid, canonical, f"{where}: {label}")
        than = _grid_point(entry.than, "than", grid, canonical, f"{where}: {label}")
        if better == than:
            raise ConfigError(f"{where}: {label}: better and than select the same grid point"
                              f" ({_spell(better, canonical)}): a claim compares two")
        entries.append(entry.model_copy(update={"better": better, "than": than}))
    return entries


def check_recorded(entries: Sequence[Expect], configs_at: Callable[[dict[str, Any]], Sequence[Any]],
                   where: str) -> None:
    """Refuse, before anything trains, a claim on a diagnostics column that the runs of one
    of its sides will not record. `configs_at(point)` gives the grid point's configs (one
    per seed); the switch each table needs is RECORDED_BY's. A switch the config schema
    does not know (yet) counts as off.
    """
    for index, entry in enumerate(entries):
        kind = diagnostics_kind(entry.metric)
        if kind is None:
            continue
        switch = RECORDED_BY[kind]
        for side in ("better", "than"):
            point = getattr(entry, side)
            if not all(config_module.flatten(c.model_dump(mode="json")).get(switch) is True for c in configs_at(point)):
                raise ConfigError(f"{where}: {_label(index, entry.name)}: metric {entry.metric} reads"
                                  f" {table_file(kind)}, which the runs of {side} do not record:"
                                  f" set {switch}: true (in the base config, set or grid)")


def _validate_entry(raw: Any, index: int, where: str) -> Expect:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {_label(index, None)}: a claim is a mapping with keys"
                          f" {', '.join(Expect.model_fields)}, not {type(raw).__name__}")
    name = raw.get("name") if isinstance(raw.get("name"), str) else None
    try:
        return Expect.model_validate(raw)
    except ValidationError as e:
        error = e.errors()[0]
        if error["type"] == "extra_forbidden":
            key = str(error["loc"][0])
            message = (f"unknown key '{key}'{_did_you_mean(key, list(Expect.model_fields))}"
                       f" (allowed: {', '.join(Expect.model_fields)})")
        else:
            message = config_module.describe(error, raw)
        raise ConfigError(f"{where}: {_label(index, name)}: {message}" + config_module.more_errors(e)) from None


def _grid_point(selector: dict[str, Any], side: str, grid: Mapping[str, Sequence[Any]],
                canonical: Callable[[Any], str], where: str) -> dict[str, Any]:
    """The one grid point `selector` names: every grid key with the grid's value."""
    for key in selector:
        if key not in grid:
            raise ConfigError(f"{where}: {side}: '{key}' is not a grid key{_did_you_mean(key, list(grid))}"
                              f" (grid keys: {', '.join(grid) or 'none: the sweep has no grid'})")
    point, open_keys = {}, []
    for key, values in grid.items():
        if key in selector:
            wanted = canonical(selector[key])
            matches = [v for v in values if canonical(v) == wanted]
            if not matches:
                raise ConfigError(f"{where}: {side}: {key}={wanted} matches no grid point"
                                  f" (grid.{key} has {', '.join(canonical(v) for v in values)})")
            point[key] = matches[0]
        elif len(values) == 1:
            point[key] = values[0]
        else:
            open_keys.append(key)
    if open_keys:
        count = math.prod(len(grid[k]) for k in open_keys)
        choices = "; ".join(f"{k} (one of {', '.join(canonical(v) for v in grid[k])})" for k in open_keys)
        raise ConfigError(f"{where}: {side} matches {count} grid points, not one: also name {choices}")
    return point


def _label(index: int, name: str | None) -> str:
    return f"expect[{index}]" + (f" '{name}'" if name else "")


def _spell(point: dict[str, Any], canonical: Callable[[Any], str]) -> str:
    return ", ".join(f"{k}={canonical(v)}" for k, v in point.items()) or "the only point"


def _did_you_mean(word: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, allowed, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def diagnostics_kind(metric: str) -> str | None:
    """The diagnostics table a metric reads (a DIAGNOSTICS name), or None for a run metric."""
    return metric.partition(".")[0] if metric in DIAGNOSTIC_METRICS else None


def diagnostics_file(metric: str) -> str | None:
    """The run file a metric reads, or None for a run metric."""
    kind = diagnostics_kind(metric)
    return table_file(kind) if kind else None


def _row_keys(metric: str) -> list[str]:
    """The row-picking columns (layer, unit, variable) of a metric's diagnostics file."""
    if metric not in DIAGNOSTIC_METRICS:
        return []
    columns = DIAGNOSTICS[metric.partition(".")[0]]
    return [k for k in ROW_KEYS if k in columns]


# --- one run's value -------------------------------------------------------------------


def run_metric(entry: Expect, run: RunRecord) -> MetricValue:
    """The claim's metric for one run: bnexp.metrics' value with the claim's `last`,
    threshold and row (layer, unit, variable).

    A diverged run has no final value of a continuous or time-to-event metric: it is not
    counted, and `judge` says how many diverged. A value that is missing or not finite
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


def judge(entries: Sequence[Expect], runs_for: Callable[[dict[str, Any]], Mapping[int, RunRecord]],
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
    tested = dict(zip(testable, stats.judge_claims(
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
        if tested.note:
            notes.append(tested.note)
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
    side bottoms out at p = 0.1), with the number of seeds per side that could."""
    from bnexp import stats  # SciPy: only for a sweep with such claims

    lines = []
    n = len(seeds)
    for entry in entries:
        kind = metric_kind(entry.metric)
        reachable, floor = stats.can_decide(kind, n, n, paired=True)
        if reachable:
            continue
        enough = next((m for m in range(n + 1, 31) if stats.can_decide(kind, m, m, paired=True)[0]), None)
        test = TEST_NAMES[stats.design_test(kind, paired=True)]
        lines.append(f"claim '{entry.name}': with {n} seeds per side the smallest p {test} can give is"
                     f" {floor:.2g}: this claim cannot hold" + (f" (at least {enough} seeds per side can)" if enough else ""))
    return lines


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

    An active claim passes when it holds; a post-hoc one (bnexp.registry) only when it
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


# --- --seeds ---------------------------------------------------------------------------


SEED_ITEM = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_seeds(text: str) -> list[int]:
    """`--seeds 100-104`, `1,5,9` or `1,3-5` → the seeds in the order given; UsageError if bad."""
    seeds: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        match = SEED_ITEM.match(item)
        if not match:
            raise UsageError(f"--seeds {text!r}: {_bad_item(item)}")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high > MAX_SEED:
            raise UsageError(f"--seeds {text!r}: seed {high} is above {MAX_SEED}, the largest seed allowed")
        if high < low:
            raise UsageError(f"--seeds {text!r}: range {item} runs backwards; write {high}-{low}")
        if len(seeds) + high - low + 1 > MAX_SEEDS:
            raise UsageError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds")
        seeds.extend(range(low, high + 1))
    repeated = [s for s, n in Counter(seeds).items() if n > 1]
    if repeated:
        raise UsageError(f"--seeds {text!r}: seed {repeated[0]} is listed twice; list each seed once")
    return seeds


def _bad_item(item: str) -> str:
    if not item:
        return "an empty item; write seeds as 100-104, 1,5,9 or 1,3-5"
    if re.match(r"^-\d+$", item):
        return f"seed {item} is negative; seeds are 0 to {MAX_SEED}"
    return f"'{item}' is not a seed or a range; write seeds as 100-104, 1,5,9 or 1,3-5"
