"""Opt-in BN diagnostics (`diagnostics.enabled`), recorded at every evaluation as tables
in the run directory (bnexp.rundir.tables declares their columns):

- activations: the 15th, 50th and 85th percentiles of the input to chosen activation
  units (`diagnostics.units` of every hidden layer) over a fixed set of test examples,
  in inference mode: Ioffe & Szegedy (2015), Figure 1(b, c). In a conv layer a unit is a
  channel (feature map), its percentiles over examples and positions.
- bn: per BN layer, how far the current training batch's statistics are from the
  moving statistics (mean over units of |batch − moving|, for the mean and the variance):
  per channel in a conv layer, and in an LSTM's recurrent BN per time step and unit.
- gradients: the gradient norm of every trainable variable on that batch.

Those three come with `diagnostics.enabled`. Santurkar et al.'s (2018) measurements, each
on the latest training batch and the training objective (bnexp/landscape.py has the maths):

- ics (`diagnostics.ics`): internal covariate shift by their Definition 2.1, per Dense layer;
- landscape (`diagnostics.landscape`): the loss range, gradient predictiveness and
  effective β-smoothness along the update direction (their Figure 4).

They run outside the compiled training steps, at evaluation points only, so the hot loop
pays nothing for them; they never change the model (BN statistics are put back).
"""

from __future__ import annotations

import numpy as np

from bnexp.backend import tensorflow
from bnexp.landscape import internal_covariate_shift, loss_landscape
from bnexp.model import forward, moving_stat_layers, pixels, statistics_preserved
from bnexp.recurrent import LSTM, TimeBatchNorm
from bnexp.rundir import RunDir

tf = tensorflow()

PERCENTILES = (15, 50, 85)


class Diagnostics:
    """Computes one run's diagnostics rows and appends them to its tables.

    `objective` (bnexp.regularize.Objective) is what training minimises and moves: the ICS
    and landscape measurements differentiate it.
    """

    def __init__(self, model, settings, test_images: np.ndarray, run: RunDir, objective):
        import keras

        self.model, self.settings, self.run, self.objective = model, settings, run, objective
        bn = ["activations", "bn", "gradients"] if settings.enabled else []
        self.kinds = bn + [kind for kind in ("ics", "landscape") if getattr(settings, kind)]
        if settings.enabled:
            self.images = tf.constant(test_images[: settings.examples])
            activations = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
            self.activation_probe = keras.Model(model.inputs, [layer.input for layer in activations])
            self.bn_layers = [layer for layer in moving_stat_layers(model) if not isinstance(layer, TimeBatchNorm)]
            self.bn_probe = keras.Model(model.inputs, [layer.input for layer in self.bn_layers]) if self.bn_layers else None
            self.lstms = [layer for layer in model.layers if isinstance(layer, LSTM) and layer.norm == "batch"]
            self.lstm_probe = keras.Model(model.inputs, [layer.input for layer in self.lstms]) if self.lstms else None

    def start(self, resumed_at: int | None) -> None:
        """Fresh tables; a resumed run keeps its rows up to the step `resumed_at`."""
        self.run.start_diagnostics(self.kinds, resumed_at)

    def record(self, step: int, batch_images: np.ndarray, batch_labels: np.ndarray, learning_rate: float) -> dict[str, float]:
        """Append this step's rows to the tables; return them as TensorBoard scalars.

        `learning_rate` is the rate of the latest step: ICS's update and the landscape's
        step sizes are taken at it."""
        rows = {}
        if self.settings.enabled:
            rows["activations"] = self._activation_rows(step)
            rows["bn"] = self._bn_rows(step, batch_images)
            rows["gradients"] = self._gradient_rows(step, batch_images, batch_labels)
        measured = dict(model=self.model, loss_fn=self.objective.loss, x=tf.constant(batch_images),
                        y=tf.constant(batch_labels.astype(np.int32)), learning_rate=learning_rate,
                        trained=self.objective.variables, masks=self.objective.masks)
        if self.settings.ics:
            rows["ics"] = [{"step": step, "layer": layer, "ics_l2": r["ics_l2"], "ics_cosine": r["ics_cosine"]}
                           for layer, r in enumerate(internal_covariate_shift(**measured))]
        if self.settings.landscape:
            rows["landscape"] = [{"step": step, **loss_landscape(**measured)}]
        self.run.append_diagnostics(rows)
        return scalars(rows)

    def _activation_rows(self, step: int) -> list[dict]:
        outputs = self.activation_probe(pixels(self.images), training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        rows = []
        for layer, values in enumerate(outputs):
            values = values.numpy()
            for unit in self.settings.units:
                if unit < values.shape[-1]:
                    p15, p50, p85 = (float(p) for p in np.percentile(values[..., unit], PERCENTILES))
                    rows.append({"step": step, "layer": layer, "unit": unit, "p15": p15, "p50": p50, "p85": p85})
        return rows

    def _bn_rows(self, step: int, batch_images: np.ndarray) -> list[dict]:
        """One row per layer with moving statistics, in moving_stat_layers' order."""
        gaps = []  # (layer, batch mean, batch variance), each per channel (or per time step and unit)
        with statistics_preserved(self.model):
            x = pixels(tf.constant(batch_images))
            if self.bn_layers:
                inputs = self.bn_probe(x, training=True)
                for layer, values in zip(self.bn_layers, inputs if isinstance(inputs, (list, tuple)) else [inputs]):
                    values = values.numpy().astype(np.float64).reshape(-1, values.shape[-1])  # a conv layer: per channel
                    gaps.append((layer, values.mean(axis=0), values.var(axis=0)))
            if self.lstms:
                inputs = self.lstm_probe(x, training=True)
                for lstm, values in zip(self.lstms, inputs if isinstance(inputs, (list, tuple)) else [inputs]):
                    gaps += [(layer, mean.numpy(), var.numpy()) for layer, (mean, var) in zip(lstm.norms, lstm.batch_moments(values))]
        order = {id(layer): i for i, layer in enumerate(moving_stat_layers(self.model))}
        rows = []
        for layer, mean, var in sorted(gaps, key=lambda g: order[id(g[0])]):
            mean_gap = np.abs(mean - layer.moving_mean.numpy()).mean()
            variance_gap = np.abs(var - layer.moving_variance.numpy()).mean()
            rows.append({"step": step, "layer": order[id(layer)], "mean_gap": float(mean_gap), "variance_gap": float(variance_gap)})
        return rows

    def _gradient_rows(self, step: int, batch_images: np.ndarray, batch_labels: np.ndarray) -> list[dict]:
        variables = self.model.trainable_variables
        with statistics_preserved(self.model), tf.GradientTape() as tape:
            _, losses = forward(self.model, tf.constant(batch_images), batch_labels.astype(np.int32), training=True)
            loss = tf.reduce_mean(losses)
        grads = tape.gradient(loss, variables)
        return [{"step": step, "variable": v.path, "grad_norm": float(tf.norm(g).numpy())}
                for v, g in zip(variables, grads) if g is not None]


def scalars(rows: dict[str, list[dict]]) -> dict[str, float]:
    """TensorBoard tags for one step's diagnostics rows (the tables' columns, as tag paths)."""
    tags = {}
    for r in rows.get("activations", []):
        tags.update({f"activation_input/layer{r['layer']}/unit{r['unit']}/p{p}": r[f"p{p}"] for p in PERCENTILES})
    for r in rows.get("bn", []):
        tags.update({f"bn_gap/layer{r['layer']}/mean": r["mean_gap"], f"bn_gap/layer{r['layer']}/variance": r["variance_gap"]})
    for r in rows.get("gradients", []):
        tags[f"grad_norm/{r['variable']}"] = r["grad_norm"]
    for r in rows.get("ics", []):
        tags.update({f"ics/layer{r['layer']}/l2": r["ics_l2"], f"ics/layer{r['layer']}/cosine": r["ics_cosine"]})
    for r in rows.get("landscape", []):
        tags.update({f"landscape/{name}": value for name, value in r.items() if name != "step"})
    return tags
