"""Opt-in BN diagnostics (`diagnostics.enabled`), recorded at every evaluation as CSV.

- diag_activations.csv: the 15th, 50th and 85th percentiles of the input to chosen
  activation units (`diagnostics.units` of every hidden layer) over a fixed set of test
  examples, in inference mode: Ioffe & Szegedy (2015), Figure 1(b, c).
- diag_bn.csv: per BN layer, how far the current training batch's statistics are from the
  moving statistics (mean over units of |batch − moving|, for the mean and the variance).
- diag_gradients.csv: the gradient norm of every trainable variable on that batch.

They run outside the compiled training steps, at evaluation points only, so the hot loop
pays nothing for them; they never change the model (BN statistics are put back).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bnexp.backend import tensorflow
from bnexp.evaluate import pixels, statistics_preserved
from bnexp.model import moving_stat_layers
from bnexp.rundir import write_atomic

tf = tensorflow()

FILES = {
    "diag_activations.csv": ["step", "layer", "unit", "p15", "p50", "p85"],
    "diag_bn.csv": ["step", "layer", "mean_gap", "variance_gap"],
    "diag_gradients.csv": ["step", "variable", "grad_norm"],
}
PERCENTILES = (15, 50, 85)


class Diagnostics:
    """Computes and appends the three diagnostics files for one run."""

    def __init__(self, model, settings, test_images: np.ndarray, run_path: Path):
        import keras

        self.model, self.settings, self.run_path = model, settings, Path(run_path)
        self.images = tf.constant(test_images[: settings.examples])
        activations = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
        self.activation_probe = keras.Model(model.inputs, [layer.input for layer in activations])
        self.bn_layers = moving_stat_layers(model)
        self.bn_probe = keras.Model(model.inputs, [layer.input for layer in self.bn_layers]) if self.bn_layers else None

    def start(self, resumed_at: int | None) -> None:
        """Fresh files with headers; a resumed run keeps its rows up to the checkpoint's step
        (it redoes the later ones). Whole files are replaced atomically, as in rundir."""
        for name, columns in FILES.items():
            path = self.run_path / name
            lines = path.read_text().splitlines(keepends=True)[1:] if resumed_at is not None and path.exists() else []
            kept = [line for line in lines if line.endswith("\n") and int(line.split(",")[0]) <= resumed_at]
            write_atomic(path, ",".join(columns) + "\n" + "".join(kept))

    def record(self, step: int, batch_images: np.ndarray, batch_labels: np.ndarray) -> dict[str, float]:
        """Append this step's rows to the three files; return them as TensorBoard scalars."""
        rows = {
            "diag_activations.csv": self._activation_rows(step),
            "diag_bn.csv": self._bn_rows(step, batch_images),
            "diag_gradients.csv": self._gradient_rows(step, batch_images, batch_labels),
        }
        for name, new in rows.items():
            with open(self.run_path / name, "a", newline="") as f:
                csv.writer(f).writerows(new)
        return scalars(rows)

    def _activation_rows(self, step: int) -> list:
        outputs = self.activation_probe(pixels(self.images), training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        rows = []
        for layer, values in enumerate(outputs):
            values = values.numpy()
            for unit in self.settings.units:
                if unit < values.shape[1]:
                    rows.append([step, layer, unit, *(float(p) for p in np.percentile(values[:, unit], PERCENTILES))])
        return rows

    def _bn_rows(self, step: int, batch_images: np.ndarray) -> list:
        if not self.bn_layers:
            return []
        with statistics_preserved(self.model):
            inputs = self.bn_probe(pixels(tf.constant(batch_images)), training=True)
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        rows = []
        for index, (layer, x) in enumerate(zip(self.bn_layers, inputs)):
            x = x.numpy().astype(np.float64)
            mean_gap = np.abs(x.mean(axis=0) - layer.moving_mean.numpy()).mean()
            variance_gap = np.abs(x.var(axis=0) - layer.moving_variance.numpy()).mean()
            rows.append([step, index, float(mean_gap), float(variance_gap)])
        return rows

    def _gradient_rows(self, step: int, batch_images: np.ndarray, batch_labels: np.ndarray) -> list:
        variables = self.model.trainable_variables
        with statistics_preserved(self.model), tf.GradientTape() as tape:
            logits = self.model(pixels(tf.constant(batch_images)), training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(batch_labels.astype(np.int32), logits))
        grads = tape.gradient(loss, variables)
        return [[step, v.path, float(tf.norm(g).numpy())] for v, g in zip(variables, grads) if g is not None]


def scalars(rows: dict[str, list]) -> dict[str, float]:
    """TensorBoard tags for one step's diagnostics rows (the files' columns, as tag paths)."""
    tags = {}
    for _, layer, unit, *values in rows["diag_activations.csv"]:
        tags.update({f"activation_input/layer{layer}/unit{unit}/p{p}": v for p, v in zip(PERCENTILES, values)})
    for _, layer, mean_gap, variance_gap in rows["diag_bn.csv"]:
        tags.update({f"bn_gap/layer{layer}/mean": mean_gap, f"bn_gap/layer{layer}/variance": variance_gap})
    for _, variable, norm in rows["diag_gradients.csv"]:
        tags[f"grad_norm/{variable}"] = norm
    return tags
