"""Finding and loading the runs to compare; a run that cannot be read is listed as not counted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bnexp import metrics, rundir
from bnexp.config import flatten, yaml_flow
from bnexp.errors import RunDirError, RunFileError
from bnexp.formats import MISSING  # also a config key one run's version of bnexp did not have
from bnexp.rundir import Summary, provenance


@dataclass
class Run:
    """One run directory as read from disk; `config` is flattened to dotted keys with flow-style values.

    `diagnostics` holds the tables read so far (compare reads those its metrics need).
    """

    path: Path
    config: dict[str, str]
    summary: Summary
    metrics: list[dict]
    evals: dict = field(default_factory=dict)
    diagnostics: dict[str, list[dict]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.summary.status or "unknown"

    @property
    def test_set(self) -> str:
        """The data a run's test accuracy is measured on: dataset and number of test examples."""
        data = self.summary.data or {}
        dataset = data.get("dataset") or self.config.get("data.dataset", MISSING)
        n = data.get("test_examples")
        return f"{dataset} ({'?' if n is None else f'{n:,}'} test examples)"

    @property
    def seed(self) -> str:
        return self.config.get("seed", MISSING)

    def data(self) -> metrics.RunData:
        """What bnexp.metrics reads of this run."""
        return metrics.RunData(self.status, self.summary.to_json(), self.metrics, self.diagnostics, self.evals)

    @property
    def outcome(self) -> str:
        """completed, failed (to learn), diverged, or the status of a run without a result."""
        return metrics.outcome(self.data())


def load_run(path: Path) -> Run:
    """Read one run directory; a corrupt file raises RunFileError naming it."""
    run = rundir.RunDir(path)
    config = {key: yaml_flow(value) for key, value in flatten(run.read_config().model_dump(mode="json")).items()}
    return Run(Path(path), config, run.read_summary(), run.read_metrics(), run.read_evals())


def load_runs(paths: list[str], unreadable: list[tuple[str, str]] | None = None) -> list[Run]:
    """The runs under `paths` (runs, or directories holding runs at any depth), in the
    order named (a sweep's in grid order): at least two.

    With `unreadable`, a run whose files cannot be read (a missing summary, an empty
    cell, a corrupt file) is appended to it as (path, why) instead of stopping the
    comparison: it is listed as not counted, and the other runs are compared."""
    found = rundir.find_runs(paths)
    if len(found) < 2:
        raise RunDirError(f"compare needs at least two runs, found one: {found[0]}")
    runs, errors = [], []
    for path in found:
        try:
            runs.append(load_run(path))
        except RunFileError as e:
            if unreadable is None:
                raise
            unreadable.append((str(path), str(e)))
            errors.append(e)
    if len(runs) < 2 and errors:  # nothing left to compare: the first unreadable file is the error
        raise errors[0]
    return runs


def read_diagnostics(runs: list[Run], refs: list[metrics.Ref]) -> None:
    """Read the diagnostics tables `refs` need into each run (once)."""
    tables = {r.metric.name.partition(".")[0] for r in refs if r.metric.name in metrics.DIAGNOSTICS_NAMES}
    for run in runs:
        holder = rundir.RunDir(run.path)
        for table in tables - run.diagnostics.keys():
            run.diagnostics[table] = holder.read_diagnostics(table)


def hardware_note(runs: list[Run]) -> str | None:
    """One line when the runs were made on more than one CPU, as their summaries record;
    runs of a bnexp that did not record it are left out of the question."""
    keys = {provenance.same_hardware_key(r.summary.hardware) for r in runs} - {None}
    return provenance.different_hardware_line(sorted(keys)) if len(keys) > 1 else None
