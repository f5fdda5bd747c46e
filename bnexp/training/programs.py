"""The cache of compiled training programs, and the key that says when a run may reuse them.

Compiling a run's XLA programs takes seconds; a sweep's points often differ only in values
the programs take as inputs (seed, learning rate, ...). A warm worker (bnexp.sweep.worker) keeps
its Trainers by program key, and a run whose key it has seen trains on those programs,
its inputs assigned afresh (Trainer.start), ending bit for bit as a fresh build would.
Importing this module imports no TensorFlow: the sweep computes keys to send each point to
the worker that holds its programs, without it.
"""

from __future__ import annotations

from typing import Any

from bnexp.config import Config, flatten, yaml_flow
from bnexp.data import Dataset
from bnexp.training.plan import Plan
from bnexp.training.trainer import Trainer

# Keys that never reach a compiled program: they name the run, pace its loop or choose its
# diagnostics (bnexp.training.loop.Loop reads them, Trainer never does).
PER_RUN_KEYS = ("name", "train.eval_every", "train.checkpoint_every", "diagnostics.")


def program_inputs(config: Config) -> dict[str, Any]:
    """The values of `config` that its compiled training programs take as inputs (variables
    assigned per run by bnexp.training.trainer.Trainer.start) instead of baking them in as constants.

    A value that switches a feature off (0) is no input: it is part of the program, so that
    a program without the feature stays as fast as one that never had it. Not inputs: a
    step or cosine schedule's rate (its formula holds it), the seed under
    `train.trainable: random_weights` (it picks the gradient masks, which are constants),
    `model.norm.epsilon` (a constant of Keras' BN and of `bnexp eval`'s programs, whose
    results must equal training's to the bit) and dropout rates.
    """
    t, noise = config.train, config.model.norm.noise
    inputs: dict[str, Any] = {"train.divergence_loss": t.divergence_loss}
    if t.trainable != "random_weights":
        inputs["seed"] = config.seed
    if t.schedule.kind == "constant":
        inputs["train.learning_rate"] = t.learning_rate
    if t.optimizer == "momentum" and t.momentum != 0:
        inputs["train.momentum"] = t.momentum
    if t.weight_decay > 0:
        inputs["train.weight_decay"] = t.weight_decay
    if noise.scale > 0:
        inputs["model.norm.noise.scale"] = noise.scale
    return inputs


def program_key(config: Config) -> str:
    """What identifies `config`'s compiled programs: everything but its program inputs and the
    keys that never reach a program. Two configs with the same key train on the same
    programs; the total step count stays in it for schedules that depend on it."""
    flat = flatten(config.model_dump(mode="json"))
    inputs = program_inputs(config)
    per_run = [k for k in flat if k.startswith(PER_RUN_KEYS)] + ["train.eval_train_examples"]
    if config.train.schedule.kind != "cosine":  # only cosine's formula holds the total steps
        per_run += ["train.epochs", "train.steps"]
    if config.train.optimizer != "momentum":  # read by the momentum optimizer only
        per_run.append("train.momentum")
    return yaml_flow({k: v for k, v in flat.items() if k not in inputs and k not in per_run})


class Programs:
    """Trainers kept from run to run in one process (a warm worker), by program key: a run
    whose config differs from an earlier one's only in program inputs (program_inputs above:
    seed, learning rate, momentum, weight decay, noise scale, divergence threshold) trains on
    that run's compiled programs.
    `reused` counts the runs that did."""

    def __init__(self, keep: int = 4):
        self.keep, self.reused = keep, 0
        self.trainers: dict[str, Trainer] = {}  # oldest first

    def trainer(self, config: Config, data: Dataset, plan: Plan, log) -> Trainer:
        """A Trainer for `config`, its programs reused where the key allows; `log` (the
        session's Log) notes a reuse."""
        key = f"{data.name} {data.source} " + program_key(config)
        trainer = self.trainers.pop(key, None)
        if trainer is None:
            trainer = Trainer(config, data, plan)
        else:
            trainer.start(config, plan)
            self.reused += 1
            log.note(f"reusing compiled programs (this process's reuse {self.reused})")
        self.trainers[key] = trainer
        while len(self.trainers) > self.keep:  # memory: each holds a model, its data and its programs
            del self.trainers[next(iter(self.trainers))]
        return trainer

