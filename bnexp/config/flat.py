"""Configs as flat key → value maps and their values as YAML flow text: how compare,
sweeps and the program key (bnexp.training.programs) name and show a setting."""

from __future__ import annotations

from typing import Any


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
