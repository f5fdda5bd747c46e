"""Training a run: compiled multi-step calls, evaluation, checkpoints, resume and extension.

The package by job, each module importing only those above it in this list:
- plan: the step plan (where boundaries fall, which examples each step reads) and the
  loop state a checkpoint restores;
- trainer: the model, the optimizer and the compiled XLA step programs;
- programs: the cache of compiled programs a warm worker keeps, and its key;
- loop: the loop over steps, its metrics rows, the Reporter and the run's Log;
- extension: resuming from a checkpoint, and extending a run to a longer plan;
- session: one session of a run (summary, signals) and train_run;
- commands: the entry points of `bnexp train` and a worker's tasks.
The environment a run records comes from bnexp.rundir.provenance.
"""

from bnexp.training.commands import Warm, exit_status, train_config, train_new, train_resume
from bnexp.training.loop import Reporter
from bnexp.training.plan import PROGRESS_EVERY, Plan, epoch_order, train_subset
from bnexp.training.session import StopRequest, signals_held, train_run
from bnexp.training.trainer import Trainer

__all__ = ["PROGRESS_EVERY", "Plan", "Reporter", "StopRequest", "Trainer", "Warm", "epoch_order", "exit_status",
           "signals_held", "train_config", "train_new", "train_resume", "train_run", "train_subset"]
