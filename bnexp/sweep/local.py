"""Points on warm workers of this machine: `Worker` is the sweep's end of one worker
process (bnexp.sweep.worker), `LocalExecutor` keeps one per slot and replaces one that
dies. `take_next` sends a point to the worker that already holds its compiled programs.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from bnexp.training.programs import program_key
from bnexp.sweep.spec import Point


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads(workers: int) -> int:
    """TensorFlow threads for each of `workers` points at once: $BNEXP_THREADS when set, else
    the cores shared out, so that the points share them rather than fight."""
    return int(os.environ.get("BNEXP_THREADS") or 0) or max(1, available_cores() // workers)


def parent_pid() -> str:
    """How a worker started here knows its sweep (bnexp.sweep.worker.die_with_parent): this
    pid, with ':watch' when started off the main thread (a Ray actor's)."""
    import threading

    return str(os.getpid()) + ("" if threading.current_thread() is threading.main_thread() else ":watch")


class Worker:
    """A warm worker process (`python -m bnexp.sweep.worker`): it trains the points it is
    sent, one at a time, each as `bnexp train --quiet` would, and answers each with that
    command's exit code and one-line error. Its stderr goes to a file, whose last line says
    why it died."""

    def __init__(self, threads: int):
        self.stderr = tempfile.TemporaryFile("w+")
        # A Ray worker blocks SIGINT, and a child inherits the mask: unblock it for the fork,
        # or the forwarded stop would never arrive.
        mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            # A session of its own keeps a terminal's Ctrl-C away: the sweep forwards it once,
            # since a second SIGINT stops training without a checkpoint.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bnexp.sweep.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=self.stderr, text=True,
                env={**os.environ, "BNEXP_THREADS": str(threads), "BNEXP_PARENT_PID": parent_pid()},
                start_new_session=True)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.keys: set[str] = set()  # program keys of the points it has trained: their programs it holds

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, config_yaml: str | None, run_dir: str, data_dir: str | None) -> None:
        """Give it a point: its config (None to resume) and run directory."""
        task = {"config": config_yaml, "run_dir": run_dir, "data_dir": data_dir}
        try:
            self.process.stdin.write(json.dumps(task) + "\n")
            self.process.stdin.flush()
        except OSError:  # it died idle: reply() says how
            pass

    def answered(self, timeout: float) -> bool:
        """Whether its reply (or its death) can be read without waiting, after up to `timeout` s."""
        return bool(select.select([self.process.stdout], [], [], timeout)[0])

    def reply(self) -> tuple[int, str]:
        """The exit code and one-line error of the point it was sent; a worker that died
        (kill -9, a crash) answers with its death: a negative signal number and why."""
        line = self.process.stdout.readline()
        if line:
            answer = json.loads(line)
            return answer["code"], answer["message"]
        code = self.process.wait()
        self.stderr.seek(0)
        lines = [text.strip() for text in self.stderr.read().splitlines() if text.strip()]
        cause = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return code if code else 1, f"the worker training it died ({cause})" + (f": {lines[-1]}" if lines else "")

    def interrupt(self, signum: int) -> None:
        if self.alive:
            self.process.send_signal(signum)

    def close(self) -> None:
        """End of input: it exits once its current point is done."""
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def wait(self) -> None:
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


def close_all(workers: list[Worker]) -> None:
    """Close every worker's input, then wait for each: they shut down side by side."""
    for worker in workers:
        worker.close()
    for worker in workers:
        worker.wait()


def take_next(todo: deque, free_keys: set[str] | None, held: set[str]) -> Point:
    """Take from `todo` the point a free worker should train next: one whose programs it
    holds (`free_keys`, None for a worker yet to start), else one whose programs no worker
    holds (`held`) so that it compiles them for the points that share them, else the first.
    Points that share programs so end up on the worker that compiled them."""
    keys = [program_key(p.config) for p in todo]
    for wanted in (lambda k: k in (free_keys or ()), lambda k: k not in held):
        for i, key in enumerate(keys):
            if wanted(key):
                point = todo[i]
                del todo[i]
                return point
    return todo.popleft()


class LocalExecutor:
    """Points on `workers` warm worker processes of this one; a worker that dies is replaced."""

    def __init__(self, workers: int, data_dir: str | None):
        self.slots, self.data_dir = workers, data_dir
        self.threads = default_threads(workers)
        self.workers: list[Worker] = []
        self.running: dict[Point, Worker] = {}
        self.chosen: Worker | None = None

    def open(self, threads: int) -> None:
        self.threads = threads

    def take(self, todo: deque) -> Point:
        """The next point for the first free worker (take_next), which `start` then gives it."""
        idle = [w for w in self.workers if w not in self.running.values()]
        self.chosen = idle[0] if idle else None
        return take_next(todo, self.chosen.keys if self.chosen else None, set().union(*(w.keys for w in self.workers)))

    def start(self, point: Point, config_yaml: str | None, run: Path) -> None:
        worker = self.chosen or self._new_worker()
        worker.send(config_yaml, str(run), self.data_dir)
        worker.keys.add(program_key(point.config))
        self.running[point] = worker

    def _new_worker(self) -> Worker:
        worker = Worker(self.threads)
        self.workers.append(worker)
        return worker

    def finished(self, timeout: float) -> list[tuple[Point, int, str]]:
        pipes = {worker.process.stdout: point for point, worker in self.running.items()}
        ready = select.select(list(pipes), [], [], timeout)[0] if pipes else time.sleep(timeout) or []
        results = []
        for pipe in ready:
            worker = self.running.pop(pipes[pipe])
            results.append((pipes[pipe], *worker.reply()))
            if not worker.alive:  # a crash: the next point gets a fresh worker
                self.workers.remove(worker)
                worker.wait()
        return results

    def interrupt(self, signum: int) -> None:
        for worker in self.running.values():
            worker.interrupt(signum)

    def close(self) -> None:
        """Never leave a point training alone (after an error of the sweep's own): stop it
        cleanly, so it checkpoints, and wait for it; then end every worker."""
        self.interrupt(signal.SIGINT)
        for worker in self.running.values():
            worker.reply()
        self.running.clear()
        close_all(self.workers)
        self.workers.clear()
