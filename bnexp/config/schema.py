"""The experiment config's schema (pydantic): every key, its default and its limits.

Every limit is checked before anything is allocated: a typo costs a second, not a failed
hour. The cross-key rules (Config's validators) fill in what depends on other keys, such as
ghost_batch's virtual batch and group norm's groups.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

MAX_WIDTH = 16384
MAX_PARAMETERS = 100_000_000  # about 400 MB of float32 weights, plus optimizer state


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
    """Which normalisation, where it sits, and its settings (bnexp/norm/ has the maths).

    kind: none; batch (ours, Ioffe & Szegedy 2015); keras (Keras' BatchNormalization, to
    cross-check ours); batch_renorm (Ioffe 2017); ghost_batch (Hoffer et al. 2017); layer
    (Ba et al. 2016); group (Wu & He 2018); instance (Ulyanov et al. 2016, conv nets only).
    With model.kind cnn each applies per feature map (bnexp/norm/); with rnn only none,
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
