"""The experiment config: schema, YAML loading, --set overrides and one-line errors.

No TensorFlow here, so `bnexp --help` and config errors answer at once. Every limit
is checked before anything is allocated: a typo costs a second, not a failed hour.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from bnexp.errors import ConfigError

MAX_WIDTH = 16384
MAX_PARAMETERS = 100_000_000  # about 400 MB of float32 weights, plus optimizer state
MAX_YAML_BYTES = 1 << 20  # a config or sweep file; bnexp's own are a few kB
# YAML nodes a document may expand to, its aliases counted at every use: an alias bomb
# (a 546-byte file that expands to 10^9 values) is refused before it is built.
MAX_YAML_NODES = 100_000


class Schema(BaseModel):
    """Strict base: unknown keys are errors, and "60" is not a number."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Init(Schema):
    """Initial Dense weights. normal and uniform use `std`; glorot and he their own scales."""

    kind: Literal["normal", "uniform", "glorot", "he"] = "glorot"
    std: Annotated[float, Field(gt=0, le=10)] = 0.1


class Noise(Schema):
    """Santurkar et al. (2018)'s noisy BN (bnexp/stochastic.py, BatchNormNoise): after each
    normalisation layer, in training only; `scale` 0 is off."""

    scale: Annotated[float, Field(ge=0, le=100)] = 0.0


class Norm(Schema):
    """Which normalisation, where it sits, and its settings (bnexp/norm.py has the maths).

    kind: none; batch (ours, Ioffe & Szegedy 2015); keras (Keras' BatchNormalization, to
    cross-check ours); batch_renorm (Ioffe 2017); ghost_batch (Hoffer et al. 2017); layer
    (Ba et al. 2016); group (Wu & He 2018); instance (Ulyanov et al. 2016, conv nets only).
    With model.kind cnn each applies per feature map (bnexp/norm.py); with rnn only none,
    batch (Cooijmans et al. 2016) and layer (Ba et al. 2016) exist (bnexp/recurrent.py). `momentum` (Keras' convention: PyTorch's 0.1 is
    0.9 here) and `variance` apply to the kinds with moving statistics: batch, keras,
    batch_renorm and ghost_batch. Each setting below them applies to its own kind only.
    """

    kind: Literal["none", "batch", "keras", "batch_renorm", "ghost_batch", "layer", "group", "instance"] = "batch"
    placement: Literal["before_activation", "after_activation"] = "before_activation"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.99
    epsilon: Annotated[float, Field(gt=0, le=1)] = 1e-3
    center: bool = True
    scale: bool = True
    variance: Literal["biased", "unbiased"] = "biased"
    # batch_renorm: the final clip limits, reached by the paper's warm-up: r_max = 1, d_max = 0
    # for renorm_warmup_steps, then linear ramps; the defaults give r_max 3 at 40k steps, d_max 5 at 25k.
    r_max: Annotated[float, Field(ge=1, le=1e6)] = 3.0
    d_max: Annotated[float, Field(ge=0, le=1e6)] = 5.0
    renorm_warmup_steps: Annotated[int, Field(ge=0, le=100_000_000)] = 5000
    r_max_ramp_steps: Annotated[int, Field(ge=0, le=100_000_000)] = 35_000
    d_max_ramp_steps: Annotated[int, Field(ge=0, le=100_000_000)] = 20_000
    # batch_renorm: average sigma (Ioffe 2017, Algorithm 1) or the variance (what older bnexp did).
    moving_average: Literal["sigma", "variance"] = "sigma"
    # ghost_batch: examples per virtual batch, a divisor of train.batch_size.
    # Unset: resolved by Config to default_virtual_batch_size(train.batch_size).
    virtual_batch_size: Annotated[int, Field(ge=2, le=60_000)] | None = None
    # ghost_batch: one moving-average step per virtual batch (Hoffer et al., Algorithm 1) or per step (tf.keras 2).
    moving_update: Literal["per_virtual_batch", "per_step"] = "per_virtual_batch"
    # group: groups of consecutive units, a divisor of every hidden width.
    # Unset: resolved by Config to default_groups(model.hidden).
    groups: Annotated[int, Field(ge=1, le=MAX_WIDTH)] | None = None
    noise: Noise = Noise()


# What a run directory's recorded config means by a model.norm key it lacks, for the kind the key
# changes: an older bnexp wrote it, so the run used that version's behaviour, not today's default.
RECORDED_BEFORE = {"moving_average": ("batch_renorm", "variance"), "moving_update": ("ghost_batch", "per_step")}


def as_recorded(raw: dict) -> dict:
    """A run directory's raw config with the behaviour of the keys it lacks made explicit
    (RECORDED_BEFORE): a missing key means the behaviour the run was trained with."""
    model = raw.get("model")
    norm = model.get("norm") if isinstance(model, dict) else None
    if isinstance(norm, dict):
        for key, (kind, old) in RECORDED_BEFORE.items():
            if norm.get("kind") == kind:
                norm.setdefault(key, old)
    return raw


def default_virtual_batch_size(batch_size: int) -> int:
    """The largest divisor of `batch_size` from 2 to 32, so the ghost batches are small ones
    whatever the batch; the batch itself if none (a prime above 32), when ghost_batch is BatchNorm."""
    return max((v for v in range(2, min(32, batch_size) + 1) if batch_size % v == 0), default=batch_size)


def default_groups(widths: list[int]) -> int:
    """The largest of 32, 16, 8, 4, 2, 1 (Wu & He's default is 32) that divides every width
    and leaves at least two units per group; 1 if none does."""
    return next((g for g in (32, 16, 8, 4, 2) if all(w % g == 0 and w // g >= 2 for w in widths)), 1)


class Dropout(Schema):
    """Inverted dropout (bnexp/stochastic.py): `rate` after each hidden block (`layers: all`)
    or only the last (`last`, Li et al. 2019's remedy for dropout's variance shift before BN);
    `input_rate` on the pixels. 0 is off."""

    rate: Annotated[float, Field(ge=0, lt=1)] = 0.0
    layers: Literal["all", "last"] = "all"
    input_rate: Annotated[float, Field(ge=0, lt=1)] = 0.0


class ConvBlock(Schema):
    """One conv block of a `model.kind: cnn` network: a `kernel`×`kernel` convolution with
    `filters` output channels and `stride` ("same" padding), its norm and activation as a
    hidden layer has them, then a `pool`×`pool` max-pooling with stride `pool` (1: none)."""

    filters: Annotated[int, Field(ge=1, le=1024)]
    kernel: Annotated[int, Field(ge=1, le=28)] = 3
    stride: Annotated[int, Field(ge=1, le=28)] = 1
    pool: Annotated[int, Field(ge=1, le=28)] = 1


class Lstm(Schema):
    """The LSTM of a `model.kind: rnn` network (bnexp/recurrent.py). `gamma_init`: the initial γ
    of every normalisation in the cell (unset: 0.1 for batch, Cooijmans et al.; 1 for layer,
    Ba et al.); `t_max`: the time steps that keep statistics of their own (unset: all)."""

    units: Annotated[int, Field(ge=1, le=4096)] = 100
    gamma_init: Annotated[float, Field(gt=0, le=10)] | None = None
    t_max: Annotated[int, Field(ge=1, le=784)] | None = None


DEFAULT_CONV = [{"filters": 16, "kernel": 5, "pool": 2}, {"filters": 32, "kernel": 5, "pool": 2}]
# The keys of one kind only: absent (None) X
KIND_KEYS = {"conv": "cnn", "sequence": "rnn", "permute": "rnn", "lstm": "rnn"}


class Model(Schema):
    """The network: `kind` mlp (Dense blocks), cnn (conv blocks, then the Dense blocks of
    `hidden`) or rnn (an LSTM reading the image as a sequence, then the Dense blocks of
    `hidden`); docs/networks.md describes cnn and rnn."""

    kind: Literal["mlp", "cnn", "rnn"] = "mlp"
    conv: Annotated[list[ConvBlock], Field(min_length=1, max_length=8)] | None = None
    # rnn: 28 steps of a row of 28 pixels, or 784 steps of one pixel; `permute`: a fixed
    # permutation of the 784 pixels first (permuted MNIST).
    sequence: Literal["rows", "pixels"] | None = None
    permute: bool | None = None
    lstm: Lstm | None = None
    hidden: Annotated[list[Annotated[int, Field(ge=1, le=MAX_WIDTH)]], Field(min_length=1, max_length=32)] = [100, 100, 100]
    activation: Literal["relu", "sigmoid", "tanh", "elu", "selu", "gelu", "softplus", "silu", "linear"] = "relu"
    init: Init = Init()
    norm: Norm = Norm()
    dropout: Dropout = Dropout()

    @model_serializer(mode="wrap")
    def _without_other_kinds_keys(self, handler):
        """An mlp's recorded config has no cnn or rnn keys: it reads exactly as before they existed."""
        return {k: v for k, v in handler(self).items() if not (k in KIND_KEYS and v is None)}

    @model_validator(mode="after")
    def _kind_keys(self) -> "Model":
        """Refuse another kind's keys; fill in this kind's defaults, so the recorded config holds them."""
        for key, kind in KIND_KEYS.items():
            if getattr(self, key) is not None and self.kind != kind:
                raise ValueError(f"model.{key} applies to model.kind={kind} only, and this config has model.kind={self.kind}")
        if self.kind == "cnn" and self.conv is None:
            self.conv = [ConvBlock(**block) for block in DEFAULT_CONV]
        if self.kind == "rnn":
            self.sequence = self.sequence or "rows"
            self.permute = bool(self.permute)
            self.lstm = self.lstm or Lstm()
        return self

    @model_validator(mode="after")
    def _not_too_big(self) -> "Model":
        widths = [self.features(), *self.hidden, 10]
        params = sum(a * b + b for a, b in zip(widths, widths[1:]))
        if params > MAX_PARAMETERS:
            raise ValueError(f"model.hidden {self.hidden} has {params:,} weights; at most {MAX_PARAMETERS:,} allowed")
        return self

    def features(self) -> int:
        """How many values feed the first Dense layer: 784 pixels, the last conv block's
        flattened feature maps, or the LSTM's last hidden state."""
        if self.kind == "rnn":
            return self.lstm.units
        if self.kind == "cnn":
            side = 28
            for block in self.conv:
                side = -(-side // block.stride) // block.pool  # "same" padding, then floor-pooling
            return max(side, 0) ** 2 * self.conv[-1].filters
        return 784

    def conv_sides(self) -> list[int]:
        """The feature maps' side after each conv block (cnn)."""
        sides, side = [], 28
        for block in self.conv:
            side = -(-side // block.stride) // block.pool
            sides.append(side)
        return sides


class Schedule(Schema):
    """Learning-rate schedule: constant; step (×gamma every step_size steps); cosine to final_fraction·lr."""

    kind: Literal["constant", "step", "cosine"] = "constant"
    step_size: Annotated[int, Field(ge=1, le=100_000_000)] = 10_000
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1
    final_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0


class Train(Schema):
    optimizer: Literal["sgd", "momentum", "adam"] = "sgd"
    learning_rate: Annotated[float, Field(gt=0, le=100)] = 0.1
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    schedule: Schedule = Schedule()
    batch_size: Annotated[int, Field(ge=1, le=60_000)] = 60
    epochs: Annotated[int, Field(ge=1, le=100_000)] | None = None
    steps: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    eval_every: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    checkpoint_every: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    unroll: Annotated[int, Field(ge=1, le=50)] = 4
    # Training examples evaluated in inference mode at every evaluation (0: none), for the
    # train-test gap; a fixed subset, the same for every run of a dataset (train.train_subset).
    eval_train_examples: Annotated[int, Field(ge=0, le=60_000)] = 10_000
    # A training batch loss above this stops the run as diverged (docs/reference.md: "Divergence").
    divergence_loss: Annotated[float, Field(gt=0)] = 100.0
    # λ of the coupled L2 penalty λ/2 · Σ‖W‖² on the Dense kernels (and γ, β with weight_decay_norm).
    weight_decay: Annotated[float, Field(ge=0, le=10)] = 0.0
    weight_decay_norm: bool = False
    # all; norm: only γ and β (Frankle et al. 2021); random_weights: that paper's control.
    trainable: Literal["all", "norm", "random_weights"] = "all"

    @model_validator(mode="after")
    def _epochs_or_steps(self) -> "Train":
        if self.epochs is not None and self.steps is not None:
            raise ValueError("set train.epochs or train.steps, not both")
        if self.epochs is None and self.steps is None:
            self.epochs = 5
        return self


class Diagnostics(Schema):
    """Opt-in BN diagnostics recorded at every evaluation (bnexp/diagnostics.py)."""

    enabled: bool = False
    units: Annotated[list[Annotated[int, Field(ge=0, le=MAX_WIDTH)]], Field(min_length=1, max_length=64)] = [0, 1, 2]
    examples: Annotated[int, Field(ge=10, le=10_000)] = 1000
    # Santurkar et al. (2018) on the latest training batch: internal covariate shift and the loss landscape.
    ics: bool = False
    landscape: bool = False


class Data(Schema):
    dataset: Literal["mnist", "fashion_mnist", "mnist-sample"] = "mnist"
    dir: str | None = None


class Config(Schema):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = "run"
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    data: Data = Data()
    model: Model = Model()
    train: Train = Train()
    diagnostics: Diagnostics = Diagnostics()

    @model_validator(mode="after")
    def _batch_statistics_need_two(self) -> "Config":
        if self.model.norm.kind in ("batch", "keras", "batch_renorm", "ghost_batch") and self.train.batch_size < 2:
            raise ValueError("train.batch_size must be at least 2 with batch normalization (a batch of 1 has no variance)")
        return self

    @model_validator(mode="after")
    def _features_have_their_layers(self) -> "Config":
        norm, trainable = self.model.norm, self.train.trainable
        if norm.noise.scale > 0 and norm.kind == "none":
            raise ValueError("model.norm.noise.scale > 0 adds noise after each normalisation layer, and "
                             "model.norm.kind=none has none: choose a norm kind or set the scale to 0")
        per_unit = (norm.center + norm.scale) * (norm.kind != "none")
        if trainable != "all" and per_unit == 0:
            raise ValueError(f"train.trainable={trainable} trains as many parameters as the normalisation layers' "
                             f"γ and β, and model.norm.kind={norm.kind}, center={norm.center}, scale={norm.scale} "
                             "has none: use train.trainable=all or a norm with γ or β")
        if trainable == "random_weights":
            for i, fan_in in enumerate([784, *self.model.hidden[:-1]]):
                if fan_in < per_unit:
                    raise ValueError(f"train.trainable=random_weights picks {per_unit} incoming weights per unit, and "
                                     f"model.hidden[{i}] has only {fan_in} inputs per unit: widen model.hidden[{i - 1}]")
        return self

    @model_validator(mode="after")
    def _kind_has_its_settings(self) -> "Config":
        """What cnn and rnn networks cannot do, each refused in one line that says why."""
        model, norm = self.model, self.model.norm
        if norm.kind == "instance" and model.kind != "cnn":
            raise ValueError(f"model.norm.kind=instance normalises each channel over its spatial positions, and a "
                             f"model.kind={model.kind} network has none: use model.kind=cnn, or layer or group")
        if model.kind == "cnn":
            for i, side in enumerate(model.conv_sides()):
                if side < 1:
                    raise ValueError(f"model.conv[{i}] shrinks the 28×28 image to nothing (strides and pools too large)")
        if model.kind == "rnn":
            if norm.kind not in ("none", "batch", "layer"):
                raise ValueError(f"model.norm.kind={norm.kind} is not defined inside an LSTM: with model.kind=rnn use "
                                 "none, batch (Cooijmans et al. 2016) or layer (Ba et al. 2016)")
            if norm.placement != "before_activation":
                raise ValueError("model.norm.placement=after_activation has no meaning inside an LSTM (the papers fix where "
                                 "each normalisation sits): use before_activation with model.kind=rnn")
            if norm.noise.scale > 0:
                raise ValueError("model.norm.noise.scale > 0 (Santurkar et al.'s noisy BN) is defined for mlp and cnn layers, "
                                 "not inside an LSTM: set it to 0 with model.kind=rnn")
            steps = 28 if model.sequence == "rows" else 784
            if model.lstm.t_max is not None and model.lstm.t_max > steps:
                raise ValueError(f"model.lstm.t_max={model.lstm.t_max} exceeds the {steps} time steps of "
                                 f"model.sequence={model.sequence}")
        if model.kind != "mlp" and self.train.trainable == "random_weights":
            raise ValueError("train.trainable=random_weights picks incoming weights per hidden unit of an MLP; it is "
                             f"not defined for model.kind={model.kind}: use all or norm")
        return self

    @model_validator(mode="after")
    def _norm_fits_batch_and_widths(self) -> "Config":
        """Check the settings that depend on the batch size or widths, and fill in their
        defaults, so the config a run directory records holds the values used."""
        norm, hidden, batch = self.model.norm, self.model.hidden, self.train.batch_size
        if norm.kind == "keras" and norm.variance != "biased":
            raise ValueError("model.norm.variance=unbiased is not available with model.norm.kind=keras "
                             "(Keras' BatchNormalization keeps the biased variance); use kind batch")
        resolved = {}
        if norm.kind == "ghost_batch":
            v = norm.virtual_batch_size
            if v is not None and batch % v:
                raise ValueError(
                    f"model.norm.virtual_batch_size={v} does not divide train.batch_size={batch}: "
                    f"choose a divisor of {batch} (unset, it is {default_virtual_batch_size(batch)})")
            resolved["virtual_batch_size"] = v or default_virtual_batch_size(batch)
        if norm.kind in ("layer", "group"):
            groups = 1
            channels = [block.filters for block in self.model.conv] if self.model.kind == "cnn" else []
            if norm.kind == "group":
                if channels and norm.groups:
                    for i, filters in enumerate(channels):
                        if filters % norm.groups:
                            raise ValueError(f"model.norm.groups={norm.groups} does not divide model.conv[{i}].filters={filters}: "
                                             f"choose a divisor of every width (unset, it is {default_groups(channels + hidden)})")
                groups = resolved["groups"] = norm.groups or default_groups(channels + hidden)
            for i, width in enumerate(hidden):
                if width % groups:
                    raise ValueError(
                        f"model.norm.groups={groups} does not divide the width {width} of model.hidden[{i}]: "
                        f"choose a divisor of every width (unset, it is {default_groups(hidden)})")
                if width == groups:
                    raise ValueError(
                        f"model.norm.kind={norm.kind} would normalise each unit of model.hidden[{i}] (width {width}) alone, "
                        "so its output would be constant: " + ("use fewer groups" if width > 1 else "widen the layer"))
        if resolved:  # copies: the caller's Model and Norm objects stay as they were
            self.model = self.model.model_copy(update={"norm": norm.model_copy(update=resolved)})
        return self


# YAML 1.2 floats that YAML 1.1 (PyYAML) reads as strings: 1e-3, 5E4, 1.0e+3.
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)$")


class YAML12Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader that reads `1e-3` as a float, as YAML 1.2 does (PyYAML follows 1.1).

    Built on libyaml's parser where PyYAML has it: `compare` and `report` parse every
    run's recorded config, and the C parser does 100 of them in 0.08 s instead of 0.58 s.
    """


class YAML12Dumper(yaml.SafeDumper):
    """SafeDumper that quotes strings like '1e-3', so YAML12Loader reads them back as strings."""


for _cls in (YAML12Loader, YAML12Dumper):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789"))


def _mapping_without_duplicates(loader, node, deep=False):
    """A key given twice is a mistake (the first value would vanish): refuse it."""
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


YAML12Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def parse_yaml(text: str, where: str) -> Any:
    """The document in `text`, as yaml.load reads it, but its node graph is measured before
    anything is built: one that would expand past MAX_YAML_NODES, or refer to itself, is refused."""
    loader = YAML12Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, {}, where)
        return loader.construct_document(node)
    except RecursionError:
        raise ConfigError(f"{where}: YAML nested too deeply to be a config") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML{at}: {problem}") from None
    finally:
        loader.dispose()


def _check_expansion(node: yaml.Node, sizes: dict[int, int], where: str) -> int:
    """The values `node` expands to, an alias counted at every use (each distinct node is
    measured once, so this costs the file's size, not the expansion's)."""
    known = sizes.get(id(node))
    if known is not None:
        if known < 0:
            raise ConfigError(f"{where}: a YAML alias refers to itself; a config cannot")
        return known
    sizes[id(node)] = -1  # being measured
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    size = 1 + sum(_check_expansion(child, sizes, where) for child in children)
    if size > MAX_YAML_NODES:
        raise ConfigError(f"{where}: the YAML expands to more than {MAX_YAML_NODES:,} values "
                          "(aliases counted at every use); a config or sweep file needs far fewer")
    sizes[id(node)] = size
    return size


def read_yaml_file(path: str | Path) -> dict:
    """Read a YAML mapping from `path`, with one-line errors for every way it can be wrong."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{path}: larger than the {MAX_YAML_BYTES:,} bytes a config or sweep file may have")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (invalid UTF-8)") from None
    return yaml_mapping(text, path)


def yaml_mapping(text: str, path: str | Path) -> dict:
    """The YAML mapping in `text`, read from `path`; ConfigError naming it otherwise."""
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (contains NUL bytes)")
    data = parse_yaml(text, str(path))
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a config is a YAML mapping such as 'name: demo'")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a YAML mapping of keys, not a {type(data).__name__}")
    return data


def apply_override(raw: dict, assignment: str) -> None:
    """Apply one `key.path=value` (value in YAML) to the raw mapping, in place."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {assignment!r}: expected KEY.PATH=VALUE, e.g. --set train.batch_size=60")
    value = parse_yaml(text, f"--set {key}") if text.strip() else None
    parts = key.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i + 1])} is not a section")
        node = child
    node[parts[-1]] = value
    # epochs and steps are exclusive: choosing one on the command line replaces the other.
    other = {"train.epochs": "steps", "train.steps": "epochs"}.get(key)
    if other:
        node.pop(other, None)


def validate(raw: dict, where: str) -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{where}: {describe(e.errors()[0], raw)}" + more_errors(e)) from None


def load_config(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read, override and validate a config file; ConfigError on any problem."""
    raw = read_yaml_file(path)
    for assignment in overrides:
        apply_override(raw, assignment)
    return validate(raw, str(path))


def more_errors(e: ValidationError) -> str:
    """' (and N more errors)' for a validation that found more than the one its message names."""
    n = e.error_count() - 1
    return f" (and {n} more error{'s' if n > 1 else ''})" if n else ""


def describe(error: dict, raw: dict) -> str:
    """One line for one pydantic error: the key, the bad value and what is allowed."""
    loc = [str(p) for p in error["loc"] if not str(p).startswith("function-")]
    key = re.sub(r"[\x00-\x1f\x7f]", lambda m: repr(m.group())[1:-1], ".".join(loc))  # keep it one line
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'" + _did_you_mean(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":  # our own validators: the message names its keys
        return message
    if "input" in error and error["type"] != "missing":
        return f"{key or 'config'} = {_short(error['input'])}: {message}"
    return f"{key}: {message}"


def _did_you_mean(loc: tuple) -> str:
    section: type[BaseModel] = Config
    for part in loc[:-1]:
        field = section.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None) if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        section = annotation
    allowed = list(section.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    prefix = ".".join(str(p) for p in loc[:-1])
    suggestion = f"; did you mean '{prefix + '.' if prefix else ''}{close[0]}'?" if close else ""
    return f"{suggestion} (allowed here: {', '.join(allowed)})"


def _short(value: Any) -> str:
    """A bounded excerpt of a value: reprlib stops at a few items and levels, so a huge
    value costs no more to show than a small one."""
    text = _EXCERPT.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_EXCERPT = reprlib.Repr()
_EXCERPT.maxlevel, _EXCERPT.maxstring, _EXCERPT.maxother = 3, 60, 60


def to_yaml(config: Config) -> str:
    """The fully resolved config as YAML, in schema order, so a run can be rerun exactly."""
    return yaml.dump(config.model_dump(mode="json"), Dumper=YAML12Dumper, sort_keys=False, default_flow_style=None)


def flatten(mapping: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}."""
    out = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def yaml_flow(value) -> str:
    """A config value as YAML flow style writes it: [100, 100], true, null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_flow(v)}" for k, v in value.items()) + "}"
    return str(value)

