"""The experiment config: schema, YAML loading, --set overrides and one-line errors.

No TensorFlow here, so `bnexp --help` and config errors answer at once. By job:
- schema: the keys, their defaults and limits (pydantic), and the cross-key rules;
- files: config and sweep files as YAML 1.2, read within limits, written back exactly;
- loading: a file with its --set overrides, validated, every error one line;
- flat: configs as flat key → value maps, values as YAML flow text.
Callers import from here: `from bnexp.config import Config, load_config, flatten`.
"""

from bnexp.config.flat import flatten, yaml_flow
from bnexp.config.loading import apply_override, describe, load_config, more_errors, validate
from bnexp.config.schema import (
    DEFAULT_CONV, KIND_KEYS, MAX_PARAMETERS, MAX_WIDTH, RECORDED_BEFORE, Config, ConvBlock, Data, Diagnostics, Dropout,
    Init, Lstm, Model, Noise, Norm, Schedule, Schema, Train, as_recorded, default_groups, default_virtual_batch_size,
)
from bnexp.config.files import MAX_YAML_BYTES, MAX_YAML_NODES, parse_yaml, read_yaml_file, to_yaml, yaml_mapping

__all__ = [
    "DEFAULT_CONV", "KIND_KEYS", "MAX_PARAMETERS", "MAX_WIDTH", "MAX_YAML_BYTES", "MAX_YAML_NODES", "RECORDED_BEFORE",
    "Config", "ConvBlock", "Data", "Diagnostics", "Dropout", "Init", "Lstm", "Model", "Noise", "Norm", "Schedule",
    "Schema", "Train", "apply_override", "as_recorded", "default_groups", "default_virtual_batch_size", "describe",
    "flatten", "load_config", "more_errors", "parse_yaml", "read_yaml_file", "to_yaml", "validate", "yaml_flow",
    "yaml_mapping",
]
