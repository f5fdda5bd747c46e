"""Import TensorFlow once, quietly, with the thread settings bnexp wants.

Only `train` and `eval` come here; everything else must answer without TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probes on a CPU machine) is noise to our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _stderr_silenced():
    """absl prints its CUDA probe lines to fd 2 before any log level applies: hide them."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def tensorflow():
    """The tensorflow module, imported quietly the first time.

    `BNEXP_THREADS=N` caps TensorFlow's thread pools, so N processes can share cores.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _stderr_silenced():
        import keras  # noqa: F401  (imports TensorFlow as its backend)
        import tensorflow as tf

        threads = int(os.environ.get("BNEXP_THREADS", "0"))
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.constant(0)  # the first op initialises the runtime, which prints too
    return tf
