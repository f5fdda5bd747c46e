"""What a claim may say: the `expect:` entry's schema (`Expect`) and its checks against
the sweep's grid and seeds (`validate_claims`, `check_recorded`), run before anything
trains; and the `--seeds` syntax (`parse_seeds`), whose seeds the claims are judged over.

What a metric is stays bnexp.metrics' alone: the names a claim may use come from there.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from bnexp import config as config_module
from bnexp import metrics as metric_defs
from bnexp.config import Schema
from bnexp.errors import ConfigError, UsageError
from bnexp.rundir import table_file

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
    """The diagnostics table a metric reads (a bnexp.metrics.DIAGNOSTICS_COLUMNS name), or None for a run metric."""
    return metric.partition(".")[0] if metric in DIAGNOSTIC_METRICS else None


def diagnostics_file(metric: str) -> str | None:
    """The run file a metric reads, or None for a run metric."""
    kind = diagnostics_kind(metric)
    return table_file(kind) if kind else None


def _row_keys(metric: str) -> list[str]:
    """The row-picking columns (layer, unit, variable) of a metric's diagnostics file."""
    if metric not in DIAGNOSTIC_METRICS:
        return []
    columns = metric_defs.DIAGNOSTICS_COLUMNS[metric.partition(".")[0]]
    return [k for k in ROW_KEYS if k in columns]


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
