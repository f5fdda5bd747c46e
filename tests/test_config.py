"""The config: schema limits, --set overrides, YAML quirks and hostile files, each a one-line ConfigError."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bnexp.config import Config, load_config, parse_yaml, to_yaml
from bnexp.errors import BnexpError, ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SHIPPED = sorted(p for p in CONFIGS.rglob("*.yaml") if not {"sweeps", "claims"} & set(p.relative_to(CONFIGS).parts))


def write(tmp_path: Path, content: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def error_line(path: Path, overrides: list[str] = ()) -> str:
    """The ConfigError message for loading `path`, checked to be exactly one line."""
    with pytest.raises(ConfigError) as info:
        load_config(path, list(overrides))
    message = str(info.value)
    assert "\n" not in message and message.strip() == message, repr(message)
    return message


# --- the shipped configs -------------------------------------------------------------------


def test_configs_folder_has_files():
    assert {p.name for p in SHIPPED} >= {"quickstart.yaml", "mnist_bn.yaml", "mnist_nobn.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(CONFIGS)) for p in SHIPPED])
def test_shipped_config_loads_and_validates(path, tmp_path):
    config = load_config(path)
    assert isinstance(config, Config)
    assert load_config(write(tmp_path, to_yaml(config))) == config


def test_quickstart_uses_bundled_sample_with_our_batch_norm():
    config = load_config(CONFIGS / "quickstart.yaml")
    assert (config.data.dataset, config.model.norm.kind) == ("mnist-sample", "batch")


def test_nobn_is_bn_config_without_normalization():
    bn = load_config(CONFIGS / "mnist_bn.yaml").model_dump()
    nobn = load_config(CONFIGS / "mnist_nobn.yaml").model_dump()
    assert (bn["model"]["norm"]["kind"], nobn["model"]["norm"]["kind"]) == ("batch", "none")
    for d in (bn, nobn):
        d.pop("name")
        d["model"]["norm"].pop("kind")
    assert bn == nobn


# --- unknown keys, wrong types, out-of-range values ---------------------------------------


@pytest.mark.parametrize(
    "text, key, suggestion, allowed",
    [
        ("nmae: demo", "nmae", "name", "name, seed, data, model, train"),
        ("train: {learnng_rate: 0.1}", "train.learnng_rate", "train.learning_rate", "optimizer, learning_rate, momentum"),
        ("model: {norm: {momentun: 0.9}}", "model.norm.momentun", "model.norm.momentum", "kind, placement, momentum, epsilon"),
        ("train: {schedule: {knd: step}}", "train.schedule.knd", "train.schedule.kind", "kind, step_size, gamma"),
    ],
)
def test_unknown_key_suggests_nearest_and_lists_allowed(tmp_path, text, key, suggestion, allowed):
    message = error_line(write(tmp_path, text))
    assert f"unknown key '{key}'" in message
    assert f"did you mean '{suggestion}'?" in message
    assert f"allowed here: {allowed}" in message


@pytest.mark.parametrize(
    "text, key, value, allowed",
    [
        ("train: {batch_size: '60'}", "train.batch_size", "'60'", "valid integer"),
        ("model: {hidden: '100'}", "model.hidden", "'100'", "valid list"),
        ("model: {norm: {epsilon: -1.0e-3}}", "model.norm.epsilon", "-0.001", "greater than 0"),
        ("model: {norm: {momentum: 1.0}}", "model.norm.momentum", "1.0", "less than 1"),
        ("model: {norm: {momentum: -0.1}}", "model.norm.momentum", "-0.1", "greater than or equal to 0"),
        ("train: {batch_size: 0}", "train.batch_size", "0", "greater than or equal to 1"),
        ("model: {hidden: []}", "model.hidden", "[]", "at least 1 item"),
        ("model: {hidden: [100, 1000000000]}", "model.hidden.1", "1000000000", "less than or equal to 16384"),
        ("train: {epochs: 1000000000000}", "train.epochs", "1000000000000", "less than or equal to 100000"),
        ("model: {activation: relux}", "model.activation", "'relux'", "'relu', 'sigmoid'"),
        ("model: [100, 100]", "model", "[100, 100]", "valid dictionary"),
    ],
)
def test_bad_value_names_key_value_and_what_is_allowed(tmp_path, text, key, value, allowed):
    path = write(tmp_path, text)
    message = error_line(path)
    assert message.startswith(f"{path}: {key} = {value}: ")
    assert allowed in message


def test_too_many_weights_refused_before_allocation(tmp_path):
    message = error_line(write(tmp_path, "model: {hidden: [16384, 16384, 16384]}"))
    assert "model.hidden [16384, 16384, 16384] has 549,928,970 weights; at most 100,000,000 allowed" in message


def test_several_errors_report_first_in_schema_order_and_count_the_rest(tmp_path):
    message = error_line(write(tmp_path, "train: {epochs: 0, batch_size: 0, learning_rate: -1.0}"))
    assert "train.learning_rate = -1.0" in message and message.endswith("(and 2 more errors)")


def test_batch_size_one_refused_with_batch_norm(tmp_path):
    for kind in ("batch", "keras"):
        message = error_line(write(tmp_path, f"model: {{norm: {{kind: {kind}}}}}\ntrain: {{batch_size: 1}}"))
        assert "train.batch_size must be at least 2 with batch normalization" in message


def test_batch_size_one_allowed_without_norm(tmp_path):
    config = load_config(write(tmp_path, "model: {norm: {kind: none}}\ntrain: {batch_size: 1}"))
    assert config.train.batch_size == 1


def test_unknown_key_with_newline_stays_one_line(tmp_path):
    error_line(write(tmp_path, '"na\\nme": demo'))


# --- YAML 1.2 floats and --set ------------------------------------------------------------


@pytest.mark.parametrize("text, number", [("1e-3", 0.001), ("1E3", 1000.0), ("+2.5e-2", 0.025), ("-1e+2", -100.0), ("1.0e-3", 0.001)])
def test_exponent_without_dot_reads_as_float(text, number):
    value = parse_yaml(text, "test")
    assert isinstance(value, float) and value == number


def test_exponent_float_in_file(tmp_path):
    config = load_config(write(tmp_path, "train: {learning_rate: 1e-3}\nmodel: {norm: {epsilon: 1e-5}}"))
    assert (config.train.learning_rate, config.model.norm.epsilon) == (0.001, 1e-5)


def test_exponent_float_in_set(tmp_path):
    config = load_config(write(tmp_path, "name: demo"), ["train.learning_rate=1e-3"])
    assert config.train.learning_rate == 0.001


def test_set_list_gives_ints(tmp_path):
    config = load_config(write(tmp_path, "model: {hidden: [5]}"), ["model.hidden=[100,100]"])
    assert config.model.hidden == [100, 100] and all(type(w) is int for w in config.model.hidden)


def test_set_creates_missing_nested_section(tmp_path):
    config = load_config(write(tmp_path, "name: demo"), ["model.norm.momentum=0.5", "model.init.kind=normal"])
    assert (config.model.norm.momentum, config.model.init.kind) == (0.5, "normal")


def test_set_epochs_clears_steps_from_file(tmp_path):
    config = load_config(write(tmp_path, "train: {steps: 100}"), ["train.epochs=3"])
    assert (config.train.epochs, config.train.steps) == (3, None)


def test_set_steps_clears_epochs_from_file(tmp_path):
    config = load_config(write(tmp_path, "train: {epochs: 3}"), ["train.steps=100"])
    assert (config.train.epochs, config.train.steps) == (None, 100)


def test_epochs_default_when_neither_given(tmp_path):
    assert load_config(write(tmp_path, "name: demo")).train.epochs == 5


def test_epochs_and_steps_both_in_file_refused(tmp_path):
    message = error_line(write(tmp_path, "train: {epochs: 3, steps: 100}"))
    assert "set train.epochs or train.steps, not both" in message


@pytest.mark.parametrize("assignment", ["train.epochs", "=3", ""])
def test_set_without_key_or_equals_refused(tmp_path, assignment):
    message = error_line(write(tmp_path, "name: demo"), [assignment])
    assert message == f"--set {assignment!r}: expected KEY.PATH=VALUE, e.g. --set train.batch_size=60"


def test_set_with_bad_yaml_value_refused(tmp_path):
    message = error_line(write(tmp_path, "name: demo"), ["model.hidden=[100,"])
    assert message.startswith("--set model.hidden: not valid YAML")


def test_set_through_a_scalar_refused(tmp_path):
    message = error_line(write(tmp_path, "name: demo"), ["name.first=x"])
    assert message == "--set name.first: name is not a section"


def test_set_misspelt_key_suggests_nearest(tmp_path):
    message = error_line(write(tmp_path, "name: demo"), ["train.epoch=3"])
    assert "unknown key 'train.epoch'; did you mean 'train.epochs'?" in message


# --- hostile files ------------------------------------------------------------------------


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "name: demo\nseed: 0\n  bad: indent\n")
    message = error_line(path)
    assert message.startswith(f"{path}: not valid YAML at line 3")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_refused(tmp_path, text):
    path = write(tmp_path, text)
    assert error_line(path) == f"{path}: the file is empty; a config is a YAML mapping such as 'name: demo'"


def _garbage() -> bytes:
    data = bytearray(random.Random(0).randbytes(4096))
    data[10:12] = b"\x00\xff"  # a NUL, and a byte that is never valid UTF-8
    return bytes(data)


@pytest.mark.parametrize(
    "content, reason",
    [
        (_garbage(), "invalid UTF-8"),
        (b"\xc3\x28name: demo\n", "invalid UTF-8"),
        (b"name: demo\x00\x00\n", "contains NUL bytes"),
        (b"name: \x07demo\n", "not valid YAML"),
    ],
    ids=["random-bytes", "invalid-utf8", "nul-bytes", "control-char"],
)
def test_binary_garbage_refused(tmp_path, content, reason):
    path = write(tmp_path, content)
    message = error_line(path)
    assert message.startswith(f"{path}: ") and reason in message


@pytest.mark.parametrize("text, kind", [("- name: demo\n- seed: 1\n", "list"), ("just words\n", "str"), ("42\n", "int")])
def test_non_mapping_refused(tmp_path, text, kind):
    path = write(tmp_path, text)
    assert error_line(path) == f"{path}: a config is a YAML mapping of keys, not a {kind}"


def test_missing_file_refused(tmp_path):
    path = tmp_path / "nope.yaml"
    assert error_line(path) == f"config file {path} does not exist"


def test_directory_refused(tmp_path):
    assert error_line(tmp_path) == f"config file {tmp_path} is a directory"


def test_utf8_byte_order_mark_accepted(tmp_path):
    assert load_config(write(tmp_path, b"\xef\xbb\xbfname: demo\n")).name == "demo"


# --- round trip and exit code -------------------------------------------------------------


@pytest.mark.parametrize("overrides", [[], ["train.steps=250", "data.dir=/tmp/mnist", "model.norm.epsilon=1e-5"]])
def test_to_yaml_round_trips(tmp_path, overrides):
    config = load_config(CONFIGS / "mnist_bn.yaml", overrides)
    again = load_config(write(tmp_path, to_yaml(config), "resolved.yaml"))
    assert again == config


def test_to_yaml_round_trips_strings_that_look_like_yaml12_floats(tmp_path):
    config = load_config(write(tmp_path, "name: '1e-3'\ndata: {dir: '1e5'}"))
    again = load_config(write(tmp_path, to_yaml(config), "resolved.yaml"))
    assert again == config


def test_config_error_exits_with_status_2():
    assert issubclass(ConfigError, BnexpError) and ConfigError.exit_code == 2


# --- issue 13's keys -------------------------------------------------------------------------


def test_new_keys_default_to_todays_behaviour(tmp_path):
    config = load_config(write(tmp_path, "name: demo"))
    assert config.model.dropout.model_dump() == {"rate": 0.0, "layers": "all", "input_rate": 0.0}
    assert (config.model.norm.noise.scale, config.model.norm.moving_average, config.model.norm.moving_update) == (0.0, "sigma", "per_virtual_batch")
    assert (config.train.weight_decay, config.train.weight_decay_norm, config.train.trainable) == (0.0, False, "all")
    assert (config.diagnostics.ics, config.diagnostics.landscape) == (False, False)
    written = to_yaml(config)
    assert "moving_average: sigma" in written and "moving_update: per_virtual_batch" in written  # recorded


@pytest.mark.parametrize("overrides, says", [
    (["model.dropout.rate=1"], "model.dropout.rate"),
    (["model.dropout.layers=first"], "model.dropout.layers"),
    (["model.dropout.input_rate=-0.1"], "model.dropout.input_rate"),
    (["model.norm.noise.scale=-1"], "model.norm.noise.scale"),
    (["model.norm.moving_average=std"], "model.norm.moving_average"),
    (["model.norm.moving_update=per_epoch"], "model.norm.moving_update"),
    (["train.weight_decay=-0.1"], "train.weight_decay"),
    (["train.trainable=dense"], "train.trainable"),
    (["model.norm.kind=none", "model.norm.noise.scale=0.5"], "model.norm.noise.scale > 0 adds noise after each normalisation layer"),
    (["model.norm.kind=none", "train.trainable=norm"], "train.trainable=norm trains as many parameters"),
    (["model.norm.center=false", "model.norm.scale=false", "train.trainable=random_weights"], "has none"),
    (["model.hidden=[100, 1, 10]", "train.trainable=random_weights"], "model.hidden[2] has only 1 inputs per unit"),
])
def test_issue_13_keys_refuse_what_cannot_run(tmp_path, overrides, says):
    assert says in error_line(write(tmp_path, "name: demo"), overrides)


def test_noise_and_bn_only_with_layer_norm_are_allowed(tmp_path):
    config = load_config(write(tmp_path, "name: demo"), ["model.norm.kind=layer", "model.norm.noise.scale=0.5", "train.trainable=norm"])
    assert (config.model.norm.noise.scale, config.train.trainable) == (0.5, "norm")


@pytest.mark.parametrize("kind, key, old", [("batch_renorm", "moving_average", "variance"), ("ghost_batch", "moving_update", "per_step")])
def test_a_run_directory_without_the_averaging_key_keeps_the_old_averaging(tmp_path, kind, key, old):
    from bnexp.rundir import RunDir

    config = load_config(write(tmp_path, f"name: demo\nmodel: {{norm: {{kind: {kind}}}}}\ntrain: {{batch_size: 64}}"))
    assert getattr(config.model.norm, key) != old  # a new config: the paper's averaging
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.write_config(config)
    assert getattr(run.read_config().model.norm, key) != old  # recorded: read back as written
    text = (run.path / "config.yaml").read_text()
    (run.path / "config.yaml").write_text("".join(line for line in text.splitlines(keepends=True) if key not in line))
    assert getattr(run.read_config().model.norm, key) == old  # an older bnexp's run: the old averaging
    assert RunDir(tmp_path / "run").read_config().model.norm.kind == kind
