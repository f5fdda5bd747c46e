"""Loading a config: a file, its --set overrides, validation, and one-line errors.

Every pydantic error becomes one line naming the key, the bad value and what is allowed
(with a "did you mean" for a misspelt key), so a mistake costs a second to read.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bnexp.config.schema import Config
from bnexp.config.files import parse_yaml, read_yaml_file
from bnexp.errors import ConfigError

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
