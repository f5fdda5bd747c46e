"""Bench arms for the conv and recurrent networks (`model.kind: cnn | rnn`), run by bench/speed.py:

    PYTHONPATH=. .venv/bin/python bench/speed.py --arms floor_cnn,keras_cnn,bnexp_cnn --reps 3 --no-startup
    PYTHONPATH=. .venv/bin/python bench/speed.py --arms floor_rnn,keras_rnn,keras_bnlstm,bnexp_rnn --reps 3 --no-startup

The workloads are configs/cnn.yaml and configs/rnn.yaml as shipped, on the bundled MNIST
sample (5,000 training images: 100 steps of 50 an epoch; the arms ignore --data-dir):

  cnn  28×28×1 → [conv 5×5, 16 → BN → relu → max-pool 2] → [conv 5×5, 32 → BN → relu →
       max-pool 2] → Dense 100 → BN → relu → 10; momentum SGD (lr 0.05, 0.9), He init
  rnn  28 rows of 28 pixels → LSTM(100) with recurrent BN (Cooijmans et al. 2016: BN of the
       input and hidden terms and of the cell, per time step, γ = 0.1) → Dense 100 → BN →
       relu → 10; Adam (lr 0.003) with a cosine schedule

Arms, each as speed.py runs them (a fresh process, epochs timed, median after the first):

  floor_cnn / floor_rnn  the network hand-written as ../shared/bench/floor_graph.py writes
                         the MLP: uint8 images gathered and scaled in-graph, 4 unrolled steps
                         per XLA call, a graph while-loop over an epoch's calls; BN from
                         tf.nn.moments; no evaluation, logging or checkpoints. The LSTM's 28
                         steps are a tf.while_loop (a Python loop, unrolled 28 × 4 times in
                         the XLA program, compiled for 130 s and ran 2.4× slower than bnexp).
                         test_accuracy: a sanity check with batch statistics over the test set.
  keras_cnn / keras_rnn  model.fit with jit_compile=True and steps_per_execution=100, Keras'
                         own BatchNormalization, validation on the test set every epoch.
                         keras_rnn is the *plain* LSTM: Keras' own keras.layers.LSTM (no
                         cuDNN on CPU), BN only in the dense head, so it does less work than
                         the BN-LSTM of the others; kept as a reference.
  keras_bnlstm           tuned Keras' fair arm for rnn.yaml: the same BN-LSTM as a Keras 3
                         functional model that unrolls the 28 steps explicitly: shared Dense
                         layers without bias for W_x (applied to the whole sequence at once)
                         and W_h, one shared bias (forget gate's from 1), gates (f, i, o, g),
                         and keras.layers.BatchNormalization per time step: for the input
                         term, the hidden term (both center=False: β = 0) and the cell (with
                         β), 3 × 28 layers, γ from 0.1; then the same Dense head with BN.
                         model.fit as keras_rnn (same optimizer, schedule, batch, momentum
                         0.9 and ε 1e-3 of the BNs, jit_compile, steps_per_execution=100,
                         validation on the test set every epoch).
  bnexp_cnn / bnexp_rnn  `python -m bnexp train configs/{cnn,rnn}.yaml` with
                         train.eval_train_examples=0 (the floors evaluate nothing on the
                         training set); its epochs include the test evaluation and checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BATCH, UNROLL, EPS = 50, 4, 1e-3
STEPS = 28  # rows


def sample():
    from bnexp.data import load

    d = load("mnist-sample")
    return d.x_train.reshape(-1, 784), d.y_train.astype("int32"), d.x_test.reshape(-1, 784), d.y_test


def after_first(times: list[float]) -> float:
    import statistics

    return statistics.median(times[1:] or times)


def peak_rss_mb(who=None) -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF if who is None else who).ru_maxrss / 1024


# --------------------------------------------------------------------------- floors


def he(rng, shape, fan_in):
    import tensorflow as tf

    return tf.Variable((rng.normal(size=shape) * math.sqrt(2 / fan_in)).astype("float32"))


def bn(z, gamma, beta, axes, moving, momentum, updates):
    """Training-mode BN over `axes`; the moving-average update is queued in `updates`."""
    import tensorflow as tf

    mean, var = tf.nn.moments(z, axes)
    updates.append((moving, mean, var, momentum))
    return gamma * (z - mean) * tf.math.rsqrt(var + EPS) + (0.0 if beta is None else beta)


def pool2(x):
    import tensorflow as tf

    h, w, c = x.shape[1:]
    return tf.reduce_max(tf.reshape(x[:, :h // 2 * 2, :w // 2 * 2], (-1, h // 2, 2, w // 2, 2, c)), axis=(2, 4))


def cnn_floor(rng):
    """Variables and the training-mode forward of configs/cnn.yaml's network."""
    import tensorflow as tf

    def norm(shape):
        return {"g": tf.Variable(tf.ones(shape)), "b": tf.Variable(tf.zeros(shape)),
                "moving": (tf.Variable(tf.zeros(shape), trainable=False), tf.Variable(tf.ones(shape), trainable=False))}

    p = {"k1": he(rng, (5, 5, 1, 16), 25), "k2": he(rng, (5, 5, 16, 32), 400), "w": he(rng, (7 * 7 * 32, 100), 7 * 7 * 32),
         "wo": he(rng, (100, 10), 100), "bo": tf.Variable(tf.zeros(10)), "n1": norm(16), "n2": norm(32), "n3": norm(100)}

    def forward(x, updates):
        h = tf.reshape(x, (-1, 28, 28, 1))
        for k, n in (("k1", "n1"), ("k2", "n2")):
            z = tf.nn.conv2d(h, p[k], 1, "SAME")
            h = pool2(tf.nn.relu(bn(z, p[n]["g"], p[n]["b"], [0, 1, 2], p[n]["moving"], 0.9, updates)))
        h = tf.reshape(h, (-1, 7 * 7 * 32)) @ p["w"]
        h = tf.nn.relu(bn(h, p["n3"]["g"], p["n3"]["b"], [0], p["n3"]["moving"], 0.9, updates))
        return h @ p["wo"] + p["bo"]

    trainable = [p[k] for k in ("k1", "k2", "w", "wo", "bo")] + [p[n][v] for n in ("n1", "n2", "n3") for v in ("g", "b")]
    return trainable, forward


def rnn_floor(rng):
    """Variables and the training-mode forward of configs/rnn.yaml's network: a BN-LSTM."""
    import numpy as np
    import tensorflow as tf

    units = 100
    limit = math.sqrt(6 / (28 + 4 * units))
    q, _ = np.linalg.qr(rng.normal(size=(4 * units, units)))
    p = {"wx": tf.Variable(rng.uniform(-limit, limit, (28, 4 * units)).astype("float32")),
         "wh": tf.Variable(q.T.astype("float32")),
         "b": tf.Variable(np.r_[np.ones(units), np.zeros(3 * units)].astype("float32")),
         "w": he(rng, (units, 100), units), "wo": he(rng, (100, 10), 100), "bo": tf.Variable(tf.zeros(10))}
    for name, width, beta in (("x", 4 * units, False), ("h", 4 * units, False), ("c", units, True)):
        p[f"g{name}"] = tf.Variable(tf.fill((width,), 0.1))
        p[f"b{name}"] = tf.Variable(tf.zeros(width)) if beta else None
        p[f"m{name}"] = (tf.Variable(tf.zeros((STEPS, width)), trainable=False), tf.Variable(tf.ones((STEPS, width)), trainable=False))
    p["gd"], p["bd"] = tf.Variable(tf.ones(100)), tf.Variable(tf.zeros(100))
    p["md"] = (tf.Variable(tf.zeros(100), trainable=False), tf.Variable(tf.ones(100), trainable=False))

    def forward(x, updates):
        seq = tf.reshape(x, (-1, STEPS, 28))
        found = []
        wx = bn(seq @ p["wx"], p["gx"], None, [0], p["mx"], 0.9, updates) + p["b"]
        inputs = tf.TensorArray(tf.float32, size=STEPS).unstack(tf.transpose(wx, (1, 0, 2)))
        wh, gh, gc, bc = (tf.identity(p[k]) for k in ("wh", "gh", "gc", "bc"))  # read once, outside the loop

        def cell(t, h, c, *stats):
            found = []
            gates = bn(h @ wh, gh, None, [0], None, None, found) + inputs.read(t)
            f, i, o, g = tf.split(gates, 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
            h = tf.sigmoid(o) * tf.tanh(bn(c, gc, bc, [0], None, None, found))
            values = (found[0][1], found[0][2], found[1][1], found[1][2])
            return (t + 1, h, c, *[ta.write(t, v) for ta, v in zip(stats, values)])

        zeros = tf.zeros((tf.shape(x)[0], units))
        stats = [tf.TensorArray(tf.float32, size=STEPS) for _ in range(4)]
        _, h, _, *stats = tf.while_loop(lambda t, *_: t < STEPS, cell, (0, zeros, zeros, *stats), maximum_iterations=STEPS)
        mean_h, var_h, mean_c, var_c = (ta.stack() for ta in stats)
        updates += [(p["mh"], mean_h, var_h, 0.9), (p["mc"], mean_c, var_c, 0.9)]
        h = tf.nn.relu(bn(h @ p["w"], p["gd"], p["bd"], [0], p["md"], 0.9, updates))
        return h @ p["wo"] + p["bo"]

    trainable = [p[k] for k in ("wx", "wh", "b", "w", "wo", "bo", "gx", "gh", "gc", "bc", "gd", "bd")]
    return trainable, forward


def run_floor(kind: str, epochs: int) -> dict:
    import numpy as np
    import tensorflow as tf

    x_train, y_train, x_test, y_test = sample()
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    X, Y = tf.constant(x_train), tf.constant(y_train)
    trainable, forward = (cnn_floor if kind == "cnn" else rnn_floor)(rng)
    steps_per_epoch = len(x_train) // BATCH
    total = epochs * steps_per_epoch
    slots = [tf.Variable(tf.zeros_like(v)) for v in trainable] + [tf.Variable(tf.zeros_like(v)) for v in trainable]
    t = tf.Variable(0.0)

    def step(idx):
        xb = tf.cast(tf.gather(X, idx), tf.float32) / 255.0
        updates = []
        with tf.GradientTape() as tape:
            logits = forward(xb, updates)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.gather(Y, idx), logits))
        grads = tape.gradient(loss, trainable)
        if kind == "cnn":  # momentum SGD as Keras' SGD(momentum=0.9) writes it
            for v, g, m in zip(trainable, grads, slots):
                m.assign(0.9 * m - 0.05 * g)
                v.assign_add(m)
        else:  # Adam (Keras' defaults) with the cosine schedule
            t.assign_add(1.0)
            lr = 0.003 * 0.5 * (1 + tf.cos(math.pi * tf.minimum(t - 1, total) / total))
            n = len(trainable)
            alpha = lr * tf.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
            for v, g, m, s in zip(trainable, grads, slots[:n], slots[n:]):
                m.assign_add((g - m) * 0.1)
                s.assign_add((tf.square(g) - s) * 0.001)
                v.assign_sub(alpha * m / (tf.sqrt(s) + 1e-7))
        for (mean_var, mean, var, momentum) in updates:
            if mean_var is not None:
                mean_var[0].assign(momentum * mean_var[0] + (1 - momentum) * mean)
                mean_var[1].assign(momentum * mean_var[1] + (1 - momentum) * var)

    @tf.function(jit_compile=True)
    def chunk(ic):
        for k in range(UNROLL):
            step(ic[k])

    @tf.function(input_signature=[tf.TensorSpec((None, UNROLL, BATCH), tf.int32)])
    def epoch(I):
        for i in tf.range(tf.shape(I)[0]):
            chunk(I[i])

    variables = trainable + slots + [t]
    initial = [v.numpy() for v in variables]
    tc = time.perf_counter()
    chunk(tf.zeros((UNROLL, BATCH), tf.int32))
    epoch(tf.zeros((0, UNROLL, BATCH), tf.int32))
    compile_seconds = time.perf_counter() - tc
    for v, value in zip(variables, initial):
        v.assign(value)
    calls = steps_per_epoch // UNROLL
    times = []
    for e in range(epochs):
        order = np.random.default_rng([0, e]).permutation(len(x_train))[: calls * UNROLL * BATCH]
        te = time.perf_counter()
        epoch(tf.constant(order.astype(np.int32).reshape(calls, UNROLL, BATCH)))
        float(trainable[0].numpy().ravel()[0])
        times.append(time.perf_counter() - te)
    wall = time.perf_counter() - t0
    logits = forward(tf.cast(tf.constant(x_test), tf.float32) / 255.0, [])  # batch statistics, after the clock
    accuracy = float(np.mean(np.argmax(logits.numpy(), axis=1) == y_test))
    return {"seconds_per_epoch": after_first(times), "epoch_seconds": times, "wall_seconds": wall,
            "compile_seconds": compile_seconds, "test_accuracy": accuracy, "peak_rss_mb": peak_rss_mb()}


# --------------------------------------------------------------------------- Keras


def keras_bnlstm(units: int = 100, momentum: float = 0.9, epsilon: float = EPS, gamma: float = 0.1):
    """configs/rnn.yaml's BN-LSTM in Keras' own layers: the 28 steps unrolled in a functional
    model, W_x, W_h and b shared across steps, a keras.layers.BatchNormalization per step
    for each of the input term, the hidden term and the cell (statistics per time step)."""
    import keras
    from keras import ops

    class Bias(keras.layers.Layer):
        """b of the gates (f, i, o, g): the forget gate's from 1, the others from 0 (as bnexp's)."""

        def build(self, input_shape):
            self.bias = self.add_weight(shape=(input_shape[-1],), name="bias", initializer=lambda shape, dtype=None:
                                        ops.cast(ops.concatenate([ops.ones((units,)), ops.zeros((shape[0] - units,))]), dtype))

        def call(self, x):
            return x + self.bias

    def norm(name, center):
        return keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, center=center,
                                               gamma_initializer=keras.initializers.Constant(gamma), name=name)

    x = keras.Input((784,))
    seq = keras.layers.Reshape((STEPS, 28))(x)
    w_x = keras.layers.Dense(4 * units, use_bias=False, kernel_initializer="glorot_uniform", name="w_x")
    w_h = keras.layers.Dense(4 * units, use_bias=False, kernel_initializer="orthogonal", name="w_h")
    bias = Bias(name="b")
    wx = w_x(seq)  # (batch, 28, 4·units): every step's input term in one matmul
    h = c = ops.zeros_like(wx[:, 0, :units])  # h_0 = c_0 = 0
    for t in range(STEPS):
        gates = bias(norm(f"bn_x_{t}", False)(wx[:, t]) + norm(f"bn_h_{t}", False)(w_h(h)))
        f, i, o, g = ops.split(gates, 4, axis=-1)
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(norm(f"bn_c_{t}", True)(c))
    h = keras.layers.Dense(100, use_bias=False, kernel_initializer="he_normal")(h)
    h = keras.layers.Activation("relu")(keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon)(h))
    return keras.Model(x, keras.layers.Dense(10, kernel_initializer="he_normal")(h))


def keras_network(kind: str):
    import keras

    if kind == "bnlstm":
        return keras_bnlstm()
    layers = [keras.Input((784,))]
    if kind == "cnn":
        layers.append(keras.layers.Reshape((28, 28, 1)))
        for filters in (16, 32):
            layers += [keras.layers.Conv2D(filters, 5, padding="same", use_bias=False, kernel_initializer="he_normal"),
                       keras.layers.BatchNormalization(momentum=0.9), keras.layers.Activation("relu"), keras.layers.MaxPooling2D(2)]
        layers.append(keras.layers.Flatten())
    else:
        layers += [keras.layers.Reshape((STEPS, 28)), keras.layers.LSTM(100)]
    layers += [keras.layers.Dense(100, use_bias=False, kernel_initializer="he_normal"), keras.layers.BatchNormalization(momentum=0.9),
               keras.layers.Activation("relu"), keras.layers.Dense(10, kernel_initializer="he_normal")]
    return keras.Sequential(layers)


def run_keras(kind: str, epochs: int) -> dict:
    import keras

    x_train, y_train, x_test, y_test = sample()
    keras.utils.set_random_seed(0)
    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    t0 = time.perf_counter()
    model = keras_network(kind)
    steps = epochs * (len(x_train) // BATCH)
    optimizer = (keras.optimizers.SGD(0.05, momentum=0.9) if kind == "cnn"
                 else keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(0.003, steps)))
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  jit_compile=True, steps_per_execution=100)
    history = model.fit(x_train.astype("float32") / 255, y_train, batch_size=BATCH, epochs=epochs,
                        validation_data=(x_test.astype("float32") / 255, y_test), callbacks=[EpochTimer()], verbose=0)
    return {"seconds_per_epoch": after_first(times), "epoch_seconds": times, "wall_seconds": time.perf_counter() - t0,
            "compile_seconds": times[0] - after_first(times), "test_accuracy": float(history.history["val_accuracy"][-1]),
            "peak_rss_mb": peak_rss_mb()}


# --------------------------------------------------------------------------- bnexp


def run_bnexp(kind: str, epochs: int) -> dict:
    import resource

    with tempfile.TemporaryDirectory(prefix="bnexp-bench-") as tmp:
        run_dir = os.path.join(tmp, "run")
        command = [sys.executable, "-m", "bnexp", "train", f"configs/{kind}.yaml", "--run-dir", run_dir, "--quiet",
                   "--set", f"train.epochs={epochs}", "--set", "train.eval_train_examples=0"]
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"bnexp train exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        summary = json.loads(Path(run_dir, "summary.json").read_text())
    times = summary["epoch_seconds"]
    return {"seconds_per_epoch": after_first(times), "epoch_seconds": times, "wall_seconds": summary["wall_seconds"],
            "compile_seconds": times[0] - after_first(times), "test_accuracy": summary.get("test_accuracy"),
            "peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN)}


ARMS = {f"{arm}_{kind}": (lambda run, kind: lambda data_dir, epochs: run(kind, epochs))(run, kind)
        for kind in ("cnn", "rnn", "bnlstm") for arm, run in (("floor", run_floor), ("keras", run_keras), ("bnexp", run_bnexp))
        if kind != "bnlstm" or arm == "keras"}
# The rnn's Keras target is against keras_bnlstm, the same network; keras_rnn (plain LSTM) has none.
TARGETS = [target for kind, keras_arm in (("cnn", "keras_cnn"), ("rnn", "keras_bnlstm")) for target in (
    (f"bnexp_{kind} / floor_{kind}  s/epoch", f"bnexp_{kind}", f"floor_{kind}", "seconds_per_epoch", 1.2),
    (f"bnexp_{kind} / {keras_arm}  s/epoch", f"bnexp_{kind}", keras_arm, "seconds_per_epoch", 1.0))]
