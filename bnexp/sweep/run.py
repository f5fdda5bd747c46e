"""The driving loop: run a loaded sweep's points without a result, a few at a time on an
executor (bnexp.sweep.local or bnexp.sweep.raycluster), keeping sweep.json current; then
judge its claims. Signals stop the points cleanly, each with a checkpoint.

Like train, this never prints: it tells a SweepReporter (bnexp.present.sweeping draws one).
"""

from __future__ import annotations

import signal
from collections import deque
from pathlib import Path
from typing import Literal

from bnexp import config as config_module, rundir
from bnexp.errors import BnexpError, UsageError
from bnexp.status import RESULTS, Status
from bnexp.sweep.judging import judge_sweep
from bnexp.sweep.local import LocalExecutor
from bnexp.sweep.manifest import write_manifest
from bnexp.sweep.raycluster import RayExecutor
from bnexp.sweep.spec import Point, Sweep


def prepare(out: Path, run_dir: str) -> bool:
    """Whether the point resumes from its checkpoint; a run with none is cleared to start
    over, if it is one (rundir.remove_run: no link, nothing but a run's files)."""
    run = rundir.inside(out, run_dir)
    holder = rundir.RunDir(run)
    if holder.has_checkpoint():
        return True
    if rundir.check_removable(out, run_dir):  # before the lock: a refused folder is left as it was
        holder.lock()  # refuses a run another process is still writing
        try:
            rundir.remove_run(out, run_dir)
        finally:
            holder.unlock()
    return False


class SweepReporter:
    """What a sweep tells the outside world; bnexp.present.sweeping draws it."""

    def start(self, sweep: Sweep, to_run: int) -> None: ...
    def started(self, point: Point) -> None: ...
    def finished(self, point: Point) -> None: ...
    def stop(self) -> None: ...


def make_executor(kind: Literal["local", "ray"], workers: int, address: str | None, data_dir: str | Path | None):
    """Check the executor options (and that Ray is there) before anything runs."""
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    if kind == "ray":
        return RayExecutor(workers, address, data_dir)
    if address:
        raise UsageError("--address is for --executor ray")
    return LocalExecutor(workers, data_dir)


class Stop:
    """SIGINT and SIGTERM both raise KeyboardInterrupt in the sweep's loop; the first one's name is kept."""

    def __enter__(self) -> "Stop":
        self.signum = None
        self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _handle(self, signum, frame):
        self.signum = self.signum or signum
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)


def run_sweep(sweep: Sweep, executor, reporter: SweepReporter) -> None:
    """Run every point without a result, `executor.slots` at a time, keeping sweep.json
    current; then judge the claims, into `sweep.verdicts` and sweep.json.

    A signal is forwarded to the running points, which checkpoint and end as interrupted;
    `sweep.stopped_by` then names it. A second signal stops them at once, as in bnexp train.
    """
    sweep.out.mkdir(parents=True, exist_ok=True)
    # One thread count for all of a sweep's points, reruns included: the count changes
    # floating-point sums, so a point resumed with another would not end as it began.
    sweep.threads = sweep.threads or executor.threads
    lock = rundir.RunDir(sweep.out)
    lock.lock()  # one sweep process per sweep directory
    todo = deque(p for p in sweep.points if p.status not in RESULTS)
    try:
        write_manifest(sweep)
        reporter.start(sweep, len(todo))
        with Stop() as stop:
            try:
                executor.open(sweep.threads)  # after Stop: Ray's workers then inherit the default SIGINT, not an ignored one
                while todo or executor.running:
                    while todo and len(executor.running) < executor.slots:
                        start_point(sweep, executor.take(todo), executor, reporter)
                    collect(sweep, executor, reporter)
            except KeyboardInterrupt:
                sweep.stopped_by = signal.Signals(stop.signum or signal.SIGINT).name
                executor.interrupt(stop.signum or signal.SIGINT)
                while executor.running:
                    try:
                        collect(sweep, executor, reporter)
                    except KeyboardInterrupt:
                        executor.interrupt(signal.SIGINT)
        sweep.verdicts = judge_sweep(sweep)
        write_manifest(sweep)
    finally:
        executor.close()
        reporter.stop()
        lock.unlock()


def start_point(sweep: Sweep, point: Point, executor, reporter: SweepReporter) -> None:
    run = sweep.out / point.run_dir
    try:
        resume = prepare(sweep.out, point.run_dir)
    except BnexpError as e:
        end_point(sweep, point, Status.FAILED, str(e), reporter)
        return
    executor.start(point, None if resume else config_module.to_yaml(point.config), run)
    point.status, point.message = Status.RUNNING, None
    write_manifest(sweep)
    reporter.started(point)


def collect(sweep: Sweep, executor, reporter: SweepReporter) -> None:
    for point, code, error in executor.finished(timeout=0.25):
        run = rundir.RunDir(sweep.out / point.run_dir)
        summary = run.read_summary() if run.has_summary() else rundir.Summary(status=None)
        status = outcome(code, summary.status, stopping=sweep.stopped_by is not None)
        point.test_accuracy, point.failed_to_learn = summary.test_accuracy, bool(summary.failed_to_learn)
        message = (error or summary.message or f"exit code {code}") if status == Status.FAILED else summary.message
        end_point(sweep, point, status, message, reporter)


def outcome(code: int, summary_status: Status | None, stopping: bool) -> Status:
    """A point's status from its exit code and its summary, which may be stale if the
    process died before writing (a resume that could not load its data, say). A point
    stopped with the sweep before it could say so (still importing, or a Ray task
    cancelled in its queue) is interrupted: a rerun resumes or restarts it."""
    if (code, summary_status) in ((0, Status.COMPLETED), (1, Status.DIVERGED), (130, Status.INTERRUPTED),
                                  (143, Status.INTERRUPTED)):
        return summary_status
    return Status.INTERRUPTED if stopping else Status.FAILED


def end_point(sweep: Sweep, point: Point, status: Status, message: str | None, reporter: SweepReporter) -> None:
    point.status, point.message = status, message
    write_manifest(sweep)
    reporter.finished(point)
