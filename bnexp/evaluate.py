"""Evaluation: one function shared by `train` (its metrics and summary) and `eval`.

Because both go through `Evaluator.evaluate`, `bnexp eval RUN` reproduces the final test
accuracy in summary.json exactly. Accuracy is correct/total as a Python float.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bnexp.backend import tensorflow
from bnexp.model import CLASSES, INPUTS

tf = tensorflow()

EVAL_BATCH = 2000


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


def pixels(images):
    """uint8 images (any leading shape) to float32 in [0, 1], flattened: done in-graph."""
    return tf.reshape(tf.cast(images, tf.float32) * (1.0 / 255.0), (-1, INPUTS))


class Evaluator:
    """Inference-mode evaluation of one model, compiled once, in fixed-size padded batches."""

    def __init__(self, model, batch_size: int = EVAL_BATCH):
        self.model = model
        self.batch_size = batch_size

        @tf.function(jit_compile=True)
        def forward(images, labels):
            logits = self.model(pixels(images), training=False)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
            return losses, tf.argmax(logits, axis=1, output_type=tf.int32)

        self._forward = forward

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
