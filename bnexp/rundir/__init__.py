"""The run directory, and the only code that names, writes or parses a run's files.

Plain files any tool can read (docs/reference.md describes each): config.yaml (the resolved
config), metrics.csv (one row per evaluation), summary.json (status and results),
log.txt, checkpoint.npz (weights and loop state), eval.json (`bnexp eval` results),
diag_<kind>.csv (opt-in diagnostics) and tb/ (TensorBoard events). train writes them
through a RunDir; eval, compare, sweep and plots read them through one. Whole files are
replaced atomically; metrics and diagnostics rows are appended a whole line at a time.
A lock file stops two processes writing one run. No TensorFlow here.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from datetime import datetime
from pathlib import Path

from bnexp import config as config_module
from bnexp.errors import ConfigError, RunDirError, RunFileError
from bnexp.rundir import checkpoint, guard, metrics, tables
from bnexp.rundir.checkpoint import Checkpoint, model_variables, state_problem as checkpoint_state_problem
from bnexp.rundir.files import (
    CHECKPOINT, CONFIG, EVAL, LOCK, LOG, METRICS, SUMMARY, SWEEP_MANIFEST, TAIL_CHECKPOINT, TENSORBOARD, diag_file,
    read_json,
    write_atomic, write_json,
)
from bnexp.rundir.guard import check_relative, check_removable, inside, remove_run
from bnexp.rundir.summary import Summary
from bnexp.rundir.tensorboard import Scalars

METRICS_COLUMNS = metrics.NAMES
DIAGNOSTICS_TABLES = tuple(tables.TABLES)  # the kinds of diagnostics table a run may hold

__all__ = [
    "CHECKPOINT", "CONFIG", "DIAGNOSTICS_TABLES", "EVAL", "LOG", "METRICS", "METRICS_COLUMNS", "SUMMARY", "SWEEP_MANIFEST",
    "TAIL_CHECKPOINT", "TENSORBOARD",
    "Checkpoint", "RunDir", "Scalars", "Summary", "check_relative", "check_removable", "checkpoint_state_problem",
    "create", "find_runs", "inside", "model_variables", "open_run", "read_json", "remove_run",
    "runs_root", "table_file", "write_atomic",
]


class RunDir:
    """A run directory; `lock` it before writing, so no other bnexp process writes it too."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = None

    def _file(self, name: str) -> Path:
        return self.path / name

    # --- the lock ---

    def lock(self) -> None:
        """Take the run's lock, or fail at once if another bnexp process holds it."""
        handle = guard.open_append(self._file(LOCK))
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise RunDirError(f"{self.path} is in use by another bnexp process") from None
        self._lock = handle

    def unlock(self) -> None:
        if self._lock:
            self._lock.close()
            self._lock = None

    # --- what it holds ---

    def has_config(self) -> bool:
        return os.path.lexists(self._file(CONFIG))

    def has_summary(self) -> bool:
        return os.path.lexists(self._file(SUMMARY))

    def has_checkpoint(self) -> bool:
        return os.path.lexists(self._file(CHECKPOINT))

    def has_diagnostics(self, kind: str) -> bool:
        return os.path.lexists(self._file(diag_file(kind)))

    # --- config.yaml ---

    def write_config(self, config: config_module.Config) -> None:
        write_atomic(self._file(CONFIG), config_module.to_yaml(config))

    def read_config(self) -> config_module.Config:
        """The run's validated config: RunFileError if the file is unreadable, ConfigError if it breaks the schema.

        A key the file lacks because an older bnexp wrote it means the behaviour that
        version had, not today's default (config.as_recorded).
        """
        path = self._file(CONFIG)
        try:
            raw = config_module.yaml_mapping(guard.read_text(path), path)
        except ConfigError as e:
            raise RunFileError(str(e)) from None
        return config_module.validate(config_module.as_recorded(raw), str(path))

    # --- summary.json ---

    def write_summary(self, summary: Summary) -> None:
        write_json(self._file(SUMMARY), summary.to_json())

    def read_summary(self) -> Summary:
        path = self._file(SUMMARY)
        return Summary.from_json(read_json(path), path)

    # --- metrics.csv ---

    def start_metrics(self) -> None:
        write_atomic(self._file(METRICS), metrics.header())

    def append_metrics(self, row: dict) -> None:
        # One write call per line: a kill can cut the file only between whole lines or
        # inside the last one, which readers then skip.
        with guard.open_append(self._file(METRICS)) as f:
            f.write(metrics.format_row(row))

    def read_metrics(self) -> list[dict]:
        """The complete rows (a torn last line from a kill is skipped); none if there is no file yet.

        A file of an older format reads as None in the columns it lacks.
        """
        path = self._file(METRICS)
        if not os.path.lexists(path):
            return []
        return metrics.parse(guard.read_text(path), path)

    def rewrite_metrics(self, rows: list[dict]) -> None:
        """Replace the file with `rows`, in the current format."""
        write_atomic(self._file(METRICS), metrics.header() + "".join(metrics.format_row(r) for r in rows))

    # --- checkpoint.npz ---

    def save_checkpoint(self, variables: dict, state: dict, *, tail: bool = False) -> None:
        """The checkpoint; with `tail`, the one at the start of an off-grid last call instead."""
        write_atomic(self._file(TAIL_CHECKPOINT if tail else CHECKPOINT), checkpoint.to_bytes(variables, state))

    def load_checkpoint(self, *, tail: bool = False) -> Checkpoint:
        """The checkpoint (with `tail`, the tail checkpoint), refused unread when it would
        inflate past what this run's model can hold (so the run's config must be readable first)."""
        limit = checkpoint.max_bytes(self.read_config().model.hidden)
        return checkpoint.load(self._file(TAIL_CHECKPOINT if tail else CHECKPOINT), limit)

    def has_tail_checkpoint(self) -> bool:
        return os.path.lexists(self._file(TAIL_CHECKPOINT))

    def resume_from_tail_checkpoint(self) -> None:
        """Make the tail checkpoint the run's checkpoint (one rename): the run now stands
        where its last call began, as if interrupted there, and replays its tail from there."""
        os.replace(self._file(TAIL_CHECKPOINT), self._file(CHECKPOINT))

    # --- diag_<kind>.csv ---

    def start_diagnostics(self, kinds: list[str], resumed_at: int | None) -> None:
        """Fresh tables of `kinds` (of DIAGNOSTICS_TABLES) with headers; a resumed run keeps its rows
        up to the step `resumed_at` (it redoes the later ones)."""
        for kind in kinds:
            path = self._file(diag_file(kind))
            kept = tables.rows_up_to(guard.read_text(path), resumed_at, path) if resumed_at is not None and os.path.lexists(path) else ""
            write_atomic(path, tables.header(kind) + kept)

    def append_diagnostics(self, rows: dict[str, list[dict]]) -> None:
        """Append each table's rows: `rows` maps a kind of DIAGNOSTICS_TABLES to its rows (dicts by column)."""
        for kind, new in rows.items():
            with guard.open_append(self._file(diag_file(kind))) as f:
                f.write(tables.format_rows(kind, new))

    def read_diagnostics(self, kind: str) -> list[dict]:
        path = self._file(diag_file(kind))
        return tables.read(guard.read_text(path), kind, path) if self.has_diagnostics(kind) else []

    # --- tb/, log.txt, eval.json ---

    def scalars(self) -> Scalars:
        return Scalars(self._file(TENSORBOARD))

    def log(self, message: str) -> None:
        with guard.open_append(self._file(LOG)) as f:
            f.write(f"{datetime.now().isoformat(timespec='seconds')} {message}\n")

    def read_evals(self) -> dict:
        """eval.json: `bnexp eval` results keyed "stats/split"; empty when there is none.
        An unreadable file reads as empty too: eval.json only records earlier evals."""
        path = self._file(EVAL)
        try:
            results = read_json(path) if path.exists() else {}
        except RunFileError:
            return {}
        return results if isinstance(results, dict) else {}

    def record_eval(self, record: dict) -> None:
        """Add an eval result to eval.json, keyed by its stats and split; what goes wrong
        becomes a note in `record["notes"]`, since eval.json only records earlier evals."""
        path = self._file(EVAL)
        try:
            results = read_json(path) if path.exists() else {}
        except RunFileError:
            results = {}
            record["notes"].append(f"{path} was unreadable and has been replaced")
        results[f"{record['stats']}/{record['split']}"] = record
        try:
            write_json(path, results)
        except OSError as e:
            record["notes"].append(f"could not record the result in {path}: {e.strerror}")


def table_file(kind: str) -> str:
    """The file name of a diagnostics table (a kind of DIAGNOSTICS_TABLES, or one still to come),
    for code outside this package that must name it, in a message say."""
    return diag_file(kind)


def runs_root() -> Path:
    """Where new runs go: $BNEXP_RUNS_DIR, else ./runs."""
    return Path(os.environ.get("BNEXP_RUNS_DIR", "runs"))


def create(runs_root: Path, name: str, explicit: Path | None = None) -> RunDir:
    """Make and lock a fresh run directory: `explicit`, or runs_root/<name>-<timestamp>[-N].

    An explicit path may exist only as an empty directory, so no run is ever overwritten.
    """
    if explicit is not None:
        return _create_explicit(Path(explicit))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        Path(runs_root).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create {runs_root}: {e.strerror}") from None
    for n in range(1, 1000):
        path = Path(runs_root) / (f"{name}-{stamp}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as e:
            raise RunDirError(f"cannot create run directory {path}: {e.strerror}") from None
        run = RunDir(path)
        run.lock()
        return run
    raise RunDirError(f"too many runs named {name} at {stamp} in {runs_root}")


def _create_explicit(path: Path) -> RunDir:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create run directory {path}: {e.strerror}") from None
    had_lock = (path / LOCK).exists()
    run = RunDir(path)
    run.lock()
    if any(p.name != LOCK for p in path.iterdir()):
        run.unlock()
        if not had_lock:  # leave the user's folder as we found it
            (path / LOCK).unlink(missing_ok=True)
        hint = "; use 'bnexp train --resume' to continue it" if run.has_summary() else ""
        raise RunDirError(f"run directory {path} is not empty{hint}")
    return run


def open_run(path: str | Path) -> RunDir:
    """An existing run directory (config.yaml and summary.json present, no link inside,
    each run file a regular file: guard.check_run_entries), unlocked."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path} does not exist")
    if not path.is_dir():
        raise RunDirError(f"{path} is not a directory")
    missing = [name for name in (CONFIG, SUMMARY) if not os.path.lexists(path / name)]
    if missing:
        raise RunDirError(f"{path} is not a bnexp run directory (no {' or '.join(missing)})")
    guard.check_run_entries(path)
    return RunDir(path)


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Run directories named by `paths`, in the order named; within a directory of runs,
    a sweep's runs in grid order, others in natural order.

    A directory holding summary.json (or config.yaml and metrics.csv: a run whose
    summary was lost, which compare lists as not counted) is a run and is not searched
    further; any other directory is searched at any depth. A run
    named twice counts once. The order matters: compare's baseline is the first run.
    """
    found: dict[Path, Path] = {}  # resolved -> as spelled
    for name in paths:
        path = Path(name)
        if not path.exists():
            raise RunDirError(f"{path}: no such directory")
        if not path.is_dir():
            raise RunDirError(f"{path}: not a directory")
        runs = _runs_under(path)
        if not runs:
            raise RunDirError(f"{path}: not a run directory and holds none (no {SUMMARY} found)")
        for run in runs:
            found.setdefault(run.resolve(), run)
    return list(found.values())


def _natural_key(path: Path) -> list:
    """Sort batch_size=8 before batch_size=60: numbers in names compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", str(path))]


def _runs_under(root: Path) -> list[Path]:
    runs, grid_rank = [], {}
    for dirpath, dirnames, filenames in os.walk(root):
        if SUMMARY in filenames or (CONFIG in filenames and METRICS in filenames):  # a run, its summary lost or not
            runs.append(Path(dirpath))
            dirnames.clear()
        elif SWEEP_MANIFEST in filenames:
            grid_rank.update(_grid_rank(Path(dirpath)))
    return sorted(runs, key=lambda run: grid_rank.get(run) or _natural_key(run))


def _grid_rank(sweep: Path) -> dict[Path, list]:
    """Sort keys that put a sweep's runs in its manifest's point order (the grid's order),
    right where the sweep directory sorts; none when the manifest cannot be read."""
    try:
        points = read_json(sweep / SWEEP_MANIFEST).get("points")
        return {sweep / p["run_dir"]: _natural_key(sweep) + [(-1, i, "")] for i, p in enumerate(points)}
    except (RunFileError, TypeError, KeyError, AttributeError):
        return {}
