"""Evaluation: one function shared by `train` (its metrics and summary) and `eval`.

Because both go through `Evaluator.evaluate`, `bnexp eval RUN` reproduces the final test
accuracy of the run's summary exactly. Accuracy is correct/total as a Python float.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from bnexp.backend import tensorflow

tf = tensorflow()

from bnexp import rundir  # noqa: E402
from bnexp.model import CLASSES, build_model, forward, moving_stat_layers, pixels, predicted_class, statistics_preserved  # noqa: E402
from bnexp.recurrent import LSTM  # noqa: E402
from bnexp.stochastic import run_layers  # noqa: E402
from bnexp.status import Status  # noqa: E402

EVAL_BATCH = 5000  # measured: 5,000 per call beats 2,000 and 10,000 on 2 cores (bench/)
# Conv and recurrent networks: the bundled sample's 1,000 test images padded to 5,000 took
# the rows BN-LSTM 1.67 s an evaluation instead of 0.25 s in batches of 1,000 (2 cores).
NETWORK_EVAL_BATCH = 1000


@dataclass
class EvalResult:
    loss: float
    accuracy: float
    correct: int
    total: int
    predictions: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)

    def confusion(self) -> np.ndarray:
        """counts[true, predicted]."""
        return np.bincount(self.labels * CLASSES + self.predictions, minlength=CLASSES * CLASSES).reshape(CLASSES, CLASSES)

    def per_class_accuracy(self) -> np.ndarray:
        matrix = self.confusion()
        return np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)


def compiled_forward(model, training: bool):
    """An XLA-compiled (images, labels) -> (per-example loss, predicted class).

    training=True normalises each batch with its own statistics (BN's training mode);
    dropout and noise, training's perturbations, stay off either way.
    """

    @tf.function(jit_compile=True, reduce_retracing=True)
    def compiled(images, labels):
        logits, losses = forward(model, images, labels, training, stochastic=False)
        return losses, predicted_class(logits)

    return compiled


class Evaluator:
    """Inference-mode evaluation of one model, compiled once, in fixed-size padded batches."""

    def __init__(self, model, batch_size: int | None = None):
        self.model = model
        self.batch_size = batch_size or (EVAL_BATCH if model.name == "mlp" else NETWORK_EVAL_BATCH)
        self._forward = compiled_forward(model, training=False)

    def evaluate(self, images: np.ndarray, labels: np.ndarray) -> EvalResult:
        """Loss and accuracy over all of (images, labels); padding never counts."""
        n, b = len(images), self.batch_size
        losses, predictions = [], []
        for start in range(0, n, b):
            x, y = images[start:start + b], labels[start:start + b]
            valid = len(x)
            if valid < b:  # pad, so one compiled shape serves every batch (inference is per-example)
                x = np.concatenate([x, np.zeros((b - valid, *x.shape[1:]), x.dtype)])
                y = np.concatenate([y, np.zeros(b - valid, y.dtype)])
            batch_losses, batch_predictions = self._forward(tf.constant(x), tf.constant(y.astype(np.int32)))
            losses.append(batch_losses.numpy()[:valid])
            predictions.append(batch_predictions.numpy()[:valid])
        return result(np.concatenate(losses), np.concatenate(predictions), labels)


def result(losses: np.ndarray, predictions: np.ndarray, labels: np.ndarray) -> EvalResult:
    labels = labels.astype(np.int64)
    predictions = predictions.astype(np.int64)
    correct = int((predictions == labels).sum())
    return EvalResult(
        loss=float(losses.astype(np.float64).mean()),
        accuracy=correct / len(labels),
        correct=correct,
        total=len(labels),
        predictions=predictions,
        labels=labels,
    )


def frozen_statistics(model):
    """A function that puts the moving statistics (every non-trainable variable) back as they
    are now. Called after each batch a training-mode pass sees: batch renorm's output in
    training mode depends on them (r and d, Ioffe 2017), so each batch must meet the run's
    own, not those the previous batches moved."""
    saved = [(v, v.numpy()) for v in model.non_trainable_weights]

    def restore() -> None:
        for variable, value in saved:
            variable.assign(value)

    return restore


class BatchStatistics:
    """Forward passes that normalise each batch with its own statistics, as training does."""

    def __init__(self, model):
        self.model = model
        self._forward = compiled_forward(model, training=True)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, batch_size: int) -> EvalResult:
        """Each consecutive batch of `batch_size` normalised by itself (the last may be smaller)."""
        losses, predictions = [], []
        with statistics_preserved(self.model):
            restore = frozen_statistics(self.model)
            for start in range(0, len(images), batch_size):
                x, y = images[start:start + batch_size], labels[start:start + batch_size].astype(np.int32)
                batch_losses, batch_predictions = self._forward(tf.constant(x), tf.constant(y))
                restore()
                losses.append(batch_losses.numpy())
                predictions.append(batch_predictions.numpy())
        return result(np.concatenate(losses), np.concatenate(predictions), labels)


def precise_statistics(model, images: np.ndarray, batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """What each normalisation layer's moving statistics estimate, recomputed over many
    batches with the weights frozen (PreciseBN: Wu & Johnson 2021, "Rethinking 'Batch' in
    BatchNorm", section 3: the moving average replaced by the true average of the same
    per-batch statistics). Returns [(mean, value for moving_variance)] in layer order.

    The training-mode network runs over consecutive mini-batches of `batch_size` (a last
    partial batch is dropped, so every batch has the same m); dropout and noise stay off.
    E[x] is the average of the batch means. The variance follows the layer's own rule:

    - layers that average a variance (batch, keras, ghost_batch, batch_renorm with
      `moving_average: variance`): Ioffe & Szegedy (2015), Algorithm 2, step 10:
      Var[x] = m/(m−1) · the average of the (biased) batch variances, the population
      variance, whatever batch size estimates it;
    - batch_renorm with `moving_average: sigma` (Ioffe 2017, Algorithm 1): the layer keeps
      an average of sigma_B = sqrt(v_B + ε) itself, v_B its batch variance (biased, or
      m/(m−1) times it with `variance: unbiased`), and stores sigma² − ε; so does this, at
      the training batch size. E[sigma_B] is below the population sigma, most at small m
      (Jensen), and writing the population variance there would change the network
      inference uses: at batch 2 it cost 0.07 to 0.33 of test accuracy.

    A conv layer's statistics are per feature map over the batch and every position, so its
    m is batch_size·p·q (§3.2). An LSTM's recurrent BN (bnexp.recurrent) gives its statistics
    per time step, (T_max, units) each, over the batch (m = batch_size).
    """
    from bnexp.norm import BatchRenorm

    layers = moving_stat_layers(model)
    top = [layer for layer in model.layers if layer in layers or isinstance(layer, LSTM) and layer.norm == "batch"]
    counts = []  # values per statistic in one batch: m of the unbiased correction, per layer

    @tf.function(jit_compile=True)
    def moments(batch):
        _, inputs = run_layers(model, pixels(batch), training=True, stochastic=False, inputs_of=top)
        found = []
        for layer, x in zip(top, inputs):
            if isinstance(layer, LSTM):
                found += [(tf.cast(mean, tf.float64), tf.cast(var, tf.float64)) for mean, var in layer.batch_moments(x)]
            else:
                found.append(tf.nn.moments(tf.cast(x, tf.float64), axes=list(range(len(x.shape) - 1))))
        return found

    for layer in top:
        if isinstance(layer, LSTM):
            counts += [batch_size] * len(layer.norms)
        else:
            shape = layer.input.shape if hasattr(layer, "input") else None
            counts.append(batch_size * int(np.prod(shape[1:-1])) if shape is not None else batch_size)

    m = batch_size
    batches = len(images) // m
    if batches == 0:
        raise ValueError(f"precise statistics need at least one batch of {m} examples, got {len(images)}")
    sigma_of = [_sigma_rule(layer, n) if isinstance(layer, BatchRenorm) and layer.moving_average == "sigma" else None
                for layer, n in zip(layers, counts, strict=True)]
    sums = None
    with statistics_preserved(model):
        restore = frozen_statistics(model)
        for b in range(batches):
            stats = [(mean.numpy(), var.numpy() if sigma is None else sigma(var.numpy()))
                     for (mean, var), sigma in zip(moments(tf.constant(images[b * m:(b + 1) * m])), sigma_of)]
            restore()
            sums = stats if sums is None else [(s0 + mean, s1 + var) for (s0, s1), (mean, var) in zip(sums, stats)]
    out = []
    for (s0, s1), layer, sigma, n in zip(sums, layers, sigma_of, counts, strict=True):
        if sigma is None:
            out.append((s0 / batches, s1 / batches * n / (n - 1)))
        else:  # stored as the layer stores its average sigma: sigma² − ε, at least 0
            out.append((s0 / batches, np.maximum(np.square(s1 / batches) - layer.epsilon, 0.0)))
    return out


def _sigma_rule(layer, m: int):
    """A batch renorm layer's sigma_B from its batch's biased variance, as it computes it in training."""
    scale = m / (m - 1) if layer.variance == "unbiased" else 1.0
    return lambda var: np.sqrt(var * scale + layer.epsilon)


def set_moving_statistics(model, statistics: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for layer, (mean, var) in zip(moving_stat_layers(model), statistics, strict=True):
        layer.moving_mean.assign(mean.astype(np.float32))
        layer.moving_variance.assign(var.astype(np.float32))


Stats = Literal["moving", "batch", "precise"]
SOURCES: tuple[Stats, ...] = ("moving", "batch", "precise")  # precise last: it replaces the moving statistics
Split = Literal["test", "train"]


def load_model(run: rundir.RunDir, config):
    """The run's model (`config` is its own) with its checkpoint's weights, and the step they were saved at."""
    saved = run.load_checkpoint()
    model = build_model(config.model, config.seed)
    saved.restore(rundir.model_variables(model))
    return model, saved.step


def evaluate_run(run_dir, stats: Stats | Literal["all"] = "moving", split: Split = "test", batch_size: int | None = None,
                 precise_examples: int = 10_000, data_dir=None) -> dict:
    """`bnexp eval`: rebuild a run's model from its own files and evaluate it; record the result in the run.

    Returns the record: accuracy, loss, per-class accuracy, confusion matrix and notes; with
    stats "all", {"moving": record, "batch": record, "precise": record}, from one model.
    """
    from bnexp.data import load
    from bnexp.errors import UsageError

    run = rundir.open_run(run_dir)
    config = run.read_config()
    summary = run.read_summary()
    model, step = load_model(run, config)
    sources = SOURCES if stats == "all" else (stats,)
    without = None
    if not moving_stat_layers(model):
        without = (f"needs layers with batch statistics (model.norm.kind batch, keras, batch_renorm or ghost_batch),"
                   f" and {run.path} was trained with model.norm.kind={config.model.norm.kind}")
        if stats != "all" and stats != "moving":
            raise UsageError(f"--stats {stats} {without}")
        sources = ("moving",)  # the others do not apply: reported as such below
    data = load(config.data.dataset, data_dir or config.data.dir)
    images, labels = data.split(split)
    batch_size = batch_size or config.train.batch_size
    notes = [f"the run is {summary.status}: evaluating its last checkpoint, at step {step}"] if summary.status != Status.COMPLETED else []
    precise_notes = []
    if "precise" in sources:
        used = _precise_examples(data, precise_examples, config.seed, precise_notes)
        if len(used) < batch_size:
            raise UsageError(f"--precise-examples {len(used)} is fewer than one batch of {batch_size}: "
                             f"use at least {batch_size} examples or a smaller --batch-size")
    records, evaluator = {}, Evaluator(model)  # one compiled inference pass for moving and precise
    for source in sources:
        record = {"stats": source, "split": split, "step": step}
        if source == "batch":
            outcome = BatchStatistics(model).evaluate(images, labels, batch_size)
            record["batch_size"] = batch_size
        else:
            if source == "precise":
                set_moving_statistics(model, precise_statistics(model, used, batch_size))
                record.update(batch_size=batch_size, precise_examples=len(used))
            outcome = evaluator.evaluate(images, labels)
        records[source] = finish_record(record, outcome, notes + (precise_notes if source == "precise" else []))
        run.record_eval(records[source])
    if stats == "all" and without:
        for source in SOURCES[1:]:
            records[source] = {"stats": source, "split": split, "step": step, "applicable": False,
                               "notes": [f"not applicable: --stats {source} {without}"]}
    return records if stats == "all" else records[stats]


def finish_record(record: dict, outcome: EvalResult, notes: list) -> dict:
    """`record` with the outcome's numbers, the time and `notes`."""
    from datetime import datetime, timezone

    return {**record, "accuracy": outcome.accuracy, "loss": outcome.loss, "correct": outcome.correct, "total": outcome.total,
            "per_class_accuracy": [float(a) for a in outcome.per_class_accuracy()],
            "confusion": outcome.confusion().tolist(),
            "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "notes": notes}


def _precise_examples(data, wanted: int, seed: int, notes: list) -> np.ndarray:
    """The first `wanted` training images of a seeded shuffle (all of them if fewer)."""
    n = len(data.x_train)
    if wanted >= n:
        if wanted > n:
            notes.append(f"--precise-examples {wanted} exceeds the {n} training examples: used all {n}")
        wanted = n
    order = np.random.default_rng(seed).permutation(n)[:wanted]
    return data.x_train[np.sort(order)]
