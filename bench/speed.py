"""Speed benchmark for issues 5 and 15: `bnexp train` against Keras and hand-written floors.

Run from the repository root:

    PYTHONPATH=. .venv/bin/python bench/speed.py                  # all arms, 3 reps
    PYTHONPATH=. .venv/bin/python bench/speed.py --arms floor_graph,bnexp --reps 1
    PYTHONPATH=. .venv/bin/python bench/speed.py --json bench/out/speed.json
    PYTHONPATH=. .venv/bin/python bench/speed.py --sweeps small   # also the sweep bench (bench/sweep_speed.py)

The workload is the paper's MLP: 784-100-100-100-10, each hidden layer
Dense (no bias) -> BatchNorm -> sigmoid, softmax output, mini-batches of 60, plain
SGD (lr 0.5), full MNIST (60,000 train / 10,000 test, from ../shared/data/mnist or
--data-dir), test evaluation once per epoch, 4 epochs (--epochs).

Arms, each in its own fresh Python process (the script re-invokes itself with
`--arm NAME --json-out FILE`), so no TensorFlow state or compile cache leaks between
them:

  keras_default  model.fit with Keras' defaults (no jit_compile), x float32 / 255
  keras_tuned    the same with jit_compile=True, steps_per_execution=100
  floor          the weak floor: one XLA-compiled tf.function running 20 unrolled SGD
                 steps per call, called from a Python loop; hand-written BN, uint8 data
                 gathered and normalised in-graph; no logging, evaluation or checkpoints
  floor_graph    the graph-looped floor (issue 15): the same step, 4 unrolled steps per
                 XLA call, and a graph while-loop over all of an epoch's calls, so Python
                 wakes once per epoch; still no evaluation, logging or checkpoints
  bnexp          `python -m bnexp train bench/paper_mlp.yaml ...` as a subprocess, with
                 evaluation, metrics, TensorBoard and checkpoints on, plus those of
                 BNEXP_OVERRIDES its config accepts; timings from the run's summary.json;
                 skipped with a message while bnexp.cli cannot be imported

The conv and recurrent networks' arms (floor_cnn, keras_cnn, bnexp_cnn and the same for
rnn) live in bench/nets_speed.py and run only when --arms names them.

Each arm reports seconds_per_epoch as the median of the epochs after the first, which
compiles (the floors compile on a throwaway call before their first epoch, so theirs is
steady anyway), every epoch's time, wall_seconds (the whole N-epoch run from after the
data is loaded: model build, compile, training, evaluation; not the Python/TensorFlow
import), compile_seconds where measurable, the final test accuracy (a sanity check: every
arm should exceed 0.9) and peak RSS.

Protocol: --reps repetitions (3 by default), arms alternating (A B C D, A B C D, ...)
because this 2-core machine's speed drifts by +-30% over minutes; only ratios taken
within one run mean anything. The script prints per-arm medians over the reps, the
issues' targets as ratios of those medians with PASS/FAIL, and the start-up time of
`bnexp --help` and `python -m bnexp --help` (median of 5 runs, target < 1 s).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"
BNEXP_CONFIG = "bench/paper_mlp.yaml"
# --set overrides for the bnexp arm, each passed only if this bnexp's config knows its key.
# The floors evaluate nothing on the training set, so neither does bnexp here (issue 15).
BNEXP_OVERRIDES = ["train.eval_train_examples=0"]

HIDDEN = (100, 100, 100)
CLASSES = 10
BATCH = 60
LR = 0.5
BN_MOMENTUM = 0.99  # Keras' defaults, so the floor does the same work as keras_*
BN_EPSILON = 1e-3
FLOOR_UNROLL = 20  # SGD steps per compiled call in the weak floor
GRAPH_UNROLL = 4  # ... in the graph-looped floor: bnexp's train.unroll default
STARTUP_RUNS = 5

# (name, numerator arm, denominator arm, metric, target: ratio must be <= this)
TARGETS = [
    ("bnexp / floor_graph  s/epoch", "bnexp", "floor_graph", "seconds_per_epoch", 1.1),
    ("bnexp / floor  s/epoch", "bnexp", "floor", "seconds_per_epoch", 1.1),
    ("bnexp / keras_tuned  s/epoch", "bnexp", "keras_tuned", "seconds_per_epoch", 0.8),
    ("bnexp / keras_default  s/epoch", "bnexp", "keras_default", "seconds_per_epoch", 0.25),
    ("bnexp / keras_tuned  run wall", "bnexp", "keras_tuned", "wall_seconds", 1.0),
]


class Skip(Exception):
    """An arm that cannot run here yet; its message says why."""


# --------------------------------------------------------------------------- arms
# Each arm runs inside its own child process and returns a result dict.


def load_mnist(data_dir: str):
    from bnexp.data import load

    d = load("mnist", data_dir)
    return d.x_train, d.y_train, d.x_test, d.y_test


def after_first(epoch_times: list[float]) -> float:
    """Every arm's s/epoch: the median of the epochs after the first, which compiles."""
    return statistics.median(epoch_times[1:] or epoch_times)


def peak_rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def keras_model():
    import keras

    inputs = keras.Input((784,))
    h = inputs
    for width in HIDDEN:
        h = keras.layers.Dense(width, use_bias=False)(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Activation("sigmoid")(h)
    logits = keras.layers.Dense(CLASSES)(h)
    return keras.Model(inputs, logits)


def run_keras(data_dir: str, epochs: int, **compile_kwargs) -> dict:
    """model.fit as a user writes it; compile_kwargs are the only difference between arms."""
    import keras

    x_train, y_train, x_test, y_test = load_mnist(data_dir)
    keras.utils.set_random_seed(0)

    class EpochTimer(keras.callbacks.Callback):
        # on_epoch_end fires after the epoch's validation, so that is included.
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.start)

    epoch_times: list[float] = []
    t0 = time.perf_counter()
    x = x_train.reshape(-1, 784).astype("float32") / 255
    xt = x_test.reshape(-1, 784).astype("float32") / 255
    model = keras_model()
    model.compile(
        optimizer=keras.optimizers.SGD(LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        **compile_kwargs,
    )
    history = model.fit(
        x, y_train, batch_size=BATCH, epochs=epochs, validation_data=(xt, y_test),
        callbacks=[EpochTimer()], verbose=0,
    )
    wall = time.perf_counter() - t0
    return {
        "seconds_per_epoch": after_first(epoch_times),
        "epoch_seconds": epoch_times,
        "wall_seconds": wall,
        # Estimated: the first epoch's excess over a steady one is tracing + compiling.
        "compile_seconds": epoch_times[0] - after_first(epoch_times),
        "test_accuracy": float(history.history["val_accuracy"][-1]),
        "peak_rss_mb": peak_rss_mb(),
    }


def arm_keras_default(data_dir: str, epochs: int) -> dict:
    return run_keras(data_dir, epochs)


def arm_keras_tuned(data_dir: str, epochs: int) -> dict:
    return run_keras(data_dir, epochs, jit_compile=True, steps_per_execution=100)


def floor_variables(rng):
    """Glorot-uniform weights (as Keras' Dense), BN gamma=1, beta=0, moving mean 0, var 1."""
    import numpy as np
    import tensorflow as tf

    def glorot(n_in, n_out):
        limit = np.sqrt(6 / (n_in + n_out))
        return tf.Variable(rng.uniform(-limit, limit, (n_in, n_out)).astype("float32"))

    layers, n_in = [], 784
    for width in HIDDEN:
        layers.append({
            "w": glorot(n_in, width),
            "gamma": tf.Variable(tf.ones(width)), "beta": tf.Variable(tf.zeros(width)),
            "mean": tf.Variable(tf.zeros(width)), "var": tf.Variable(tf.ones(width)),
        })
        n_in = width
    head = {"w": glorot(n_in, CLASSES), "b": tf.Variable(tf.zeros(CLASSES))}
    return layers, head


def floor_forward(layers, head, x, training: bool):
    """The MLP; in training mode BN uses batch statistics and updates the moving ones."""
    import tensorflow as tf

    h = x
    for layer in layers:
        z = h @ layer["w"]
        if training:
            mean, var = tf.nn.moments(z, axes=[0])
            layer["mean"].assign(BN_MOMENTUM * layer["mean"] + (1 - BN_MOMENTUM) * mean)
            layer["var"].assign(BN_MOMENTUM * layer["var"] + (1 - BN_MOMENTUM) * var)
        else:
            mean, var = layer["mean"], layer["var"]
        z = (z - mean) * tf.math.rsqrt(var + BN_EPSILON) * layer["gamma"] + layer["beta"]
        h = tf.sigmoid(z)
    return h @ head["w"] + head["b"]


def floor_step_fn(layers, head, x_all, y_all, unroll: int):
    """One XLA-compiled call = `unroll` SGD steps; idx is int32 (unroll, BATCH)."""
    import tensorflow as tf

    trainable = [v for l in layers for v in (l["w"], l["gamma"], l["beta"])] + [head["w"], head["b"]]

    @tf.function(jit_compile=True)
    def chunk(idx):
        for i in range(unroll):  # a Python loop: unrolled at trace time
            x = tf.cast(tf.gather(x_all, idx[i]), tf.float32) / 255.0
            y = tf.cast(tf.gather(y_all, idx[i]), tf.int32)
            with tf.GradientTape() as tape:
                logits = floor_forward(layers, head, x, training=True)
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            for v, g in zip(trainable, tape.gradient(loss, trainable)):
                v.assign_sub(LR * g)

    return chunk


def graph_epoch_fn(chunk, unroll: int):
    """A whole epoch as one graph: a while-loop over the calls, so Python wakes once per epoch."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, unroll, BATCH), tf.int32)])
    def epoch(idx):  # (calls, unroll, BATCH)
        for i in tf.range(tf.shape(idx)[0]):  # AutoGraph makes this a tf.while_loop
            chunk(idx[i])

    return epoch


def run_floor(data_dir: str, epochs: int, unroll: int, graph_loop: bool) -> dict:
    """A hand-written floor: `unroll` steps per XLA call, run from a Python loop or a graph loop."""
    import numpy as np
    import tensorflow as tf

    x_train, y_train, x_test, y_test = load_mnist(data_dir)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    x_all = tf.constant(x_train.reshape(-1, 784))  # uint8, normalised in-graph
    y_all = tf.constant(y_train)
    layers, head = floor_variables(rng)
    chunk = floor_step_fn(layers, head, x_all, y_all, unroll)
    calls = len(x_train) // (BATCH * unroll)
    if graph_loop:
        run_epoch = graph_epoch_fn(chunk, unroll)
    else:
        def run_epoch(perm):
            for idx in perm:
                chunk(idx)

    # Compile on a throwaway call (and trace the graph loop on an empty epoch), then
    # restore the initial weights, so training matches a run without it.
    variables = [v for l in layers for v in l.values()] + list(head.values())
    initial = [v.numpy() for v in variables]
    tc = time.perf_counter()
    chunk(tf.zeros((unroll, BATCH), tf.int32))
    if graph_loop:
        run_epoch(tf.zeros((0, unroll, BATCH), tf.int32))
    compile_seconds = time.perf_counter() - tc
    for v, value in zip(variables, initial):
        v.assign(value)

    epoch_times, epoch_cpu = [], []
    for _ in range(epochs):
        te, ce = time.perf_counter(), time.process_time()
        perm = rng.permutation(len(x_train))[: calls * unroll * BATCH]
        run_epoch(perm.astype("int32").reshape(calls, unroll, BATCH))
        layers[0]["w"].numpy()  # wait for the last call before stopping the clock
        epoch_times.append(time.perf_counter() - te)
        epoch_cpu.append(time.process_time() - ce)
    wall = time.perf_counter() - t0

    # The floor has no evaluation; this check runs after the clock stops.
    xt = tf.constant(x_test.reshape(-1, 784).astype("float32") / 255)
    predictions = tf.argmax(floor_forward(layers, head, xt, training=False), axis=1).numpy()
    return {
        "seconds_per_epoch": after_first(epoch_times),
        "epoch_seconds": epoch_times,
        # CPU seconds of this process (all threads) per epoch: less swayed by other load.
        "cpu_seconds_per_epoch": after_first(epoch_cpu),
        "wall_seconds": wall,
        "compile_seconds": compile_seconds,  # first call: XLA compile + `unroll` steps
        "test_accuracy": float(np.mean(predictions == y_test)),
        "peak_rss_mb": peak_rss_mb(),
    }


def arm_floor(data_dir: str, epochs: int) -> dict:
    return run_floor(data_dir, epochs, FLOOR_UNROLL, graph_loop=False)


def arm_floor_graph(data_dir: str, epochs: int) -> dict:
    return run_floor(data_dir, epochs, GRAPH_UNROLL, graph_loop=True)


def bnexp_overrides() -> tuple[list[str], list[str]]:
    """The BNEXP_OVERRIDES this bnexp's config accepts, and those it does not know yet.

    An unknown key is skipped, not an error, so the bench runs on the bnexp of any commit;
    the skipped ones are reported with the result.
    """
    from bnexp import config
    from bnexp.errors import ConfigError

    accepted, skipped = [], []
    for assignment in BNEXP_OVERRIDES:
        try:
            config.load_config(REPO / BNEXP_CONFIG, [assignment])
            accepted.append(assignment)
        except ConfigError:
            skipped.append(assignment)
    return accepted, skipped


def bnexp_command(data_dir: str, run_dir: str, epochs: int, overrides: list[str]) -> list[str]:
    sets = [f"train.epochs={epochs}", *overrides]
    return [
        sys.executable, "-m", "bnexp", "train", BNEXP_CONFIG,
        "--data-dir", data_dir, "--run-dir", run_dir, "--quiet",
        *[arg for assignment in sets for arg in ("--set", assignment)],
    ]


def arm_bnexp(data_dir: str, epochs: int) -> dict:
    """`bnexp train` in a subprocess; its own summary.json gives the timings.

    Peak RSS is the subprocess's: RUSAGE_CHILDREN covers only children this
    process has waited for, and this arm process starts no other.
    """
    try:
        import bnexp.cli  # noqa: F401  (must not import TensorFlow)
    except Exception as exc:  # a module still being written may fail in any way
        raise Skip(f"bnexp.cli cannot be imported yet ({type(exc).__name__}: {exc})")
    if not (REPO / BNEXP_CONFIG).is_file():
        raise Skip(f"{BNEXP_CONFIG} does not exist yet")
    overrides, skipped = bnexp_overrides()

    with tempfile.TemporaryDirectory(prefix="bnexp-bench-") as tmp:
        run_dir = os.path.join(tmp, "run")
        t0 = time.perf_counter()
        proc = subprocess.run(bnexp_command(data_dir, run_dir, epochs, overrides), cwd=REPO,
                              capture_output=True, text=True)
        process_seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"bnexp train exited {proc.returncode}:\n{proc.stderr[-3000:]}")
        summary = json.loads(Path(run_dir, "summary.json").read_text())
    return {
        "seconds_per_epoch": after_first(summary["epoch_seconds"]),
        "summary_seconds_per_epoch": summary["seconds_per_epoch"],  # bnexp's own: median of all epochs
        "epoch_seconds": summary["epoch_seconds"],
        "wall_seconds": summary["wall_seconds"],
        # Estimated as for Keras: the first epoch's excess over a steady one.
        "compile_seconds": summary["epoch_seconds"][0] - after_first(summary["epoch_seconds"]),
        "test_accuracy": summary.get("test_accuracy"),
        "peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
        "process_seconds": process_seconds,  # includes Python and TensorFlow import
        "overrides": overrides,
        "overrides_skipped": skipped,
    }


# The hook: arm name -> function(data_dir, epochs) returning a result dict.
ARMS = {
    "keras_default": arm_keras_default,
    "keras_tuned": arm_keras_tuned,
    "floor": arm_floor,
    "floor_graph": arm_floor_graph,
    "bnexp": arm_bnexp,
}
MLP_ARMS = list(ARMS)  # the default --arms; the conv and recurrent arms (bench/nets_speed.py) are asked for by name
sys.path.insert(0, str(Path(__file__).resolve().parent))
import nets_speed  # noqa: E402

ARMS.update(nets_speed.ARMS)
TARGETS += nets_speed.TARGETS


def run_arm_here(name: str, data_dir: str, epochs: int, json_out: str) -> None:
    """Child-process entry: run one arm and write its result (or why it skipped)."""
    try:
        result = {"arm": name, **ARMS[name](data_dir, epochs)}
    except Skip as exc:
        result = {"arm": name, "skipped": str(exc)}
    Path(json_out).write_text(json.dumps(result, indent=2))


# ---------------------------------------------------------------------- driver


def child_env() -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_arm_subprocess(name: str, data_dir: str, epochs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-arm-") as tmp:
        out = Path(tmp, "result.json")
        cmd = [sys.executable, __file__, "--arm", name, "--json-out", str(out),
               "--data-dir", data_dir, "--epochs", str(epochs)]
        proc = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            return {"arm": name, "error": f"exit {proc.returncode}: {proc.stderr[-2000:]}"}
        return json.loads(out.read_text())


def time_startup(cmd: list[str]) -> dict:
    """Median wall time of STARTUP_RUNS runs of `cmd`, or why it could not run."""
    times = []
    for _ in range(STARTUP_RUNS):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=child_env(), capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            last_line = (proc.stderr.strip().splitlines() or [""])[-1]
            return {"skipped": f"exit {proc.returncode}: {last_line}"}
    return {"median_seconds": statistics.median(times), "runs": times}


def startup_benchmarks() -> dict:
    results = {}
    script = Path(sys.executable).parent / "bnexp"
    if script.exists() or shutil.which("bnexp"):
        results["bnexp --help"] = time_startup([str(script if script.exists() else "bnexp"), "--help"])
    else:
        results["bnexp --help"] = {"skipped": "no `bnexp` console script (pip install -e . first)"}
    results["python -m bnexp --help"] = time_startup([sys.executable, "-m", "bnexp", "--help"])
    return results


def median_of(results: list[dict], arm: str, key: str) -> float | None:
    values = [r[key] for r in results if r["arm"] == arm and r.get(key) is not None]
    return statistics.median(values) if values else None


def summarise(results: list[dict], arms: list[str]) -> dict:
    per_arm = {}
    for arm in arms:
        ok = [r for r in results if r["arm"] == arm and "seconds_per_epoch" in r]
        if ok:
            per_arm[arm] = {
                key: median_of(ok, arm, key)
                for key in ("seconds_per_epoch", "wall_seconds", "compile_seconds")
            } | {
                "min_test_accuracy": min(r["test_accuracy"] or 0 for r in ok),
                "max_peak_rss_mb": max(r["peak_rss_mb"] for r in ok),
                "reps": len(ok),
            }
    ratios = []
    for label, num, den, key, target in TARGETS:
        if num in per_arm and den in per_arm:
            ratio = per_arm[num][key] / per_arm[den][key]
            ratios.append({"target": label, "ratio": ratio, "limit": target, "pass": ratio <= target})
    return {"arms": per_arm, "ratios": ratios}


def fmt(value, spec=".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(summary: dict, startup: dict, epochs: int, notes: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(100, Console().width))
    arms = Table(title=f"Speed, median over reps ({epochs} epochs)")
    for col in ("arm", "s/epoch", f"{epochs}-epoch wall s", "compile s", "min test acc",
                "peak RSS MB", "reps"):
        arms.add_column(col, justify="left" if col == "arm" else "right")
    for arm, s in summary["arms"].items():
        acc = fmt(s["min_test_accuracy"], ".4f")
        if s["min_test_accuracy"] < 0.9:
            acc = f"[red]{acc} (<0.9!)[/red]"
        arms.add_row(arm, fmt(s["seconds_per_epoch"]), fmt(s["wall_seconds"]),
                     fmt(s["compile_seconds"]), acc, fmt(s["max_peak_rss_mb"], ".0f"), str(s["reps"]))
    console.print(arms)

    ratios = Table(title="Targets of issues 5 and 15 (ratio of medians)")
    for col in ("target", "ratio", "limit", "result"):
        ratios.add_column(col, justify="left" if col == "target" else "right")
    for r in summary["ratios"]:
        verdict = "[green]PASS[/green]" if r["pass"] else "[red]FAIL[/red]"
        ratios.add_row(r["target"], fmt(r["ratio"]), f"<= {r['limit']}", verdict)
    for label, seconds in startup.items():
        if "median_seconds" in seconds:
            ok = seconds["median_seconds"] < 1.0
            ratios.add_row(f"start-up: {label}", f"{seconds['median_seconds']:.2f} s", "< 1 s",
                           "[green]PASS[/green]" if ok else "[red]FAIL[/red]")
    if ratios.row_count:
        console.print(ratios)
    for note in notes + [f"start-up {k}: skipped, {v['skipped']}" for k, v in startup.items()
                         if "skipped" in v]:
        console.print(f"[yellow]note:[/yellow] {note}")


def run_sweeps(names: str, reps: int) -> list[dict]:
    """bench/sweep_speed.py's sweeps named in `names` (comma-separated; "" for none)."""
    import sweep_speed

    results = [sweep_speed.bench_sweep(name, reps, ["baseline", "sweep"])
               for name in filter(None, names.split(","))]
    sweep_speed.print_results(results)
    return results


def machine_info() -> dict:
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def run_benchmark(args) -> None:
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = set(arms) - set(ARMS)
    if unknown:
        sys.exit(f"unknown arm(s): {', '.join(sorted(unknown))}; known: {', '.join(ARMS)}")
    results, notes, active = [], [], list(arms)
    for rep in range(args.reps):
        for arm in list(active):
            print(f"rep {rep + 1}/{args.reps}  {arm} ...", end=" ", flush=True)
            r = run_arm_subprocess(arm, str(args.data_dir), args.epochs) | {"rep": rep}
            if "skipped" in r:
                print("skipped")
                notes.append(f"{arm} skipped: {r['skipped']}")
                active.remove(arm)  # it will not become available mid-run
                continue
            if "error" in r:
                print("FAILED")
                notes.append(f"{arm} rep {rep + 1} failed: {r['error']}")
            else:
                print(f"{r['seconds_per_epoch']:.2f} s/epoch, wall {r['wall_seconds']:.1f} s, "
                      f"acc {fmt(r['test_accuracy'], '.4f')}")
                for skipped in r.get("overrides_skipped", []):
                    note = f"bnexp ran without --set {skipped}: this bnexp's config does not know the key"
                    notes += [] if note in notes else [note]
            results.append(r)
    startup = startup_benchmarks() if not args.no_startup else {}
    summary = summarise(results, arms)
    print_report(summary, startup, args.epochs, notes)
    sweeps = run_sweeps(args.sweeps, args.sweep_reps)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(
            {"machine": machine_info(), "epochs": args.epochs, "reps": args.reps,
             "results": results, "startup": startup, "summary": summary, "notes": notes,
             "sweeps": sweeps},
            indent=2))
        print(f"raw results written to {args.json}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arms", default=",".join(MLP_ARMS), help="comma-separated, from: " + ", ".join(ARMS))
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--json", help="write all raw results to this file")
    p.add_argument("--no-startup", action="store_true", help="skip the start-up timings")
    p.add_argument("--sweeps", default="", help="also the sweep bench (bench/sweep_speed.py): small, large or small,large")
    p.add_argument("--sweep-reps", type=int, default=3, help="alternating repetitions of each sweep bench")
    p.add_argument("--arm", choices=list(ARMS), help=argparse.SUPPRESS)  # child mode
    p.add_argument("--json-out", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.data_dir = args.data_dir.resolve()
    if args.arm:
        run_arm_here(args.arm, str(args.data_dir), args.epochs, args.json_out)
    else:
        run_benchmark(args)


if __name__ == "__main__":
    main()
