"""A warm sweep worker: one process that trains point after point, TensorFlow imported once.

`python -m bnexp.sweep.worker` reads one task a line on stdin, as JSON:

    {"config": "<the point's config as YAML>" or null to resume, "run_dir": "...", "data_dir": "..." or null}

trains it in this process exactly as `bnexp train CONFIG --run-dir RUN_DIR --data-dir DIR
--quiet` (or `bnexp train --resume RUN_DIR`) would, through the same bnexp.training
functions, and answers with one line on stdout:

    {"code": <the exit code bnexp train would exit with>, "message": "<its one-line error, or empty>"}

A point pays once per worker, not once per point, for the interpreter, TensorFlow's
import and the datasets (kept loaded here), and a point whose config differs from an
earlier one's only in program inputs (bnexp.training.programs.program_inputs) trains on that point's
compiled programs (bnexp.training.programs.Programs). Each point still gets its own run directory,
log, checkpoints and summary. SIGINT or SIGTERM during a point stops it as they stop
`bnexp train`: at the end of the compiled call, with a checkpoint (a second signal stops
at once); between points both are ignored, so a stop that arrives as a point ends cannot
take the worker down before it answers. End of input ends the worker. The sweep that started it
(bnexp.sweep.local.Worker) gives it its thread count in BNEXP_THREADS.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback

from bnexp import config as config_module
from bnexp.errors import BnexpError, Stopped, signal_exit_code
from bnexp.training import Reporter, Warm, exit_status, train_config, train_resume


def run_task(task: dict, warm: Warm) -> tuple[int, str]:
    """Train one task; (exit code, one-line error) as `bnexp train --quiet` would end."""
    try:
        if task["config"] is None:
            _, summary = train_resume(task["run_dir"], task["data_dir"], Reporter(), warm=warm)
        else:
            where = f"config of {task['run_dir']}"
            config = config_module.validate(config_module.parse_yaml(task["config"], where), where)
            _, summary = train_config(config, task["run_dir"], task["data_dir"], Reporter(), warm)
    except BnexpError as e:
        return e.exit_code, str(e)
    except Stopped as e:  # a second signal: stopped at once, as bnexp train
        return signal_exit_code(e.signal), f"interrupted twice by {e.signal}"
    except Exception as e:  # a bug of ours: the run's log.txt has the traceback
        traceback.print_exc()
        return 1, f"unexpected {type(e).__name__}: {e}"
    return exit_status(summary)


def serve(tasks, replies) -> None:
    """Answer every task line of `tasks` with one reply line on `replies`."""
    warm = Warm()
    for line in tasks:
        code, message = run_task(json.loads(line), warm)
        replies.write(json.dumps({"code": code, "message": " ".join(message.split())}) + "\n")
        replies.flush()


def die_with_parent(parent: int, by_thread: bool) -> None:
    """Be killed the moment the sweep that started this worker dies (kill -9 included), so
    no orphan trains on holding its run's lock: Linux's parent-death signal, else (or when
    the parent started it from a thread other than its main one, whose end the signal
    would follow) a thread that watches for the parent to go. SIGKILL, not a clean stop:
    the point resumes from its last checkpoint, and the lock is free for a rerun at once."""
    try:
        import ctypes

        if by_thread:
            raise OSError("the parent's thread may end before the parent")
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        import threading
        import time

        def watch():
            while os.getppid() == parent:
                time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # it died before the watch began
        os.kill(os.getpid(), signal.SIGKILL)


PR_SET_PDEATHSIG = 1


def main() -> None:
    from bnexp.backend import tensorflow

    parent, _, how = os.environ.get("BNEXP_PARENT_PID", "").partition(":")
    if parent.isdigit():
        die_with_parent(int(parent), how == "watch")

    for signum in (signal.SIGINT, signal.SIGTERM):  # train's StopRequest takes them over during a point
        signal.signal(signum, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever else prints goes to stderr, never into the replies
    tensorflow()  # before the first task: the worker is warm once it reads one
    serve(sys.stdin, replies)
    replies.close()
    sys.stderr.flush()
    os._exit(0)  # the interpreter's teardown of TensorFlow takes most of a second and saves nothing


if __name__ == "__main__":
    main()
